"""Train the verifier: a reward model (TRL ``RewardTrainer``, LoRA on the same base) that scores
"this version of the request" against the naive prompt it would replace.

Pairs come from POP records (the teacher POP's metadata says how each was judged):

- ``chosen`` over ``rejected``: every record with a rejected rewrite (each failure class);
- ``chosen`` over the naive prompt itself: records whose chosen prompt a blind judge preferred
  to the naive one (``metadata.judged.chosen_vs_naive == "win"``);
- and for records whose naive prompt is already good (``edit == "keep"``), the first rule
  already ranks the naive prompt itself over a harmful "improvement" of it.

The last two teach the verifier that leaving a prompt alone is a real option, which is what
``FIPOOptimizer(verifier=...)`` compares every candidate against. Output: ``DIR/final``, the
LoRA adapter and score head (with ``fipo_verifier.json`` naming the base) that
``RewardModelVerifier`` loads.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError
from fipo_middleware.verifier import VERIFIER_INFO, pair_text
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

    output_dir: str = field(metadata={"help": "where verifier.json (features) or checkpoints "
                                              "and final/ (reward-model) go"})
    kind: str = field(default="features", metadata={
        "help": "features: a linear Bradley-Terry model over comparison features (pure Python "
                "at serve time, seconds to train); reward-model: a TRL RewardTrainer LoRA "
                "(torch at serve time; hours on 2 CPU cores)"})
    base: str = field(default="smollm2", metadata={"help": "smollm2, a .gguf or an HF dir/id"})
    max_steps: int = field(default=100, metadata={"help": "optimizer steps"})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "pairs per step"})
    learning_rate: float = field(default=1e-4, metadata={"help": "LoRA learning rate"})
    max_length: int = field(default=384, metadata={"help": "tokens per pair text"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (alpha = 2r)"})
    on_policy_weight: int = field(default=20, metadata={
        "help": "features: count each record mined from the optimizer's own judged rewrites "
                "(source mined-judged) N times; the teacher POP outnumbers them ~40:1"})
    logging_steps: int = field(default=5, metadata={"help": "log every N steps"})
    save_steps: int = field(default=25, metadata={"help": "checkpoint every N steps (resume)"})
    seed: int = field(default=0, metadata={"help": "shuffle and init seed"})

    def reward_config(self) -> Any:
        from trl import RewardConfig

        from fipo_middleware.models import train_precision

        return RewardConfig(
            **train_precision(), fp16=False,
            output_dir=self.output_dir, max_steps=self.max_steps,
            per_device_train_batch_size=self.per_device_train_batch_size,
            learning_rate=self.learning_rate, max_length=self.max_length,
            logging_steps=self.logging_steps, save_steps=self.save_steps, seed=self.seed,
            report_to="none", lr_scheduler_type="cosine", warmup_steps=0.05,
        )


def _last_checkpoint(out: Path) -> str | None:
    ckpts = sorted(out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(ckpts[-1]) if ckpts else None


FEATURE_FILE = "verifier.json"


def train_verifier(records: Iterable[POPRecord], cfg: VerifierConfig) -> Path:
    """``kind=features``: fit and write ``DIR/verifier.json``. ``kind=reward-model``: train
    (resuming from the last checkpoint in ``cfg.output_dir``) and write ``final/``."""
    if cfg.kind == "features":
        out = Path(cfg.output_dir) / FEATURE_FILE
        weighted = [r for r in records
                    for _ in range(cfg.on_policy_weight if r.source == "mined-judged" else 1)]
        train_feature_verifier(weighted, out, seed=cfg.seed)
        return out
    if cfg.kind != "reward-model":
        raise DataFormatError(f"verifier kind must be features or reward-model, got {cfg.kind!r}")
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardTrainer

    from fipo_middleware.models import resolve_base

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
    # The LoRA adapter and score head only (a few MB, shippable); RewardModelVerifier loads
    # it on the base named in fipo_verifier.json.
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    trainer.model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / VERIFIER_INFO).write_text(json.dumps({"base": cfg.base, "max_length": cfg.max_length,
                                                 "max_steps": cfg.max_steps}) + "\n",
                                     encoding="utf-8")
    if final.exists():
        import shutil

        shutil.rmtree(final)
    os.replace(tmp, final)
    return final


# ---------------------------------------------------------------------------- feature verifier
def preference_triples(records: Iterable[POPRecord]) -> list[tuple[str, str, str]]:
    """``(naive, better, worse)``: chosen over rejected; chosen over the naive prompt where a
    blind judge preferred it; the naive prompt over a rejected rewrite of it."""
    out: list[tuple[str, str, str]] = []
    for r in records:
        naive, chosen = r.naive_prompt, r.chosen
        has_rejected = bool(r.rejected and r.rejected.strip() != chosen.strip())
        if has_rejected:
            out.append((naive, chosen, r.rejected))
            if chosen.strip() != naive.strip():
                out.append((naive, naive, r.rejected))
        if (r.metadata.get("judged") or {}).get("chosen_vs_naive") == "win" \
                and chosen.strip() != naive.strip():
            out.append((naive, chosen, naive))
    if not out:
        raise DataFormatError("no verifier pairs: the records have no rejected rewrites and no "
                              "judged outcomes")
    return out


def train_feature_verifier(records: Iterable[POPRecord], out_path: str | os.PathLike[str], *,
                           l2: float = 1e-3, steps: int = 2000, learning_rate: float = 0.5,
                           holdout: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Fit ``FeatureVerifier`` weights (Bradley-Terry: P(better > worse) = sigmoid(w . (f_better
    - f_worse)), L2, full-batch gradient descent) and write them atomically to ``out_path``.
    Returns the fit summary, with pairwise accuracy on a held-out share of the pairs."""
    import numpy as np

    from fipo_middleware.jsonl import write_text_atomic
    from fipo_middleware.verifier import FEATURE_NAMES, comparison_features

    triples = preference_triples(records)
    random.Random(seed).shuffle(triples)
    feats = [[comparison_features(n, x) for x in (b, w)] for n, b, w in triples]
    arr = np.array([[[f[k] for k in FEATURE_NAMES] for f in pair] for pair in feats])
    flat = arr.reshape(-1, len(FEATURE_NAMES))
    mean, scale = flat.mean(axis=0), flat.std(axis=0)
    scale[scale < 1e-9] = 1.0
    z = (arr - mean) / scale
    diff = z[:, 0, :] - z[:, 1, :]
    n_hold = int(len(diff) * holdout)
    test, train = diff[:n_hold], diff[n_hold:]
    w = np.zeros(len(FEATURE_NAMES))
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-train @ w))
        grad = -((1.0 - p)[:, None] * train).mean(axis=0) + l2 * w
        w -= learning_rate * grad
    def accuracy(d: Any) -> float | None:
        return round(float(((d @ w) > 0).mean()), 4) if len(d) else None

    summary = {"kind": "features", "features": list(FEATURE_NAMES),
               "weights": {k: round(float(v), 6) for k, v in zip(FEATURE_NAMES, w, strict=True)},
               "mean": {k: round(float(v), 6) for k, v in zip(FEATURE_NAMES, mean, strict=True)},
               "scale": {k: round(float(v), 6) for k, v in zip(FEATURE_NAMES, scale,
                                                               strict=True)},
               "pairs": len(diff), "holdout_pairs": n_hold,
               "train_accuracy": accuracy(train), "holdout_accuracy": accuracy(test),
               "l2": l2, "steps": steps, "seed": seed}
    write_text_atomic(Path(out_path), json.dumps(summary, indent=1) + "\n")
    return summary
