"""The FIPO paper's iterative preference learning (IPL): rounds of preference training on the
IPL dataset, each followed by a refresh of the POP records with the model just trained as
optimizer, discriminator and responder.

``output_dir/round-N/`` holds each round's checkpoints, ``final/`` weights and ``pop.jsonl``
(the refreshed records); a rerun skips finished rounds and resumes the unfinished one.

torch, transformers, trl and peft are imported inside functions only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError
from fipo_middleware.models import resolve_base
from training.config import IPLConfig
from training.data import ipl_rows
from training.pop import POPRecord, load_pop, save_pop
from training.preference import (
    FINAL_DIR,
    TrainResult,
    load_model_and_tokenizer,
    losses,
    write_run_info,
)
from training.trl_args import make_trainer, resume_checkpoint


@dataclass
class IPLStats:
    new_chosen: int = 0
    kept: int = 0
    silver_regenerated: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"new_chosen": self.new_chosen, "kept": self.kept,
                "silver_regenerated": self.silver_regenerated}


def ipl_regenerate(
    model: Any, tokenizer: Any, records: list[POPRecord], cfg: IPLConfig, round_no: int
) -> tuple[list[POPRecord], IPLStats]:
    """One IPL refresh with the current model as optimizer, discriminator and responder:
    a new optimized prompt per record (``FIPOOptimizer.candidates``, greedy, the chosen prompt's
    word count as budget); the discriminator (both A/B orders, must agree, and the guard must
    accept the candidate) decides whether it replaces the chosen prompt (the old one becomes
    rejected) or stays the rejected one (a fresh hard negative); then a new silver response."""
    from fipo_middleware.backends.base import DecodingParams
    from fipo_middleware.backends.transformers import TransformersBackend
    from fipo_middleware.errors import PromptTooLongError
    from fipo_middleware.optimizer import FIPOOptimizer
    from fipo_middleware.template import Dialect, build_answer_prompt, build_discriminator
    from training.build import parse_verdict
    from training.diversify import _extra_prompt

    dialect = Dialect.parse(cfg.dialect)
    backend = TransformersBackend(model, tokenizer=tokenizer)
    gen = DecodingParams(max_tokens=cfg.ipl_max_new_tokens)
    # Training data, not serving: an injection-looking naive prompt is still rewritten.
    optimizer = FIPOOptimizer(backend=backend, dialect=dialect, decoding=gen, cache_size=0,
                              reject_injection=False)
    judge_params = DecodingParams(max_tokens=4)
    stats = IPLStats()
    out: list[POPRecord] = []
    try:
        for rec in records:
            try:
                (cand,) = optimizer.candidates(
                    rec.naive_prompt, rec.silver_response, rec.golden_response,
                    max(1, len(rec.chosen.split())), n=1, options=rec.options)
                new = cand.rewrite
            except PromptTooLongError:  # no room to generate: nothing new this round
                cand, new = None, ""
            chosen, rejected = rec.chosen, rec.rejected
            outcome = "kept"
            if cand is not None and new and new.strip() != rec.chosen.strip():
                golden = rec.golden_response or ""
                v1 = parse_verdict(backend.generate(_extra_prompt(
                    build_discriminator(rec.naive_prompt, new, rec.chosen, golden), dialect),
                    judge_params))
                v2 = parse_verdict(backend.generate(_extra_prompt(
                    build_discriminator(rec.naive_prompt, rec.chosen, new, golden), dialect),
                    judge_params))
                if v1 == "A" and v2 == "B" and cand.accepted:
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


def load_round(model: Any, final_dir: Path, cfg: IPLConfig) -> Any:
    """The weights of a finished round (its ``final/``), to continue from."""
    if not cfg.use_lora:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(str(final_dir))
    from peft import PeftModel

    if isinstance(model, PeftModel):
        model.load_adapter(str(final_dir), adapter_name="default", is_trainable=True)
        return model
    return PeftModel.from_pretrained(model, str(final_dir), is_trainable=True)


def train_ipl(cfg: IPLConfig, *, callbacks: list[Any] | None = None) -> TrainResult:
    """Iterate: train (DPO/IPO on the IPL dataset) -> regenerate optimized prompts with the
    current model -> discriminator keeps new or previous -> regenerate silver responses ->
    rebuild the data (diversify with a per-round seed) -> next round (see the module
    docstring for the layout and resume)."""
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
            model = load_round(model, rdir / FINAL_DIR, cfg)
            records = load_pop(done_pop)
            rounds.append({"round": r, "skipped": True})
            continue
        rows, counts = ipl_rows(records, seed=cfg.seed + r, dialect=cfg.dialect)
        if not rows:
            raise DataFormatError(f"{cfg.data}: no IPL pairs (records need a rejected prompt)")
        from peft import PeftModel

        trainer = make_trainer(cfg, "dpo", model, tokenizer, rows, rdir, loss_type=cfg.ipl_loss,
                               peft=cfg.use_lora and not isinstance(model, PeftModel),
                               callbacks=callbacks)
        resumed = resume_checkpoint(cfg, rdir)
        resumed_any = resumed_any or resumed
        trainer.train(resume_from_checkpoint=resumed)
        model = trainer.model
        trainer.save_model(str(rdir / FINAL_DIR))
        records, stats = ipl_regenerate(model, tokenizer, records, cfg, r)
        if trainer.is_world_process_zero():
            save_pop(done_pop, records)
        rounds.append({"round": r, "global_step": int(trainer.state.global_step),
                       "losses": losses(trainer), "pairs": len(rows),
                       "counts": counts, **stats.to_dict()})
    final = out / FINAL_DIR
    model.save_pretrained(str(final))
    tokenizer.save_pretrained(str(final))
    all_losses = [x for rd in rounds for x in rd.get("losses", [])]
    step = int(trainer.state.global_step) if trainer is not None else 0
    result = TrainResult("ipl", out, final, step, all_losses, resumed_any, base,
                         extra={"rounds": rounds})
    write_run_info(result, cfg)
    return result
