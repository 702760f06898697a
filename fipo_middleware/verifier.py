"""Verifiers: is a candidate better than the naive prompt it would replace?

The guard says a rewrite is *usable*; a verifier says whether it is *better*. It scores the
naive prompt itself beside every candidate, with the same model, so "leave the prompt alone" is
always one of the choices and wins unless a candidate beats it by ``FIPOOptimizer.verifier_margin``
(calibrated on a judged dev set).

``RewardModelVerifier`` serves a reward model trained with TRL on the teacher POP
(``fipo train verifier``): a sequence classifier over the pair text below. torch and
transformers are imported only when it loads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fipo_middleware.errors import ModelLoadError

PAIR_TEMPLATE = "Request as the user wrote it:\n{naive}\n\nVersion to send:\n{candidate}"
"""What the reward model reads: the same text in training and serving."""


def pair_text(naive_prompt: str, candidate: str) -> str:
    return PAIR_TEMPLATE.format(naive=naive_prompt.strip(), candidate=candidate.strip())


@runtime_checkable
class Verifier(Protocol):
    def score(self, naive_prompt: str, candidates: Sequence[str]) -> list[float]:
        """One score per candidate (higher = better for the user); the naive prompt itself is
        passed as a candidate too, so scores only need to be comparable within one call."""
        ...


class RewardModelVerifier:
    """A TRL reward model (sequence classifier, one logit) loaded with transformers."""

    def __init__(self, path: str | os.PathLike[str], *, max_length: int = 512,
                 device: str | None = None) -> None:
        self.path = Path(path)
        if not (self.path / "config.json").is_file():
            raise ModelLoadError(f"no reward model at {self.path} (expected config.json; train "
                                 "one with 'fipo train verifier')")
        self.max_length = max_length
        self.device = device
        self._model: Any = None
        self._tokenizer: Any = None
        self._lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                import torch
                from transformers import AutoModelForSequenceClassification, AutoTokenizer

                try:
                    tok = AutoTokenizer.from_pretrained(self.path)
                    model = AutoModelForSequenceClassification.from_pretrained(
                        self.path, dtype=torch.float32)
                except Exception as e:  # a corrupt or foreign folder: say which
                    raise ModelLoadError(f"could not load reward model {self.path}: {e}") from e
                if tok.pad_token is None:
                    tok.pad_token = tok.eos_token
                model.config.pad_token_id = tok.pad_token_id
                self._tokenizer = tok
                self._model = model.to(self.device or "cpu").eval()
            return self._model, self._tokenizer

    def score(self, naive_prompt: str, candidates: Sequence[str]) -> list[float]:
        import torch

        model, tok = self._load()
        texts = [pair_text(naive_prompt, c) for c in candidates]
        batch = tok(texts, return_tensors="pt", padding=True, truncation=True,
                    max_length=self.max_length).to(model.device)
        with torch.inference_mode():
            return [float(x) for x in model(**batch).logits[:, 0]]
