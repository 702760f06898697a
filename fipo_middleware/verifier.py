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

import difflib
import itertools
import json
import math
import os
import re
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


# ---------------------------------------------------------------------------- comparison features
_ROLE_PLAY = re.compile(r"\b(?:you are an?|act as|as an? (?:expert|ai|assistant)|imagine you)\b",
                        re.IGNORECASE)
_TERSE = re.compile(r"\b(?:one word|single word|letter only|only the (?:letter|number|answer)|"
                    r"yes or no|one line|one sentence|briefly|short answer)\b", re.IGNORECASE)
_WORDS = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return [w.lower() for w in _WORDS.findall(text)]


def _recall(ref: set[str], got: set[str]) -> float:
    return len(ref & got) / len(ref) if ref else 1.0


def _lines_kept(naive: str, candidate: str) -> float:
    """Share of the naive prompt's longer lines (pasted text, lists, code) found verbatim."""
    lines = [ln.strip() for ln in naive.splitlines() if len(ln.split()) >= 6]
    if len(lines) < 2:
        return 1.0
    return sum(ln in candidate for ln in lines) / len(lines)


def comparison_features(naive_prompt: str, candidate: str) -> dict[str, float]:
    """What the feature verifier weighs: how a candidate differs from the naive prompt along the
    failure classes the judges name (dropped input or requirements, a changed task, an unasked
    length cap or answer format, padding, another language). The naive prompt compared with
    itself gives the reference point, so only differences score."""
    from fipo_middleware.guard import (
        added_formats,
        added_length_cap,
        check_rewrite,
        content_words,
        numbers_in,
        quoted_in,
    )
    from fipo_middleware.language import same_language

    n, c = naive_prompt.strip(), candidate.strip()
    nw, cw = _words(n), _words(c)
    n_content, c_content = content_words(n), content_words(c)
    n_bigrams = set(itertools.pairwise(nw))
    c_bigrams = set(itertools.pairwise(cw))
    verdict = check_rewrite(n, c)
    quotes = quoted_in(n)
    return {
        "log_length_ratio": math.log((len(cw) + 1) / (len(nw) + 1)),
        "longer_than_double": float(len(cw) > 2 * len(nw) + 10),
        "content_recall": _recall(n_content, c_content),
        "content_novelty": len(c_content - n_content) / (len(c_content) or 1),
        "bigram_recall": _recall(n_bigrams, c_bigrams),
        "sequence_similarity": difflib.SequenceMatcher(None, nw, cw, autojunk=False).ratio(),
        "verbatim_naive": float(n in c),
        "numbers_kept": _recall(numbers_in(n), numbers_in(c)),
        "quotes_kept": sum(q in c for q in quotes) / len(quotes) if quotes else 1.0,
        "lines_kept": _lines_kept(n, c),
        "added_length_cap": float(added_length_cap(n, c) is not None),
        "added_formats": float(len(added_formats(n, c))),
        "added_terse": float(bool(_TERSE.search(c)) and not _TERSE.search(n)),
        "added_role_play": float(bool(_ROLE_PLAY.search(c)) and not _ROLE_PLAY.search(n)),
        "same_language": float(same_language(n, c)),
        "guard_usable": float(verdict.usable),
        "guard_reasons": float(len(verdict.reasons)),
        "question_kept": float(not n.endswith("?") or "?" in c),
        # A short, vague request gains from specifics; a long one with pasted input mostly
        # loses from growing (the features of the naive prompt alone cancel out in a margin).
        "novelty_if_short": (len(c_content - n_content) / (len(c_content) or 1))
        * float(len(nw) < 15),
        "growth_if_long": math.log((len(cw) + 1) / (len(nw) + 1)) * float(len(nw) >= 60),
    }


FEATURE_NAMES: tuple[str, ...] = tuple(comparison_features("a b", "a b"))


