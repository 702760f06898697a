"""Judged mining: the optimizer's own judged losses and wins as POP records (pure)."""

from __future__ import annotations

import pytest

from fipo_middleware.errors import FIPOError
from training.mine import judged_records
from training.pop import POPRecord
from training.verifier import preference_triples

POP = [POPRecord(id="r1", naive_prompt="why do cats purr", chosen="Explain why cats purr.",
                 metadata={"category": "open_question", "language": "en"}),
       POPRecord(id="r2", naive_prompt="sum 2 and 3", chosen="sum 2 and 3")]


def _row(pid: str, outcome: str, candidate: str) -> dict:
    return {"id": pid, "category": "c", "naive": "", "candidate": candidate,
            "outcome": outcome, "task_changed": outcome == "lose", "identical": False}


def test_losses_become_rejected_and_wins_chosen() -> None:
    rows = [_row("r1", "lose", "Why do cats purr? Answer in one word."),
            _row("r2", "win", "Add 2 and 3 and show the sum."), _row("r1", "tie", "x")]
    records, counts = judged_records(rows, POP, run="v3", judges=2)
    assert counts == {"lose": 1, "win": 1, "tie": 1}
    lose, win = records
    assert lose.chosen == "Explain why cats purr." and lose.rejected.endswith("one word.")
    assert lose.metadata["failure"] == "judged_loss"
    assert lose.metadata["category"] == "open_question"
    assert win.chosen.startswith("Add 2") and win.rejected is None
    assert win.metadata["judged"]["chosen_vs_naive"] == "win" and win.id == "r2@v3"
    # what the verifier learns from them: naive and chosen over the loss, the win over naive
    triples = preference_triples(records)
    assert ("why do cats purr", "why do cats purr", lose.rejected) in triples
    assert ("sum 2 and 3", win.chosen, "sum 2 and 3") in triples


def test_a_row_from_another_pop_is_an_error() -> None:
    with pytest.raises(FIPOError, match="names no record"):
        judged_records([_row("zz", "lose", "x")], POP, run="v3", judges=2)
