"""Verifier calibration (pure: stored judged runs, a scoring function in place of the model)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from evaluation.calibrate import (
    auc,
    calibrate,
    choose_margin,
    cross_validate,
    judged_rows,
    parse_run,
    served,
)
from fipo_middleware.errors import DataFormatError

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / "evaluation" / "data" / "judge_dev.jsonl"
V3 = REPO / "evaluation" / "data" / "judged" / "v3"


def _rows(outcomes: list[str]) -> list[dict]:
    return [{"id": str(i), "category": "c", "naive": "n", "candidate": f"c{i}", "outcome": o,
             "task_changed": o == "lose", "identical": False} for i, o in enumerate(outcomes)]


def test_stored_v3_run_reproduces_the_model_card_counts() -> None:
    rows = judged_rows(DEV, V3 / "fipo" / "texts.jsonl",
                       [V3 / "fipo" / "judge1.jsonl", V3 / "fipo" / "judge2.jsonl"])
    assert len(rows) == 174
    got = {o: sum(r["outcome"] == o for r in rows) for o in ("win", "tie", "lose")}
    # MODEL_CARD.md, full rewrite, combined: 0 % win, 28 % tie, 72 % lose of 174
    assert got == {"win": 0, "tie": 49, "lose": 125}
    assert all(r["outcome"] == "tie" for r in rows if r["identical"])


def test_threshold_serves_only_rewrites_above_it() -> None:
    rows = _rows(["win", "lose", "tie", "lose"])
    margins = [2.0, 1.0, 0.5, -1.0]
    c = served(rows, margins, 0.75)
    assert (c["win"], c["lose"], c["tie"], c["served"]) == (1, 1, 2, 2)
    assert served(rows, margins, math.inf)["tie"] == 4


def test_choose_margin_keeps_losses_under_target_and_maximises_wins() -> None:
    rows = _rows(["win", "lose", "win", "lose", "tie", "tie", "tie", "tie", "tie", "tie"])
    margins = [3.0, 2.5, 2.0, 1.0, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0]
    t = choose_margin(rows, margins, max_loss=0.10)  # at most 1 loss of 10
    c = served(rows, margins, t)
    # wins net of losses: serving the first win only (1 - 0) ties serving down to the second
    # win (2 - 1); fewer losses breaks the tie
    assert t == pytest.approx(2.5) and (c["win"], c["lose"], c["served"]) == (1, 0, 1)
    rows[1]["outcome"] = "tie"  # now the second win comes at no loss
    c = served(rows, margins, choose_margin(rows, margins, max_loss=0.10))
    assert (c["win"], c["lose"]) == (2, 0)
    assert served(rows, margins, choose_margin(rows, margins, 0.0))["lose"] == 0


def test_no_net_gain_serves_nothing() -> None:
    rows = _rows(["lose", "tie", "lose", "tie"])
    margins = [3.0, 2.0, 1.0, 0.0]
    t = choose_margin(rows, margins, max_loss=0.5)  # the budget allows 2 losses
    assert served(rows, margins, t)["served"] == 0


def test_cross_validation_counts_every_prompt_once() -> None:
    rows = _rows(["win", "lose", "tie"] * 10)
    margins = [float(i % 3 == 0) - float(i % 3 == 1) for i in range(30)]
    cv = cross_validate(rows, margins, 0.10, folds=3, seed=1)
    assert cv["n"] == 30 and len(cv["margins"]) == 3
    assert cv["lose"]["count"] == 0 and cv["win"]["count"] == 10


def test_auc_and_full_calibrate_with_a_scoring_function() -> None:
    class ByLength:  # control flow only: longer candidate = higher score
        def score(self, naive: str, candidates: list[str]) -> list[float]:
            return [float(len(c)) for c in candidates]

    rows = _rows(["win", "lose"])
    rows[0]["candidate"] = "a much longer candidate"
    rows[1]["candidate"] = "x"
    assert auc(rows, [5.0, -5.0]) == 1.0
    report = calibrate({"r": rows}, ByLength(), max_loss=0.0, folds=2)
    r = report["runs"]["r"]
    assert r["in_sample"]["lose"]["count"] == 0 and r["in_sample"]["win"]["count"] == 1
    assert r["unverified"]["lose"]["count"] == 1


def test_bad_run_spec_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="expected NAME=TEXTS"):
        parse_run("just-a-path.jsonl")
    with pytest.raises(DataFormatError, match="no file"):
        parse_run(f"x={tmp_path / 'missing.jsonl'}:{tmp_path / 'v.jsonl'}")
