"""The narrow protocol every optimizer backend implements.

A backend turns a meta-prompt into raw text. A ``str`` prompt is a raw completion (the
``fipo-original`` dialect); a list of ``{"role", "content"}`` dicts goes through the model's
chat template (the ``chat`` dialect). Everything else (parsing, guard, cache, fallbacks,
callbacks) lives in the optimizer, so a new backend is a few dozen lines.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, runtime_checkable

ChatTurns = list[dict[str, str]]
MetaPrompt = str | ChatTurns


@dataclass(frozen=True)
class DecodingParams:
    """Decoding settings. Greedy by default: an optimizer should be deterministic."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repeat_penalty: float = 1.1
    seed: int = 0
    stop: tuple[str, ...] = field(default=("<|user|>", "<|im_end|>", "<|endoftext|>"))

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def key(self) -> tuple:
        return tuple(sorted(asdict(self).items()))


@runtime_checkable
class OptimizerBackend(Protocol):
    """What ``FIPOOptimizer`` needs from a model."""

    @property
    def identity(self) -> str:
        """Stable id of the model (+ adapter) for cache keys and traces."""
        ...

    @property
    def context_length(self) -> int | None:
        """Context window in tokens, or None when unknown (no length check)."""
        ...

    def count_tokens(self, prompt: MetaPrompt) -> int:
        """Tokens the prompt occupies after templating."""
        ...

    def generate(self, prompt: MetaPrompt, params: DecodingParams) -> str:
        """Raw generated text. Must be safe to call from several threads."""
        ...
