"""Turn raw optimizer output into a clean optimized prompt.

Small models wrap their answer ("Golden Prompt: ...", fences, quotes, "Here is the improved
prompt:"), keep generating past it (a new ``<|user|>`` turn, the template's own headings) and
loop. This module undoes all of that and enforces the word budget. Pure: no heavy imports.
"""

from __future__ import annotations

import re

from fipo_middleware.template import TEMPLATE_MARKERS

_LABEL = (
    r"(?:golden|optimi[sz]ed|improved|rewritten|revised|new|better|refined|final|enhanced)"
    r"(?:\s+(?:prompt|instruction|version))?"
)
# "Golden Prompt:", "**Optimized prompt**:", "Prompt:" at the very start.
_LEADING_LABEL = re.compile(
    rf"^\s*(?:\*\*|#+\s*)?(?:{_LABEL}|prompt|instruction)\s*(?:\*\*)?\s*:\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
# "Here is the optimized prompt:" / "Sure! Here's a better version:" as a first line.
_PREAMBLE = re.compile(
    r"^\s*(?:sure[!,.]?\s*|certainly[!,.]?\s*|okay[!,.]?\s*)?"
    r"(?:here(?:'s| is| are)|below is|this is)\b[^\n]{0,80}?:\s*(?:\n|$)",
    re.IGNORECASE,
)
_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)
_QUOTES = (('"', '"'), ("'", "'"), ("“", "”"), ("‘", "’"), ("`", "`"))
_SENTENCE_END = re.compile(r"[.!?:](?=\s|$)")


def strip_wrappers(text: str) -> str:
    """Remove labels, preambles, code fences and surrounding quotes, repeatedly."""
    prev = None
    out = text.strip()
    while out != prev:
        prev = out
        out = _PREAMBLE.sub("", out, count=1).strip()
        out = _LEADING_LABEL.sub("", out, count=1).strip()
        m = _FENCE.match(out)
        if m:
            out = m.group(1).strip()
        for left, right in _QUOTES:
            if len(out) >= 2 and out.startswith(left) and out.endswith(right):
                inner = out[len(left) : -len(right)]
                # Only strip when the quotes wrap the whole text, not two separate quotes.
                if left not in inner and right not in inner:
                    out = inner.strip()
    return out


def cut_at_markers(text: str, markers: tuple[str, ...] = TEMPLATE_MARKERS) -> str:
    """Stop at the first leaked template marker (the model started a new turn or echoed the
    meta-prompt). A marker at position 0 is a label, handled by ``strip_wrappers``."""
    cut = len(text)
    lowered = text.lower()
    for marker in (*markers, "```"):
        i = lowered.find(marker.lower(), 1)
        if 0 < i < cut:
            cut = i
    return text[:cut].rstrip()


def drop_repetition(text: str) -> str:
    """Greedy decoding of small models loops; keep the first copy of any repeated line or
    sentence."""
    seen: set[str] = set()
    lines: list[str] = []
    for line in text.split("\n"):
        key = line.strip().lower()
        if key and key in seen:
            continue
        seen.add(key)
        lines.append(line)
    out = "\n".join(lines)
    sentences = re.split(r"(?<=[.!?])\s+", out)
    if len(sentences) > 2:
        kept: list[str] = []
        seen_s: set[str] = set()
        for s in sentences:
            k = s.strip().lower()
            if k in seen_s and len(k) > 20:
                continue
            seen_s.add(k)
            kept.append(s)
        if len(kept) < len(sentences):
            out = " ".join(kept)
    return out.strip()


def word_count(text: str) -> int:
    return len(text.split())


def enforce_budget(text: str, max_words: int) -> str:
    """Trim to the last complete sentence inside the budget; text with no sentence boundary in
    the budget is returned unchanged (the guard then rejects it as over budget)."""
    if word_count(text) <= max_words:
        return text
    words = re.finditer(r"\S+", text)
    end = 0
    for i, m in enumerate(words):
        if i == max_words:
            break
        end = m.end()
    head = text[:end]
    last = None
    for m in _SENTENCE_END.finditer(head):
        last = m.end()
    if last is None or word_count(head[:last]) < max(3, max_words // 3):
        return text
    return head[:last].strip()


def parse_rewrite(raw: str, max_words: int | None = None) -> str:
    """Raw generation -> optimized prompt (may be empty; the guard decides if it is usable)."""
    text = strip_wrappers(raw)
    text = cut_at_markers(text)
    text = strip_wrappers(text)
    text = drop_repetition(text)
    if max_words is not None:
        text = enforce_budget(text, max_words)
    return text.strip()
