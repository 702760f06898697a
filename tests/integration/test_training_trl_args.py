"""``TrainConfig`` -> TRL's ``SFTConfig``/``DPOConfig`` (real TRL classes, no model): every
setting we share with TRL reaches it under its name, and ``--set`` is checked against TRL."""

from __future__ import annotations

import pytest

from fipo_middleware.errors import DataFormatError
from training.config import PreferenceConfig, TrainConfig
from training.trl_args import shared_fields, trl_config

# What `fipo train` has always passed to TRL: a TRL rename must fail here, not silently drop it.
SHARED = {"output_dir", "max_steps", "num_train_epochs", "learning_rate",
          "per_device_train_batch_size", "gradient_accumulation_steps", "max_length",
          "warmup_steps", "lr_scheduler_type", "weight_decay", "save_steps", "save_total_limit",
          "logging_steps", "seed", "gradient_checkpointing", "bf16", "report_to",
          "dataloader_num_workers"}


def test_shared_fields_are_the_settings_trl_takes() -> None:
    from trl import DPOConfig, SFTConfig

    assert set(shared_fields(SFTConfig)) == SHARED
    assert set(shared_fields(DPOConfig)) == SHARED | {"beta"}


def test_trl_configs_carry_our_values(tmp_path) -> None:
    cfg = PreferenceConfig(method="ipo", learning_rate=3e-4, max_steps=7, beta=0.25, bf16=False,
                           save_total_limit=None, warmup_steps=0.05, max_length=96,
                           extra={"optim": "adamw_torch", "save_strategy": "no"})
    dpo = trl_config(cfg, "dpo", tmp_path, loss_type="ipo")
    assert (dpo.learning_rate, dpo.max_steps, dpo.beta, dpo.max_length) == (3e-4, 7, 0.25, 96)
    assert dpo.loss_type == ["ipo"] and dpo.bf16 is False and dpo.save_total_limit is None
    assert dpo.output_dir == str(tmp_path) and dpo.warmup_steps == 0.05
    assert dpo.optim == "adamw_torch" and dpo.save_strategy == "no"  # extra wins
    sft = trl_config(TrainConfig(method="sft", seed=5), "sft", tmp_path)
    assert sft.seed == 5 and not hasattr(sft, "beta") and sft.save_strategy == "steps"


def test_unknown_extra_setting_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(DataFormatError, match="lerning_rate: not fields of SFTConfig"):
        trl_config(TrainConfig(extra={"lerning_rate": 1.0}), "sft", tmp_path)
