"""The verifier: best-of-N against the naive prompt (control flow with a scripted verifier), and
the real thing: a TRL reward model trained for a few steps, loaded and served."""

from __future__ import annotations

from pathlib import Path

import pytest

from fipo_middleware import FIPOOptimizer
from fipo_middleware.verifier import RewardModelVerifier, pair_text
from tests.fakes import SequenceLLM
from training.pop import POPRecord, load_pop
from training.verifier import verifier_pairs

ROOT = Path(__file__).resolve().parents[1]
NAIVE = "why do cats purr"


class TableVerifier:
    """Scores from a table (control flow only; the real model is tested below)."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def score(self, naive_prompt: str, candidates: list[str]) -> list[float]:
        self.calls.append(list(candidates))
        return [self.table.get(c, 0.0) for c in candidates]


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


def test_trained_reward_model_loads_and_scores(tmp_path: Path) -> None:
    from training.verifier import VerifierConfig, train_verifier

    records = load_pop(ROOT / "training" / "teacher" / "teacher_A.jsonl")[:12]
    cfg = VerifierConfig(output_dir=str(tmp_path / "v"), max_steps=2,
                         per_device_train_batch_size=2, max_length=128, save_steps=1)
    final = train_verifier(records, cfg)
    assert (final / "config.json").is_file()
    assert (tmp_path / "v" / "checkpoint-2").is_dir()  # a rerun resumes from here
    verifier = RewardModelVerifier(final, max_length=128)
    scores = verifier.score(NAIVE, [NAIVE, "Explain why cats purr.", "purr?"])
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert len(set(scores)) == 3  # a real model, not a constant


def test_missing_reward_model_is_a_clear_error(tmp_path: Path) -> None:
    from fipo_middleware.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match="fipo train verifier"):
        RewardModelVerifier(tmp_path)

