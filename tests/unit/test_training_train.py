"""``fipo train`` configs rejected before any model (or torch) loads. Real TRL steps on SmolLM2
are in ``tests/integration/test_training_train.py``."""

from __future__ import annotations

from pathlib import Path

import pytest

from fipo_middleware.errors import ModelLoadError
from tests.fakes import write_jsonl
from training.config import TrainConfig, config_class
from training.train import train

PREF_ROWS = [
    {"prompt": "Rewrite the prompt: what is 12 times 7\n",
     "chosen": "Compute 12 times 7 and reply with the number only.",
     "rejected": "What is multiplication?"},
]


def _cfg(tmp: Path, method: str, data: str, base: str, **kw) -> TrainConfig:
    return config_class(method)(method=method, data=data, output_dir=str(tmp / method),
                                base=base, max_steps=2, per_device_train_batch_size=2,
                                max_length=64, resume="never", **kw)


def test_init_adapter_must_be_an_adapter_dir(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "dpo.jsonl", PREF_ROWS)
    with pytest.raises(ModelLoadError, match="not a LoRA adapter directory"):
        train(_cfg(tmp_path, "dpo", data, "smollm2", init_adapter=str(tmp_path)))
