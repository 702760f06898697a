"""On-policy hard negatives: what the current optimizer really writes, where the guard rejects it.

``fipo pop mine`` runs an optimizer (usually the SFT adapter) on the naive prompts of a POP file,
greedy plus ``samples`` seeded resamples, exactly as the middleware would serve them (naive prompt
only, no silver/golden response). Every distinct rewrite the guard rejects becomes a new POP
record: same naive prompt and chosen rewrite, ``rejected`` = the model's own failure,
``metadata.failure`` = the guard's reasons. Preference training on these pushes down the
failures the policy actually makes (the iterative-preference idea of the paper's IPL, with the
guard as the discriminator) instead of only the hand-written ones.

Output is append-only JSONL, one line per mined record, and a rerun skips naive prompts already
mined (their ids are in ``<output>.done``).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.errors import FIPOError
from fipo_middleware.jsonl import append_jsonl, done_ids
from training.pop import POPRecord


@dataclass
class MineStats:
    prompts: int = 0
    mined: int = 0
    skipped_done: int = 0
    reasons: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"prompts": self.prompts, "mined": self.mined,
                "skipped_done": self.skipped_done, "reasons": dict(self.reasons)}


def _done_path(output: Path) -> Path:
    return output.with_name(output.name + ".done")


def mine_record(optimizer: Any, record: POPRecord, *, samples: int = 2) -> list[POPRecord]:
    """The guard-rejected rewrites ``optimizer`` writes for ``record.naive_prompt``."""
    try:
        candidates = optimizer.candidates(record.naive_prompt, n=samples + 1,
                                          options=record.options)
    except FIPOError:  # too long for the context, or not a prompt to optimize: nothing to mine
        return []
    seen: set[str] = {record.chosen.strip()}
    out: list[POPRecord] = []
    for n, cand in enumerate(candidates):
        rewrite = cand.rewrite
        if not rewrite.strip() or rewrite.strip() in seen:
            continue
        seen.add(rewrite.strip())
        if cand.accepted:
            continue
        out.append(POPRecord(
            id=f"{record.id}~mined{n}",
            naive_prompt=record.naive_prompt,
            chosen=record.chosen,
            rejected=rewrite,
            task_kind=record.task_kind,
            options=record.options,
            source="mined",
            metadata={**record.metadata, "failure": ",".join(cand.guard_reasons),
                      "mined_from": record.id, "mined_try": n,
                      "mined_by": optimizer.backend.identity},
        ))
    return out


def mine(
    optimizer: Any,
    records: Iterable[POPRecord],
    output: str | os.PathLike[str],
    *,
    samples: int = 2,
    progress: bool = True,
) -> MineStats:
    """Mine every record (resumable); see the module docstring."""
    from tqdm import tqdm

    out = Path(output)
    done_file = _done_path(out)
    done = done_ids(done_file)
    written = done_ids(out)  # a kill between a record and its done mark must not duplicate it
    todo = list(records)
    stats = MineStats()
    for rec in tqdm(todo, desc="mining", unit="prompt", disable=not progress):
        if rec.id in done:
            stats.skipped_done += 1
            continue
        mined = mine_record(optimizer, rec, samples=samples)
        for m in mined:
            if m.id not in written:
                append_jsonl(out, m.model_dump())
            stats.reasons.update(m.metadata["failure"].split(","))
        append_jsonl(done_file, {"id": rec.id, "mined": len(mined)})
        stats.prompts += 1
        stats.mined += len(mined)
    return stats


# ---------------------------------------------------------------------------- judged mining
def judged_records(rows: Iterable[dict[str, Any]], pop: Iterable[POPRecord], *, run: str,
                   judges: int) -> tuple[list[POPRecord], Counter[str]]:
    """The optimizer's rewrites of POP naive prompts, judged blind against the naive prompt
    (``evaluation.calibrate.judged_rows``, judges combined), as POP records: IPL's idea with a
    strong judge as the discriminator.

    - a judged loss: ``chosen`` = the record's own chosen prompt, ``rejected`` = the rewrite
      (``metadata.failure = "judged_loss"``, the judges' reason kept);
    - a judged win: ``chosen`` = the rewrite, no rejected (``judged.chosen_vs_naive = "win"``);
    - ties and identical texts teach nothing here and are counted only.
    """
    by_id = {r.id: r for r in pop}
    out: list[POPRecord] = []
    counts: Counter[str] = Counter()
    for row in rows:
        counts[row["outcome"]] += 1
        src = by_id.get(row["id"])
        if src is None:
            raise FIPOError(f"judged row {row['id']!r} names no record of the POP files given")
        meta = {k: src.metadata[k] for k in ("category", "language") if k in src.metadata}
        meta.update(mined_from=run, task_changed=row["task_changed"])
        if row["outcome"] == "lose":
            out.append(POPRecord(
                id=f"{src.id}@{run}", naive_prompt=src.naive_prompt, chosen=src.chosen,
                rejected=row["candidate"], source="mined-judged",
                metadata={**meta, "failure": "judged_loss",
                          "judged": {"rejected_vs_naive": "lose", "judges": judges}}))
        elif row["outcome"] == "win":
            out.append(POPRecord(
                id=f"{src.id}@{run}", naive_prompt=src.naive_prompt, chosen=row["candidate"],
                source="mined-judged",
                metadata={**meta, "judged": {"chosen_vs_naive": "win", "judges": judges}}))
    return out, counts
