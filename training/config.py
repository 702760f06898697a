"""Fine-tuning configuration: one flat dataclass, settable from a YAML file and CLI flags
(flags win). Every field is a ``--kebab-case`` flag of ``fipo train``; YAML uses the field
names. Defaults are CPU-friendly (short sequences, LoRA, no bf16)."""

from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError

METHODS = ("sft", "dpo", "ipo", "ipl")


@dataclass
class TrainConfig:
    """Settings of ``fipo train sft|dpo|ipo|ipl``."""

    method: str = "sft"
    data: str = ""
    """SFT/DPO/IPL dataset JSONL from ``fipo pop diversify``; for ``ipl`` a POP JSONL (the IPL
    loop rebuilds its datasets every round)."""
    output_dir: str = "runs/fipo"
    base: str = "smollm2"
    """``smollm2`` (the bundled SmolLM2 GGUF), any ``.gguf`` path, an HF directory or model id."""
    use_lora: bool = True
    init_adapter: str | None = None
    """A LoRA adapter directory (e.g. an SFT run's ``final/`` or ``checkpoint-N/``) to keep
    training instead of a fresh adapter; for DPO/IPO a frozen copy of it is the reference
    model, so preference tuning starts from, and is anchored to, the SFT policy."""
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_target_modules: str = "all-linear"
    """``all-linear`` or a comma-separated list of module names."""
    max_steps: int = -1
    num_train_epochs: float = 3.0
    learning_rate: float = 2e-4
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 512
    warmup_steps: float = 0.0
    """Steps, or a fraction of the run when below 1 (transformers 5)."""
    lr_scheduler_type: str = "linear"
    weight_decay: float = 0.0
    save_steps: int = 50
    save_total_limit: int | None = 2
    logging_steps: int = 5
    seed: int = 42
    resume: str = "auto"
    """``auto``: continue from the newest checkpoint in output_dir when there is one;
    ``never``; or a checkpoint directory."""
    gradient_checkpointing: bool = False
    bf16: bool | None = None
    """None = on when a CUDA GPU supports it, off on CPU."""
    beta: float = 0.1
    """DPO beta / IPO tau."""
    dialect: str = "chat"
    """Dialect of the datasets the IPL loop rebuilds."""
    ipl_rounds: int = 2
    ipl_loss: str = "ipo"
    ipl_max_new_tokens: int = 96
    ipl_limit: int | None = None
    """Use at most this many POP records per IPL round (None = all)."""
    report_to: str = "none"
    dataloader_num_workers: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    """Passed verbatim to the TRL config (any ``SFTConfig``/``DPOConfig`` field)."""

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.ipl_loss not in ("ipo", "sigmoid"):
            raise ValueError(f"ipl_loss must be 'ipo' or 'sigmoid', got {self.ipl_loss!r}")

    @property
    def target_modules(self) -> str | list[str]:
        t = self.lora_target_modules.strip()
        return t if t == "all-linear" else [m.strip() for m in t.split(",") if m.strip()]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _base_type(tp: Any) -> Any:
    """``int | None`` -> int; ``bool | None`` -> bool."""
    if isinstance(tp, str):
        tp = eval(tp, {**vars(typing), "Any": Any})  # annotations are strings (future import)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else str
    return tp


def _parse_bool(v: str) -> bool:
    low = v.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {v!r}")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per config field (default None: unset flags do not override YAML)."""
    parser.add_argument("--config", help="YAML file with TrainConfig fields")
    for f in fields(TrainConfig):
        if f.name in ("method", "extra"):
            continue
        tp = _base_type(f.type)
        flag = "--" + f.name.replace("_", "-")
        if tp is bool:
            parser.add_argument(flag, type=_parse_bool, default=None, metavar="BOOL")
        elif tp in (int, float):
            parser.add_argument(flag, type=tp, default=None)
        else:
            parser.add_argument(flag, type=str, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra TRL config field (repeatable), e.g. --set optim=adamw_torch")


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise DataFormatError(f"{p}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{p}: expected a mapping of TrainConfig fields")
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise DataFormatError(f"{p}: unknown field(s) {', '.join(unknown)}")
    return data


def config_from_args(method: str, args: argparse.Namespace) -> TrainConfig:
    """YAML (``--config``) first, then every flag that was given."""
    values: dict[str, Any] = load_yaml(args.config) if getattr(args, "config", None) else {}
    for f in fields(TrainConfig):
        v = getattr(args, f.name, None)
        if v is not None and f.name not in ("method", "extra"):
            values[f.name] = v
    extra = dict(values.get("extra") or {})
    for item in getattr(args, "set", []) or []:
        key, sep, raw = item.partition("=")
        if not sep:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        import yaml

        extra[key.strip()] = yaml.safe_load(raw)
    values["extra"] = extra
    values["method"] = method
    return TrainConfig(**values)
