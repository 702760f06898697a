"""``TrainConfig``: help text on every field, flags typed from the resolved field types, and the
shipped YAML examples. What reaches TRL: ``tests/integration/test_training_trl_args.py``."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from fipo_middleware.errors import DataFormatError
from tests import REPO
from training.config import (
    CONFIGS,
    IPLConfig,
    PreferenceConfig,
    TrainConfig,
    add_config_arguments,
    config_from_args,
    field_types,
    load_yaml,
)


def _parser(method: str = "sft") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add_config_arguments(p, method)
    return p


@pytest.mark.parametrize("method", sorted(CONFIGS))
def test_every_field_has_help_and_every_flag_shows_it(method: str) -> None:
    text = " ".join(_parser(method).format_help().split())
    for f in fields(CONFIGS[method]):
        assert f.metadata.get("help"), f.name
        if f.name not in ("method", "extra"):
            assert "--" + f.name.replace("_", "-") in text
            assert " ".join(f.metadata["help"].split()) in text, f.name


def test_each_method_takes_only_its_own_settings(tmp_path) -> None:
    assert [CONFIGS[m] for m in ("sft", "dpo", "ipo", "ipl")] == [
        TrainConfig, PreferenceConfig, PreferenceConfig, IPLConfig]
    # beta is a preference setting, the ipl_* fields belong to the IPL loop
    with pytest.raises(SystemExit):
        _parser("sft").parse_args(["--beta", "0.2"])
    with pytest.raises(SystemExit):
        _parser("dpo").parse_args(["--ipl-rounds", "3"])
    assert config_from_args("dpo", _parser("dpo").parse_args(["--beta", "0.2"])).beta == 0.2
    y = tmp_path / "c.yaml"
    y.write_text("beta: 0.2\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"beta \(a dpo setting\)"):
        config_from_args("sft", _parser("sft").parse_args(["--config", str(y)]))
    with pytest.raises(ValueError, match="takes a PreferenceConfig"):
        TrainConfig(method="dpo")


def test_flags_are_typed_from_the_resolved_annotations() -> None:
    assert field_types(TrainConfig)["save_total_limit"] == int | None
    args = _parser("ipl").parse_args(["--bf16", "off", "--ipl-limit", "3", "--warmup-steps",
                                      "0.05", "--init-adapter", "runs/sft/final", "--use-lora",
                                      "yes"])
    cfg = config_from_args("ipl", args)
    assert cfg.bf16 is False and cfg.use_lora is True
    assert cfg.ipl_limit == 3 and isinstance(cfg.ipl_limit, int)
    assert cfg.warmup_steps == 0.05 and cfg.init_adapter == "runs/sft/final"
    with pytest.raises(SystemExit):
        _parser().parse_args(["--max-steps", "ten"])


@pytest.mark.parametrize(("name", "method"), [("sft_smollm2_cpu.yaml", "sft"),
                                              ("dpo_gpu.yaml", "ipo")])
def test_shipped_example_configs_load(name: str, method: str) -> None:
    path = REPO / "training" / "configs" / name
    cfg = config_from_args(method, _parser(method).parse_args(["--config", str(path)]))
    assert cfg.to_dict() == {**CONFIGS[method](method=method).to_dict(),
                             **load_yaml(path, CONFIGS[method]), "method": method}
