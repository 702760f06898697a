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

    with pytest.raises(ModelLoadError, match="fipo train-verifier"):
        RewardModelVerifier(tmp_path)



# ---------------------------------------------------------------- feature verifier (real fit)
def test_feature_verifier_fits_teacher_pairs_and_ranks_known_failures(tmp_path: Path) -> None:
    from fipo_middleware.verifier import FeatureVerifier, load_verifier
    from tests import REPO
    from training.pop import load_pop
    from training.verifier import VerifierConfig, train_verifier

    records = load_pop(REPO / "training" / "teacher" / "teacher_B.jsonl")[:300]
    path = train_verifier(records, VerifierConfig(output_dir=str(tmp_path)))
    fit = __import__("json").loads(path.read_text())
    assert fit["holdout_pairs"] > 0 and fit["holdout_accuracy"] > 0.7  # chance is 0.5
    v = load_verifier(path)
    assert isinstance(v, FeatureVerifier)
    naive = ("Summarize the notes below for the team.\n"
             "- the launch moved from May 3 to May 17 because of the QA backlog\n"
             "- Dana owns the release checklist and will send it on Friday")
    dropped = "Summarize the launch notes for the team in one sentence."
    kept = naive + "\nGroup the summary by decision, owner and date."
    s_naive, s_dropped, s_kept = v.score(naive, [naive, dropped, kept])
    assert s_dropped < s_naive  # pasted input dropped and a length cap added: worse
    assert s_kept > s_dropped


def test_bad_feature_verifier_file_is_a_clear_error(tmp_path: Path) -> None:
    from fipo_middleware.errors import ModelLoadError
    from fipo_middleware.verifier import FeatureVerifier, load_verifier

    bad = tmp_path / "v.json"
    bad.write_text('{"weights": {"no_such_feature": 1.0}}')
    with pytest.raises(ModelLoadError, match="no_such_feature"):
        FeatureVerifier(bad)
    bad.write_text("not json")
    with pytest.raises(ModelLoadError, match="train one with"):
        FeatureVerifier(bad)
    with pytest.raises(ModelLoadError, match="no verifier at"):
        load_verifier(tmp_path / "missing")
