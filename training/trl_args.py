"""Our ``TrainConfig`` -> TRL: the ``SFTConfig``/``DPOConfig`` of a run, the PEFT LoRA config,
the checkpoint to resume from, and the trainer built from them.

Every ``TrainConfig`` field whose name is also a field of the TRL config class is passed through
under that name (the shared names are computed from ``dataclasses.fields`` of TRL's class, so a
new shared field needs no code here); then the settings we derive (bf16 when unset, CPU use),
the method's loss, and last ``cfg.extra`` (``--set KEY=VALUE``), checked against the same
fields.

torch, transformers, trl and peft are imported inside functions only.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError, ModelLoadError
from training.config import IPLConfig, TrainConfig
from training.data import to_dataset

KINDS = ("sft", "dpo")
"""Trainer kinds: SFT (``SFTTrainer``) or preference (``DPOTrainer``: DPO, IPO, IPL rounds)."""


def trl_classes(kind: str) -> tuple[type, type]:
    """The TRL (config class, trainer class) of a kind."""
    if kind == "sft":
        from trl import SFTConfig, SFTTrainer

        return SFTConfig, SFTTrainer
    if kind == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOConfig, DPOTrainer
    raise ValueError(f"trainer kind must be one of {', '.join(KINDS)}, got {kind!r}")


def shared_fields(trl_config_cls: type, ours: type[TrainConfig] = IPLConfig) -> list[str]:
    """Names of the fields of our config class ``ours`` that ``trl_config_cls`` also has, in our
    order (default: every method's fields)."""
    theirs = {f.name for f in dataclasses.fields(trl_config_cls)}
    return [f.name for f in dataclasses.fields(ours) if f.name in theirs]


def trl_kwargs(cfg: TrainConfig, trl_config_cls: type, output_dir: str | os.PathLike[str],
               **overrides: Any) -> dict[str, Any]:
    """The keyword arguments of ``trl_config_cls`` for this run (see the module docstring)."""
    from fipo_middleware.models import train_precision

    precision = train_precision()
    kwargs: dict[str, Any] = {name: getattr(cfg, name)
                              for name in shared_fields(trl_config_cls, type(cfg))}
    kwargs.update(
        output_dir=str(output_dir),
        bf16=cfg.bf16 if cfg.bf16 is not None else precision["bf16"],
        fp16=False,
        use_cpu=precision["use_cpu"],
        save_strategy="steps",
        **overrides,
    )
    known = {f.name for f in dataclasses.fields(trl_config_cls)}
    unknown = sorted(set(cfg.extra) - known)
    if unknown:
        raise DataFormatError(f"extra TRL setting(s) {', '.join(unknown)}: not fields of "
                              f"{trl_config_cls.__name__}")
    kwargs.update(cfg.extra)
    return kwargs


def trl_config(cfg: TrainConfig, kind: str, output_dir: str | os.PathLike[str], *,
               loss_type: str = "sigmoid") -> Any:
    """The ``SFTConfig`` (kind ``sft``) or ``DPOConfig`` (``dpo``, with ``loss_type``)."""
    config_cls, _ = trl_classes(kind)
    overrides: dict[str, Any] = {"loss_type": [loss_type]} if kind == "dpo" else {}
    return config_cls(**trl_kwargs(cfg, config_cls, output_dir, **overrides))


def peft_config(cfg: TrainConfig) -> Any:
    """The LoRA config of a fresh adapter (None for full fine-tuning)."""
    if not cfg.use_lora:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.target_modules,
        task_type="CAUSAL_LM",
    )


def resume_checkpoint(cfg: TrainConfig, output_dir: Path) -> str | None:
    """``cfg.resume``: auto = the newest checkpoint in ``output_dir`` (None when there is none),
    never = None, or the checkpoint directory given."""
    if cfg.resume == "never":
        return None
    if cfg.resume not in ("auto", ""):
        if not Path(cfg.resume).is_dir():
            raise ModelLoadError(f"checkpoint to resume from not found: {cfg.resume}")
        return cfg.resume
    if not output_dir.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(output_dir))


def make_trainer(
    cfg: TrainConfig,
    kind: str,
    model: Any,
    tokenizer: Any,
    rows: list[dict[str, Any]],
    output_dir: Path,
    *,
    loss_type: str = "sigmoid",
    peft: bool = True,
    callbacks: list[Any] | None = None,
) -> Any:
    """An ``SFTTrainer`` or ``DPOTrainer`` on ``rows``; ``peft`` adds a fresh LoRA adapter."""
    _, trainer_cls = trl_classes(kind)
    return trainer_cls(
        model=model,
        args=trl_config(cfg, kind, output_dir, loss_type=loss_type),
        train_dataset=to_dataset(rows),
        processing_class=tokenizer,
        peft_config=peft_config(cfg) if peft else None,
        callbacks=callbacks,
    )
