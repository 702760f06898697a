"""Intrinsic optimizer metrics on BPO prompt pairs: the real untuned base model (llama.cpp)
against the identity baseline."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.intrinsic import load_pairs, run_prompt_eval
from evaluation.optimizers import as_optimizer, parse_optimizer
from fipo_middleware.guard import check_rewrite


@pytest.fixture(scope="module")
def bpo(shared_data: Path) -> Path:
    return shared_data / "bpo" / "bpo_pairs_dev.json"


def test_prompt_eval_vs_identity(bpo: Path, base_optimizer, tmp_path: Path) -> None:
    specs = [parse_optimizer("naive"), as_optimizer("base", base_optimizer)]
    summary = run_prompt_eval(bpo, specs, output=tmp_path, limit=3, progress=False)
    by = {e["name"]: e for e in summary["optimizers"]}
    assert set(by) == {"naive", "base"} and summary["n"] == 3
    ident = by["naive"]
    assert ident["faithful"] == 1.0  # the naive prompt keeps everything of itself
    pairs = load_pairs(bpo, 3)
    expected_usable = sum(check_rewrite(p["prompt"], p["prompt"]).usable for p in pairs) / 3
    assert ident["usable"] == pytest.approx(expected_usable, abs=1e-4)
    for e in summary["optimizers"]:
        assert 0.0 <= e["usable"] <= 1.0 and 0.0 <= e["rouge_l"] <= 1.0
    for row in summary["rows"]:
        if row["optimizer"] == "base" and row["rewrite"].strip():
            verdict = check_rewrite(row["naive_prompt"], row["rewrite"],
                                    _budget(row["naive_prompt"]))
            assert row["usable"] == (1.0 if verdict.usable else 0.0)
    assert (tmp_path / "prompt_summary.json").is_file()
    assert "| naive |" in (tmp_path / "prompt_report.md").read_text(encoding="utf-8")
    # Rerun: rewrites come from the cache, the optimizer is not asked again.
    from evaluation.optimizers import OptimizerSpec

    cached = OptimizerSpec("base", specs[1].key, lambda: pytest.fail("optimizer re-ran"))
    again = run_prompt_eval(bpo, [cached], output=tmp_path, limit=3, progress=False)
    assert [e["usable"] for e in again["optimizers"]] == [ident["usable"], by["base"]["usable"]]


def _budget(naive: str) -> int:
    from fipo_middleware.template import MetaPromptInput

    return MetaPromptInput(naive).budget
