"""Fine-tuning the optimizer model: SFT, DPO, IPO (TRL) and the FIPO paper's iterative
preference learning (IPL), with LoRA (PEFT) or full fine-tuning.

Entry points: ``train(cfg)`` (dispatches on ``cfg.method``) and ``fipo train METHOD``. The same
entry points run unchanged under ``accelerate launch`` (TRL and the HF Trainer pick up the
distributed setup); see docs/TRAINING.md and ``training/configs/``.

The stages live in their own modules; this one re-exports their public names:

* ``training.config``: ``TrainConfig``/``PreferenceConfig``/``IPLConfig`` (one per method)
  and their CLI flags / YAML keys;
* ``training.data``: dataset rows (``load_rows``) and the IPL round's rows;
* ``training.trl_args``: ``TrainConfig`` -> TRL's ``SFTConfig``/``DPOConfig``, LoRA, resume;
* ``training.preference``: one SFT/DPO/IPO run, base-model loading, ``TrainResult``;
* ``training.ipl``: the IPL loop (``train_ipl``, ``ipl_regenerate``, ``IPLStats``).

A GGUF base (the default SmolLM2 Q4_1) is dequantized once into a plain HF directory
(``fipo_middleware.models.resolve_base``) that every run then loads.

torch, transformers, trl, peft and datasets are imported inside functions only.
"""

from __future__ import annotations

from typing import Any

from fipo_middleware.models import resolve_base
from training.config import IPLConfig, PreferenceConfig, TrainConfig
from training.data import load_rows
from training.ipl import IPLStats, ipl_regenerate, train_ipl
from training.preference import (
    FINAL_DIR,
    RUN_INFO,
    TrainResult,
    load_model_and_tokenizer,
    train_preference,
)

__all__ = [
    "FINAL_DIR",
    "RUN_INFO",
    "IPLConfig",
    "IPLStats",
    "PreferenceConfig",
    "TrainConfig",
    "TrainResult",
    "ipl_regenerate",
    "load_model_and_tokenizer",
    "load_rows",
    "resolve_base",
    "train",
    "train_ipl",
    "train_preference",
]


def train(cfg: TrainConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Run one training job as configured; resumes from the newest checkpoint by default."""
    if isinstance(cfg, IPLConfig):
        return train_ipl(cfg, callbacks=callbacks)
    return train_preference(cfg, callbacks=callbacks)
