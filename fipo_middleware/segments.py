"""Instruction-oriented rewriting: split a prompt into the instruction (rewritten) and fixed
parts (passed through byte for byte).

Fixed parts are what the caller marks with ``<fixed>...</fixed>`` plus, by default, fenced code
blocks and blocks of answer-option lines ("A) ...", "(b) ...", "3. ..."), the paper's setting
for multiple-choice tasks. The tags themselves are removed; everything inside them survives
unchanged. Pure module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from fipo_middleware.complement import join_guidance
from fipo_middleware.errors import InvalidPromptError

_TAGGED = r"<fixed>(?P<tag>.*?)</fixed>"
_FENCED = r"(?P<fence>^[ \t]*```[^\n]*\n.*?^[ \t]*```[ \t]*$)"
# Up to two digits: item 10 of a pasted numbered list belongs to the list, not the instruction.
_OPTIONS = (r"(?P<opts>(?:^[ \t]*(?:\((?:[A-Za-z]|[0-9]{1,2})\)|(?:[A-Za-z]|[0-9]{1,2})[.):])"
            r"[ \t]+[^\n]*(?:\n|$)){2,})")


@dataclass(frozen=True)
class Segment:
    text: str
    fixed: bool


@dataclass(frozen=True)
class SplitPrompt:
    """A prompt cut into instruction and fixed segments."""

    segments: tuple[Segment, ...]
    append: bool = False
    """Append mode: the optimized instruction is the instruction verbatim plus guidance, and the
    guidance goes after the whole prompt, which is kept byte for byte."""

    @property
    def text(self) -> str:
        """The prompt as given (``<fixed>`` tags removed)."""
        return "".join(s.text for s in self.segments)

    @property
    def instruction(self) -> str:
        return "\n".join(s.text.strip() for s in self.segments if not s.fixed and s.text.strip())

    @property
    def has_fixed(self) -> bool:
        return any(s.fixed for s in self.segments)

    def rebuild(self, optimized_instruction: str) -> str:
        """The optimized instruction goes where the instruction started; later instruction
        pieces (already part of the rewrite) keep only their surrounding whitespace."""
        instruction = self.instruction
        if optimized_instruction == instruction:
            # Nothing changed: pieces must not move (the instruction is joined from all of them).
            return self.text
        head = instruction.rstrip()
        if self.append and optimized_instruction.startswith(head):
            return join_guidance(self.text, optimized_instruction[len(head):])
        out: list[str] = []
        placed = False
        for seg in self.segments:
            if seg.fixed:
                out.append(seg.text)
                continue
            body = seg.text.strip()
            if not body:
                out.append(seg.text)
                continue
            lead = seg.text[: len(seg.text) - len(seg.text.lstrip())]
            trail = seg.text[len(seg.text.rstrip()) :]
            if placed:
                # Absorbed into the rewrite; keep a line break so fixed blocks stay apart.
                out.append("\n" if "\n" in seg.text else "")
            else:
                out.append(lead + optimized_instruction + trail)
                placed = True
        return "".join(out)


def split_prompt(
    text: str, *, protect_code: bool = True, protect_options: bool = True, append: bool = False
) -> SplitPrompt:
    """Split ``text`` into instruction and fixed segments. Raises if nothing is left to
    rewrite (the whole prompt is fixed or blank)."""
    patterns = [_TAGGED]
    if protect_code:
        patterns.append(_FENCED)
    if protect_options:
        patterns.append(_OPTIONS)
    regex = re.compile("|".join(patterns), re.DOTALL | re.MULTILINE)
    segments: list[Segment] = []
    pos = 0
    for m in regex.finditer(text):
        if m.start() > pos:
            segments.append(Segment(text[pos : m.start()], False))
        fixed_text = m.group("tag") if m.group("tag") is not None else m.group(0)
        segments.append(Segment(fixed_text, True))
        pos = m.end()
    if pos < len(text):
        segments.append(Segment(text[pos:], False))
    split = SplitPrompt(tuple(segments), append=append)
    if not split.instruction.strip():
        raise InvalidPromptError(
            "the prompt has no instruction to optimize (it is empty, whitespace, or entirely "
            "marked as fixed)"
        )
    return split
