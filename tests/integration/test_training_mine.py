"""``fipo pop mine`` on the real untuned SmolLM2 (llama.cpp): its rewrites mostly fail the
guard, so it yields hard negatives; every mined record is a valid POP pair whose rejected side
the guard refuses, and a rerun resumes without duplicates."""

from __future__ import annotations

from pathlib import Path

import pytest

from fipo_middleware.guard import check_rewrite
from fipo_middleware.template import default_budget
from tests import REPO
from training.mine import mine
from training.pop import load_pop

pytestmark = pytest.mark.slow  # many generations of the base model

SEED = REPO / "training" / "seed"


def test_mine_yields_guard_rejected_pairs_and_resumes(tmp_path: Path, base_optimizer) -> None:
    records = load_pop(SEED / "train_group5.jsonl")[:3]
    out = tmp_path / "mined.jsonl"
    stats = mine(base_optimizer, records[:2], out, samples=1, progress=False)
    assert stats.prompts == 2 and stats.mined >= 1
    mined = load_pop(out)
    assert len(mined) == stats.mined
    by_id = {r.id: r for r in records}
    for m in mined:
        src = by_id[m.metadata["mined_from"]]
        assert m.id.startswith(src.id + "~mined") and m.source == "mined"
        assert (m.naive_prompt, m.chosen) == (src.naive_prompt, src.chosen)
        assert m.rejected != m.chosen and m.metadata["failure"]
        verdict = check_rewrite(m.naive_prompt, m.rejected, default_budget(m.naive_prompt))
        assert not verdict.usable
        assert set(m.metadata["failure"].split(",")) == set(verdict.reasons)
    again = mine(base_optimizer, records, out, samples=1, progress=False)
    assert again.skipped_done == 2 and again.prompts == 1
    ids = [r.id for r in load_pop(out)]
    assert len(ids) == len(set(ids)) == stats.mined + again.mined
