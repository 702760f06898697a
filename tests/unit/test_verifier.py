"""The verifier: best-of-N against the naive prompt (control flow with a scripted verifier), the
verifier's training pairs and a missing reward model. Training and serving a real TRL reward
model is in ``tests/integration/test_verifier.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from fipo_middleware import FIPOOptimizer
from fipo_middleware.verifier import RewardModelVerifier, pair_text
from tests.fakes import SequenceLLM, TableVerifier
from training.pop import POPRecord
from training.verifier import verifier_pairs

NAIVE = "why do cats purr"


def _optimizer(outputs: list[str], verifier: TableVerifier, margin: float = 0.0) -> FIPOOptimizer:
    return FIPOOptimizer.from_llm(SequenceLLM(outputs=outputs), retries=len(outputs) - 1,
                                  verifier=verifier, verifier_margin=margin, cache_size=0)


def test_verifier_serves_the_best_candidate_that_beats_naive() -> None:
    good = "Explain why cats purr, covering the mechanism and when they do it."
    ok = "Explain why cats purr."
    v = TableVerifier({NAIVE: 0.1, ok: 0.3, good: 0.9})
    result = _optimizer([ok, good], v).optimize(NAIVE)
    assert result.optimized_prompt == good
    assert result.verifier_margin == pytest.approx(0.8)
    assert v.calls == [[NAIVE, ok, good]]  # the naive prompt is always a candidate


def test_verifier_keeps_the_naive_prompt_unless_a_candidate_clearly_wins() -> None:
    cand = "Explain why cats purr."
    v = TableVerifier({NAIVE: 0.5, cand: 0.6})
    result = _optimizer([cand], v, margin=0.2).optimize(NAIVE)
    assert result.optimized_prompt == NAIVE
    assert result.fallback_reason.startswith("verifier: no candidate beats the naive prompt")


def test_verifier_pairs_rank_judged_wins_over_leaving_the_prompt_alone() -> None:
    rec = POPRecord(id="x", naive_prompt=NAIVE, chosen="Explain why cats purr, step by step.",
                    rejected="Explain why cats purr in one word.",
                    metadata={"judged": {"chosen_vs_naive": "win"}})
    pairs = verifier_pairs([rec])
    assert {"chosen": pair_text(NAIVE, rec.chosen), "rejected": pair_text(NAIVE, NAIVE)} in pairs
    assert {"chosen": pair_text(NAIVE, rec.chosen),
            "rejected": pair_text(NAIVE, rec.rejected)} in pairs


def test_missing_reward_model_is_a_clear_error(tmp_path: Path) -> None:
    from fipo_middleware.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="fipo train verifier"):
        RewardModelVerifier(tmp_path)
