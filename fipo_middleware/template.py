"""The modular FIPO meta-prompt: naive prompt + optional silver response + optional golden
response + a length budget, in two dialects.

* ``fipo-original`` reproduces the published FIPO training text byte for byte (same
  placeholder substitution order as the reference implementation, Tulu2 ``<|user|>`` wrapping),
  so the released FIPO checkpoints run unchanged.
* ``chat`` is our own, shorter wording, sent as chat messages through the optimizer model's
  chat template. The shipped SmolLM2 adapter is trained on this dialect.

Pure module: no heavy imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

from fipo_middleware._fipo_prompts import FIPO_ORIGINAL_PROMPTS
from fipo_middleware.errors import InvalidPromptError

TULU_USER = "<|user|>\n"
TULU_ASSISTANT = "<|assistant|>\n"

CHAT_SYSTEM = "You are FIPO, a prompt optimizer. You rewrite prompts; you never answer them."

CHAT_INSTRUCTION = (
    "Rewrite the naive prompt into an optimized prompt that is instructive, concise and "
    "strictly faithful to every fact, number, name and option in it. Do not answer it. "
    "Reply with the optimized prompt only, in fewer than {max_words} words."
)


class Dialect(str, Enum):
    """How the meta-prompt is worded and sent to the optimizer model."""

    FIPO_ORIGINAL = "fipo-original"
    CHAT = "chat"

    @classmethod
    def parse(cls, value: str | Dialect) -> Dialect:
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(d.value for d in cls)
            raise ValueError(f"unknown dialect {value!r}; expected one of: {allowed}") from None


class CaseType(int, Enum):
    """The paper's case types (as numbered in the reference diversification code)."""

    NAIVE_ONLY = 0
    SILVER_MC = 1
    SILVER_GEN = 2
    GOLDEN = 3
    BOTH_MC = 4
    BOTH_GEN = 5
    ANSWER_MC = 6
    ANSWER_GEN = 7
    DISCRIMINATE = 8


def default_budget(naive_prompt: str) -> int:
    """Word budget for an optimized prompt when none is given.

    Concise rewrites help small downstream models (MePO), so the budget grows slowly with the
    naive prompt: room to add an output format or a missing constraint, not an essay.
    """
    n = len(naive_prompt.split())
    return max(30, min(400, math.ceil(1.5 * n) + 20))


@dataclass(frozen=True)
class MetaPromptInput:
    """Everything the optimizer is told about one task."""

    naive_prompt: str
    silver_response: str | None = None
    golden_response: str | None = None
    max_words: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.naive_prompt, str) or not self.naive_prompt.strip():
            raise InvalidPromptError("the naive prompt is empty or whitespace")
        if self.max_words is not None and self.max_words < 1:
            raise ValueError(f"max_words must be a positive integer, got {self.max_words}")

    @property
    def budget(self) -> int:
        return self.max_words if self.max_words is not None else default_budget(self.naive_prompt)

    @property
    def case_type(self) -> CaseType:
        has_s = bool(self.silver_response)
        has_g = bool(self.golden_response)
        if has_s and has_g:
            return CaseType.BOTH_GEN
        if has_s:
            return CaseType.SILVER_GEN
        if has_g:
            return CaseType.GOLDEN
        return CaseType.NAIVE_ONLY


def fill_fipo_original(inp: MetaPromptInput) -> str:
    """The FIPO optimizer meta-prompt, unwrapped, substituted exactly as the reference code does
    (``O_C`` first, then ``S_P``, ``S_R``, ``G_R``, ``G_N``)."""
    p = FIPO_ORIGINAL_PROMPTS
    optional = ""
    if inp.silver_response:
        optional += p["s_r"]
    if inp.golden_response:
        optional += p["g_r"]
    text = p["optimizer"].replace("O_C", optional)
    text = text.replace("S_P", inp.naive_prompt)
    text = text.replace("S_R", inp.silver_response or "")
    text = text.replace("G_R", inp.golden_response or "")
    return text.replace("G_N", str(inp.budget))


def wrap_tulu(text: str) -> str:
    return TULU_USER + text + TULU_ASSISTANT


def build_fipo_original(inp: MetaPromptInput) -> str:
    """The full completion prompt the published FIPO checkpoints expect."""
    return wrap_tulu(fill_fipo_original(inp))


def build_chat_user_content(inp: MetaPromptInput) -> str:
    parts = [CHAT_INSTRUCTION.format(max_words=inp.budget), "", "Naive prompt:", inp.naive_prompt]
    if inp.silver_response:
        parts += ["", "Silver response (a weak model's answer to the naive prompt):"]
        parts.append(inp.silver_response)
    if inp.golden_response:
        parts += ["", "Golden response (the answer we want):", inp.golden_response]
    return "\n".join(parts)


def build_chat_messages(inp: MetaPromptInput) -> list[dict[str, str]]:
    """Chat messages (role/content dicts) for the chat dialect."""
    return [
        {"role": "system", "content": CHAT_SYSTEM},
        {"role": "user", "content": build_chat_user_content(inp)},
    ]


def build_meta_prompt(inp: MetaPromptInput, dialect: Dialect | str) -> str | list[dict[str, str]]:
    """A raw completion string (``fipo-original``) or chat messages (``chat``)."""
    if Dialect.parse(dialect) is Dialect.FIPO_ORIGINAL:
        return build_fipo_original(inp)
    return build_chat_messages(inp)


def build_discriminator(
    raw_prompt: str, prompt_a: str, prompt_b: str, golden_response: str = ""
) -> str:
    """The FIPO discriminator prompt (Tulu-wrapped), answered with "A" or "B"."""
    text = FIPO_ORIGINAL_PROMPTS["discriminator"]
    text = (
        text.replace("R_P", raw_prompt)
        .replace("P_A", prompt_a)
        .replace("P_B", prompt_b)
        .replace("G_R", golden_response)
    )
    return wrap_tulu(text)


def build_answer_prompt(naive_prompt: str, max_words: int) -> str:
    """The IPL direct-answering item (case types 6 and 7), Tulu-wrapped as in the paper."""
    return wrap_tulu(f"Answer the question with no more than {max_words} words: {naive_prompt}")


# Strings that only appear in an output when the model leaked its own template.
TEMPLATE_MARKERS: tuple[str, ...] = (
    TULU_USER.strip(),
    TULU_ASSISTANT.strip(),
    "<|im_start|>",
    "<|im_end|>",
    "<|endoftext|>",
    "<|system|>",
    "Sliver Prompt",
    "Silver Prompt:",
    "Sliver Response",
    "Silver response (",
    "Golden Response:",
    "Golden response (",
    "Naive prompt:",
    "expert of prompt optimization",
    "You are FIPO",
)
