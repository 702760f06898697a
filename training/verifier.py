"""Train the verifier: a reward model (TRL ``RewardTrainer``, LoRA on the same base) that scores
"this version of the request" against the naive prompt it would replace.

Pairs come from POP records (the teacher POP's metadata says how each was judged):

- ``chosen`` over ``rejected``: every record with a rejected rewrite (each failure class);
- ``chosen`` over the naive prompt itself: records whose chosen prompt a blind judge preferred
  to the naive one (``metadata.judged.chosen_vs_naive == "win"``);
- and for records whose naive prompt is already good (``edit == "keep"``), the first rule
  already ranks the naive prompt itself over a harmful "improvement" of it.

The last two teach the verifier that leaving a prompt alone is a real option, which is what
``FIPOOptimizer(verifier=...)`` compares every candidate against. Output: ``DIR/final``, a
merged sequence-classification model that ``RewardModelVerifier`` loads.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError
from fipo_middleware.verifier import pair_text
from training.pop import POPRecord

FINAL_DIR = "final"


def verifier_pairs(records: Iterable[POPRecord], *, seed: int = 0) -> list[dict[str, str]]:
    """Preference pairs (``chosen``/``rejected`` texts, TRL's standard format), shuffled."""
    rows: list[dict[str, str]] = []
    for r in records:
        naive = r.naive_prompt
        judged = (r.metadata.get("judged") or {}).get("chosen_vs_naive")
        if r.rejected and r.rejected.strip() != r.chosen.strip():
            rows.append({"chosen": pair_text(naive, r.chosen),
                         "rejected": pair_text(naive, r.rejected)})
        if judged == "win":
            rows.append({"chosen": pair_text(naive, r.chosen), "rejected": pair_text(naive, naive)})
    random.Random(seed).shuffle(rows)
    if not rows:
        raise DataFormatError("no verifier pairs: the records have no rejected rewrites and no "
                              "judged outcomes")
    return rows


@dataclass
class VerifierConfig:
    """``fipo train verifier`` settings; everything else is TRL's ``RewardConfig`` default."""

    output_dir: str = field(metadata={"help": "where checkpoints and final/ go"})
    base: str = field(default="smollm2", metadata={"help": "smollm2, a .gguf or an HF dir/id"})
    max_steps: int = field(default=100, metadata={"help": "optimizer steps"})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "pairs per step"})
    learning_rate: float = field(default=1e-4, metadata={"help": "LoRA learning rate"})
    max_length: int = field(default=384, metadata={"help": "tokens per pair text"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (alpha = 2r)"})
    logging_steps: int = field(default=5, metadata={"help": "log every N steps"})
    save_steps: int = field(default=25, metadata={"help": "checkpoint every N steps (resume)"})
    seed: int = field(default=0, metadata={"help": "shuffle and init seed"})

    def reward_config(self) -> Any:
        import torch
        from trl import RewardConfig

        cuda = torch.cuda.is_available()
        return RewardConfig(
            bf16=bool(cuda and torch.cuda.is_bf16_supported()), fp16=False, use_cpu=not cuda,
            output_dir=self.output_dir, max_steps=self.max_steps,
            per_device_train_batch_size=self.per_device_train_batch_size,
            learning_rate=self.learning_rate, max_length=self.max_length,
            logging_steps=self.logging_steps, save_steps=self.save_steps, seed=self.seed,
            report_to="none", lr_scheduler_type="cosine", warmup_steps=0.05,
        )


def _last_checkpoint(out: Path) -> str | None:
    ckpts = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(ckpts[-1]) if ckpts else None


def train_verifier(records: Iterable[POPRecord], cfg: VerifierConfig) -> Path:
    """Train (resuming from the last checkpoint in ``cfg.output_dir``) and write ``final/``."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer

    from training.train import resolve_base

    out = Path(cfg.output_dir)
    rows = verifier_pairs(records, seed=cfg.seed)
    path = resolve_base(cfg.base)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1,
                                                               dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id
    peft = LoraConfig(task_type="SEQ_CLS", r=cfg.lora_r, lora_alpha=2 * cfg.lora_r,
                      target_modules="all-linear", modules_to_save=["score"])
    trainer = RewardTrainer(model=model, args=cfg.reward_config(),
                            train_dataset=Dataset.from_list(rows), processing_class=tok,
                            peft_config=peft)
    trainer.train(resume_from_checkpoint=_last_checkpoint(out))
    final = out / FINAL_DIR
    tmp = out / f".{FINAL_DIR}.tmp"
    merged = trainer.model.merge_and_unload()
    merged.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    if final.exists():
        import shutil

        shutil.rmtree(final)
    os.replace(tmp, final)
    return final
