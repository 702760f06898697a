"""One TRL run on a dataset JSONL: SFT (``SFTTrainer`` on prompt/completion rows), DPO and IPO
(``DPOTrainer``, ``loss_type`` sigmoid / ipo, on prompt/chosen/rejected rows), with a fresh
LoRA, a LoRA adapter to continue (``init_adapter``) or full fine-tuning. Also what every run
shares (the IPL loop too): loading the base model, the run result and ``fipo_train.json``.

torch, transformers, trl, peft and datasets are imported inside functions only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError, ModelLoadError
from fipo_middleware.models import hf_device, hf_dtype, resolve_base
from training.config import TrainConfig
from training.data import columns_for, load_rows
from training.trl_args import make_trainer, resume_checkpoint

logger = logging.getLogger("training")

FINAL_DIR = "final"
RUN_INFO = "fipo_train.json"


# ---------------------------------------------------------------------------- base model
# The GGUF -> HF base (resolve_base, materialize_gguf) lives in fipo_middleware.models,
# because the verifier loads it too.
def load_model_and_tokenizer(base: str) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_base(base)
    dtype = hf_dtype(hf_device())
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except Exception as e:
        raise ModelLoadError(f"could not load base model {path}: {e}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def adapter_dir(path: str) -> Path:
    """``--init-adapter``: a LoRA adapter directory, checked before any model loads."""
    p = Path(path).expanduser()
    if not (p / "adapter_config.json").is_file():
        raise ModelLoadError(
            f"--init-adapter {p}: not a LoRA adapter directory (no adapter_config.json); "
            "pass an SFT run's final/ or checkpoint-N/ folder"
        )
    return p


def load_adapter(model: Any, path: Path) -> Any:
    """``model`` with the trainable LoRA adapter at ``path``."""
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=True)
    except Exception as e:
        raise ModelLoadError(f"could not load adapter {path} onto the base model: {e}") from e


# ---------------------------------------------------------------------------- results
@dataclass
class TrainResult:
    method: str
    output_dir: Path
    final_dir: Path
    global_step: int
    losses: list[float] = field(default_factory=list)
    resumed_from: str | None = None
    base: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "output_dir": str(self.output_dir),
            "final_dir": str(self.final_dir),
            "global_step": self.global_step,
            "losses": self.losses,
            "resumed_from": self.resumed_from,
            "base": self.base,
            **self.extra,
        }


def losses(trainer: Any) -> list[float]:
    """Every logged training loss of the trainer's run (restored ones included on resume)."""
    return [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]


def write_run_info(result: TrainResult, cfg: TrainConfig) -> None:
    """``output_dir/fipo_train.json``: the result, the config and whether it is a LoRA."""
    info = {**result.to_dict(), "config": cfg.to_dict(), "use_lora": cfg.use_lora}
    (result.output_dir / RUN_INFO).write_text(json.dumps(info, indent=2) + "\n",
                                              encoding="utf-8")


def _finish(trainer: Any, tokenizer: Any, cfg: TrainConfig, out: Path, resumed: str | None,
            base: str) -> TrainResult:
    final = out / FINAL_DIR
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
    result = TrainResult(cfg.method, out, final, int(trainer.state.global_step),
                         losses(trainer), resumed, base)
    if trainer.is_world_process_zero():
        write_run_info(result, cfg)
    return result


# ---------------------------------------------------------------------------- SFT / DPO / IPO
def train_preference(cfg: TrainConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """SFT, DPO or IPO as configured; resumes from the newest checkpoint by default."""
    if cfg.method not in ("sft", "dpo", "ipo"):
        raise ValueError(f"train_preference runs sft, dpo or ipo, not {cfg.method!r}")
    if not cfg.data:
        raise DataFormatError("no training data given (--data FILE.jsonl)")
    out = Path(cfg.output_dir)
    rows = load_rows(cfg.data, columns_for(cfg.method))
    kind = "sft" if cfg.method == "sft" else "dpo"
    loss = "ipo" if cfg.method == "ipo" else "sigmoid"
    init = adapter_dir(cfg.init_adapter) if cfg.init_adapter else None
    base = resolve_base(cfg.base)
    model, tokenizer = load_model_and_tokenizer(base)
    if init is not None:
        model = load_adapter(model, init)
    trainer = make_trainer(cfg, kind, model, tokenizer, rows, out, loss_type=loss,
                           peft=cfg.use_lora and not cfg.init_adapter, callbacks=callbacks)
    resumed = resume_checkpoint(cfg, out)
    if resumed:
        logger.info("resuming from %s", resumed)
    trainer.train(resume_from_checkpoint=resumed)
    return _finish(trainer, tokenizer, cfg, out, resumed, base)
