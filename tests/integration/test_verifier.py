"""The verifier for real: a TRL reward model trained for a few steps on the teacher POP,
loaded and served (``RewardModelVerifier``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fipo_middleware.verifier import RewardModelVerifier
from tests import REPO
from training.pop import load_pop

pytestmark = pytest.mark.slow  # trains a TRL reward model

NAIVE = "why do cats purr"


def test_trained_reward_model_loads_and_scores(tmp_path: Path) -> None:
    from training.verifier import VerifierConfig, train_verifier

    records = load_pop(REPO / "training" / "teacher" / "teacher_A.jsonl")[:12]
    cfg = VerifierConfig(output_dir=str(tmp_path / "v"), kind="reward-model", max_steps=2,
                         per_device_train_batch_size=2, max_length=128, save_steps=1)
    final = train_verifier(records, cfg)
    # an adapter (LoRA + score head), not a merged copy of the base
    assert (final / "adapter_config.json").is_file() and not (final / "config.json").exists()
    assert sum(f.stat().st_size for f in final.glob("*.safetensors")) < 40e6
    assert (tmp_path / "v" / "checkpoint-2").is_dir()  # a rerun resumes from here
    verifier = RewardModelVerifier(final, max_length=128)
    scores = verifier.score(NAIVE, [NAIVE, "Explain why cats purr.", "purr?"])
    assert len(scores) == 3 and all(isinstance(s, float) for s in scores)
    assert len(set(scores)) == 3  # a real model, not a constant