class FeatureVerifier:
    """A linear reward model over ``comparison_features``, trained as a Bradley-Terry model on
    judged POP pairs (``fipo train-verifier --kind features``). Pure Python, microseconds per
    candidate, so it fits in the 1 s budget beside a 135M optimizer; weights are a small JSON
    (``{"kind": "features", "weights": {name: w}, "mean": ..., "scale": ...}``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            self.weights = {k: float(v) for k, v in data["weights"].items()}
            self.mean = {k: float(v) for k, v in data.get("mean", {}).items()}
            self.scale = {k: float(v) for k, v in data.get("scale", {}).items()}
            # Set by calibration (fipo calibrate-verifier --write-margin); 0 = any gain.
            self.margin = float(data.get("margin", 0.0))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise ModelLoadError(f"no feature verifier at {self.path} ({e}); train one with "
                                 "'fipo train-verifier --kind features'") from e
        unknown = set(self.weights) - set(FEATURE_NAMES)
        if unknown:
            raise ModelLoadError(f"{self.path}: features this version does not compute: "
                                 f"{sorted(unknown)}")

    def raw_score(self, naive_prompt: str, candidate: str) -> float:
        f = comparison_features(naive_prompt, candidate)
        return sum(w * (f[k] - self.mean.get(k, 0.0)) / (self.scale.get(k) or 1.0)
                   for k, w in self.weights.items())

    def score(self, naive_prompt: str, candidates: Sequence[str]) -> list[float]:
        return [self.raw_score(naive_prompt, c) for c in candidates]


def load_verifier(path: str | os.PathLike[str]) -> Verifier:
    """A verifier from disk: a feature verifier's ``.json`` or a reward-model folder."""
    p = Path(path)
    if p.is_file() and p.suffix == ".json":
        return FeatureVerifier(p)
    if p.is_dir():
        return RewardModelVerifier(p)
    raise ModelLoadError(f"no verifier at {p} (expected a feature verifier .json or a "
                         "reward-model folder from 'fipo train-verifier')")


VERIFIER_INFO = "fipo_verifier.json"
"""Beside a verifier adapter: which base it was trained on (``smollm2``, a .gguf or an HF dir)."""


class RewardModelVerifier:
    """A TRL reward model (sequence classifier, one logit) loaded with transformers.

    ``path`` is a LoRA adapter folder (``adapter_config.json``, what ``fipo train-verifier``
    writes: a few MB, on the base named in ``fipo_verifier.json`` or by ``base``) or a merged
    model folder (``config.json``)."""

    def __init__(self, path: str | os.PathLike[str], *, base: str | None = None,
                 max_length: int = 512, device: str | None = None) -> None:
        self.path = Path(path)
        self.is_adapter = (self.path / "adapter_config.json").is_file()
        if not self.is_adapter and not (self.path / "config.json").is_file():
            raise ModelLoadError(f"no reward model at {self.path} (expected adapter_config.json "
                                 "or config.json; train one with 'fipo train-verifier')")
        if base is None and (self.path / VERIFIER_INFO).is_file():
            base = json.loads((self.path / VERIFIER_INFO).read_text(encoding="utf-8")).get("base")
        self.base = base or "smollm2"
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
                    if self.is_adapter:
                        from peft import PeftModel

                        from fipo_middleware.models import resolve_base

                        base_dir = resolve_base(self.base)
                        tok_dir = (self.path if (self.path / "tokenizer_config.json").is_file()
                                   else base_dir)
                        tok = AutoTokenizer.from_pretrained(tok_dir)
                        model = AutoModelForSequenceClassification.from_pretrained(
                            base_dir, num_labels=1, dtype=torch.float32)
                        model.config.pad_token_id = tok.pad_token_id or tok.eos_token_id
                        model = PeftModel.from_pretrained(model, self.path).merge_and_unload()
                    else:
                        tok = AutoTokenizer.from_pretrained(self.path)
                        model = AutoModelForSequenceClassification.from_pretrained(
                            self.path, dtype=torch.float32)
                except ModelLoadError:
                    raise
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
