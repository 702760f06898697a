"""Fine-tuning configuration, one dataclass per method (as TRL keeps a config beside each
trainer): ``TrainConfig`` (``fipo train sft``, and the fields every method shares),
``PreferenceConfig`` (``dpo``/``ipo``: + ``beta``) and ``IPLConfig`` (``ipl``: + the loop's
settings), settable from a YAML file and CLI flags (flags win). Every field is a
``--kebab-case`` flag of its method's ``fipo train`` subcommand (its help text is the field's
``metadata["help"]``); YAML uses the field names, and a field another method owns is an error.
Defaults are CPU-friendly (short sequences, LoRA, no bf16).

A field whose name is also a field of TRL's ``SFTConfig``/``DPOConfig`` (``learning_rate``,
``max_steps``, ``beta``...) is passed to that config under the same name
(``training.trl_args.trl_config``); the others are ours (data, base model, LoRA, resume, IPL).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import types
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError

METHODS = ("sft", "dpo", "ipo", "ipl")
IPL_LOSSES = ("ipo", "sigmoid")

_NOT_FLAGS = ("method", "extra")
"""Fields without a ``--flag``: the method is the subcommand, ``extra`` is ``--set``."""


@dataclass
class TrainConfig:
    """Settings of ``fipo train sft|dpo|ipo|ipl``."""

    method: str = field(default="sft", metadata={
        "help": f"training method: {', '.join(METHODS)} (the subcommand)"})
    data: str = field(default="", metadata={
        "help": "SFT/DPO dataset JSONL from `fipo pop diversify`; for ipl a POP JSONL (the IPL "
                "loop rebuilds its datasets every round)"})
    output_dir: str = field(default="runs/fipo", metadata={
        "help": "where checkpoints, final/ and fipo_train.json go"})
    base: str = field(default="smollm2", metadata={
        "help": "base model: smollm2 (the bundled SmolLM2 GGUF), any .gguf path, an HF "
                "directory or model id"})
    use_lora: bool = field(default=True, metadata={
        "help": "train a LoRA adapter (false: full fine-tuning)"})
    init_adapter: str | None = field(default=None, metadata={
        "help": "LoRA adapter directory (an SFT run's final/ or checkpoint-N/) to keep training "
                "instead of a fresh adapter; for dpo/ipo a frozen copy of it is the reference "
                "model"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha (scaling = alpha / r)"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: str = field(default="all-linear", metadata={
        "help": "modules LoRA wraps: all-linear or a comma-separated list of module names"})
    max_steps: int = field(default=-1, metadata={
        "help": "optimizer steps; -1 = run num_train_epochs"})
    num_train_epochs: float = field(default=3.0, metadata={
        "help": "epochs when max_steps is -1"})
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    per_device_train_batch_size: int = field(default=4, metadata={
        "help": "rows per step per device"})
    gradient_accumulation_steps: int = field(default=1, metadata={
        "help": "steps accumulated per optimizer update"})
    max_length: int = field(default=512, metadata={
        "help": "tokens per row (prompt + completion); longer rows are truncated"})
    warmup_steps: float = field(default=0.0, metadata={
        "help": "warmup steps, or a fraction of the run when below 1"})
    lr_scheduler_type: str = field(default="linear", metadata={
        "help": "learning-rate schedule (linear, cosine, constant...)"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    save_steps: int = field(default=50, metadata={
        "help": "checkpoint every N steps (what --resume continues from)"})
    save_total_limit: int | None = field(default=2, metadata={
        "help": "checkpoints kept (null in YAML = all)"})
    logging_steps: int = field(default=5, metadata={"help": "log the loss every N steps"})
    seed: int = field(default=42, metadata={
        "help": "training seed (IPL round N diversifies with seed + N)"})
    resume: str = field(default="auto", metadata={
        "help": "auto: continue from the newest checkpoint in output_dir when there is one; "
                "never; or a checkpoint directory"})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "trade compute for memory"})
    bf16: bool | None = field(default=None, metadata={
        "help": "bf16 mixed precision (unset: on when a CUDA GPU supports it)"})
    report_to: str = field(default="none", metadata={
        "help": "trainer logging integration (none, tensorboard, wandb...)"})
    dataloader_num_workers: int = field(default=0, metadata={
        "help": "data loader worker processes"})
    extra: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "passed verbatim to the TRL config (any SFTConfig/DPOConfig field; "
                "--set KEY=VALUE)"})

    def __post_init__(self) -> None:
        cls = config_class(self.method)
        if cls is not type(self):
            raise ValueError(f"method {self.method!r} takes a {cls.__name__}, not a "
                             f"{type(self).__name__}")

    @property
    def target_modules(self) -> str | list[str]:
        t = self.lora_target_modules.strip()
        return t if t == "all-linear" else [m.strip() for m in t.split(",") if m.strip()]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class PreferenceConfig(TrainConfig):
    """Settings of ``fipo train dpo|ipo``."""

    method: str = field(default="dpo", metadata={
        "help": f"training method: {', '.join(METHODS)} (the subcommand)"})
    beta: float = field(default=0.1, metadata={"help": "DPO beta / IPO tau"})


@dataclass
class IPLConfig(PreferenceConfig):
    """Settings of ``fipo train ipl``: preference rounds with regeneration in between."""

    method: str = field(default="ipl", metadata={
        "help": f"training method: {', '.join(METHODS)} (the subcommand)"})
    dialect: str = field(default="chat", metadata={
        "help": "dialect of the datasets the IPL loop rebuilds (chat, fipo-original)"})
    ipl_rounds: int = field(default=2, metadata={
        "help": "IPL rounds (train, regenerate, rebuild)"})
    ipl_loss: str = field(default="ipo", metadata={
        "help": f"IPL preference loss: {', '.join(IPL_LOSSES)}"})
    ipl_max_new_tokens: int = field(default=96, metadata={
        "help": "tokens per IPL generation (the rewrite, the silver answer)"})
    ipl_limit: int | None = field(default=None, metadata={
        "help": "use at most this many POP records per IPL round (unset = all)"})

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.ipl_loss not in IPL_LOSSES:
            raise ValueError(f"ipl_loss must be 'ipo' or 'sigmoid', got {self.ipl_loss!r}")


CONFIGS: dict[str, type[TrainConfig]] = {
    "sft": TrainConfig, "dpo": PreferenceConfig, "ipo": PreferenceConfig, "ipl": IPLConfig}
"""The config class of each ``fipo train`` method."""


def config_class(method: str) -> type[TrainConfig]:
    try:
        return CONFIGS[method]
    except KeyError:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}") from None


@functools.cache
def field_types(cls: type[TrainConfig] = IPLConfig) -> dict[str, Any]:
    """Each field's type, resolved (the annotations are strings here)."""
    return typing.get_type_hints(cls)


