"""``TrainConfig``: help text on every field, flags typed from the resolved field types, and the
shipped YAML examples. What reaches TRL: ``tests/integration/test_training_trl_args.py``."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from tests import REPO
from training.config import (
    TrainConfig,
    add_config_arguments,
    config_from_args,
    field_types,
    load_yaml,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_config_arguments(p)
    return p


def test_every_field_has_help_and_every_flag_shows_it() -> None:
    text = " ".join(_parser().format_help().split())
    for f in fields(TrainConfig):
        assert f.metadata.get("help"), f.name
        if f.name not in ("method", "extra"):
            assert "--" + f.name.replace("_", "-") in text
            assert " ".join(f.metadata["help"].split()) in text, f.name


def test_flags_are_typed_from_the_resolved_annotations() -> None:
    assert field_types()["save_total_limit"] == int | None
    args = _parser().parse_args(["--bf16", "off", "--ipl-limit", "3", "--warmup-steps", "0.05",
                                 "--init-adapter", "runs/sft/final", "--use-lora", "yes"])
    cfg = config_from_args("dpo", args)
    assert cfg.bf16 is False and cfg.use_lora is True
    assert cfg.ipl_limit == 3 and isinstance(cfg.ipl_limit, int)
    assert cfg.warmup_steps == 0.05 and cfg.init_adapter == "runs/sft/final"
    with pytest.raises(SystemExit):
        _parser().parse_args(["--max-steps", "ten"])


@pytest.mark.parametrize("name", ["sft_smollm2_cpu.yaml", "dpo_gpu.yaml"])
def test_shipped_example_configs_load(name: str) -> None:
    path = REPO / "training" / "configs" / name
    cfg = config_from_args("sft", _parser().parse_args(["--config", str(path)]))
    assert cfg.to_dict() == {**TrainConfig().to_dict(), **load_yaml(path), "method": "sft"}
