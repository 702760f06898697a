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