def _base_type(tp: Any) -> Any:
    """``int | None`` -> int; ``bool | None`` -> bool; any other union -> str."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
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


def _flag_help(f: dataclasses.Field[Any]) -> str:
    if f.default in (None, ""):
        return f.metadata["help"]
    default = str(f.default).lower() if isinstance(f.default, bool) else f.default
    return f"{f.metadata['help']} (default: {default})"


def add_config_arguments(parser: argparse.ArgumentParser, method: str = "sft") -> None:
    """One ``--flag`` per field of ``method``'s config (default None: unset flags do not
    override YAML)."""
    cls = config_class(method)
    parser.add_argument("--config", help=f"YAML file with {cls.__name__} fields (flags win)")
    types_ = field_types(cls)
    for f in fields(cls):
        if f.name in _NOT_FLAGS:
            continue
        tp = _base_type(types_[f.name])
        flag = "--" + f.name.replace("_", "-")
        if tp is bool:
            parser.add_argument(flag, type=_parse_bool, default=None, metavar="BOOL",
                                help=_flag_help(f))
        elif tp in (int, float):
            parser.add_argument(flag, type=tp, default=None, help=_flag_help(f))
        else:
            parser.add_argument(flag, type=str, default=None, help=_flag_help(f))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra TRL config field (repeatable), e.g. --set optim=adamw_torch")


def load_yaml(path: str | os.PathLike[str], cls: type[TrainConfig] = TrainConfig
              ) -> dict[str, Any]:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise DataFormatError(f"{p}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{p}: expected a mapping of {cls.__name__} fields")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        # the first method whose config has the field ("beta": dpo, not ipl)
        owners = {f.name: m for m in ("ipl", "dpo") for f in fields(CONFIGS[m])}
        hint = [f"{k} (a {owners[k]} setting)" if k in owners else k for k in unknown]
        raise DataFormatError(f"{p}: unknown field(s) for {cls.__name__}: {', '.join(hint)}")
    return data


def config_from_args(method: str, args: argparse.Namespace) -> TrainConfig:
    """``method``'s config: YAML (``--config``) first, then every flag that was given."""
    cls = config_class(method)
    values: dict[str, Any] = load_yaml(args.config, cls) if getattr(args, "config", None) else {}
    for f in fields(cls):
        v = getattr(args, f.name, None)
        if v is not None and f.name not in _NOT_FLAGS:
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
    return cls(**values)
