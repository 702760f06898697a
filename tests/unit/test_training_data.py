"""POP IO, importers, diversification and config: real files in tests/fixtures, no models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fipo_middleware.errors import DataFormatError
from fipo_middleware.template import TULU_USER, CaseType
from tests import FIXTURES
from training.config import TrainConfig, add_config_arguments, config_from_args
from training.diversify import diversify, format_counts, write_datasets
from training.importers import import_bpo, import_fipo_pop
from training.pop import load_pop, load_seed_prompts, save_pop
from training.train import load_rows


@pytest.fixture(scope="module")
def pop_small():
    return load_pop(FIXTURES / "pop_small.jsonl")


def test_corrupted_jsonl_line_is_reported_as_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match=r"pop_corrupt\.jsonl:2: invalid JSON"):
        load_pop(FIXTURES / "pop_corrupt.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "naive_prompt": "x", "chosen": "y"}\n{"id": "b", '
                   '"naive_prompt": "x"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"bad\.jsonl:2: field 'chosen'"):
        load_pop(bad)
    ds = tmp_path / "sft.jsonl"
    ds.write_text('{"prompt": "p", "completion": "c"}\n{"prompt": "p"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"sft\.jsonl:2: field 'completion'"):
        load_rows(ds, ("prompt", "completion"))
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"prompt": "ok"}\n\n{"prompt": "  "}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"seeds\.jsonl:3: field 'prompt'"):
        load_seed_prompts(seeds)


def test_seed_prompts_default_ids_and_reference() -> None:
    seeds = load_seed_prompts(FIXTURES / "seed_small.jsonl")
    assert [s.id for s in seeds] == ["s1", "s2"]
    assert seeds[0].reference is None and seeds[1].reference == "19"


def test_import_fipo_pop_raw_format() -> None:
    recs = import_fipo_pop(FIXTURES / "fipo_pop_raw.jsonl")
    assert [r.id for r in recs] == ["fipo-1", "fipo-2", "fipo-3"]
    r = recs[2]
    assert r.naive_prompt == "convert 3 km to meters"
    assert r.chosen.startswith("Convert 3 km to meters")  # gpt4_optimized_prompt
    assert r.rejected == "Convert km to meters."  # chatgpt_optimized_prompt
    assert r.golden_response == "3000 meters" and r.silver_response == "300 meters"
    assert r.source == "fipo-pop"


def test_import_bpo_rejected_is_the_naive_prompt_unless_unchanged() -> None:
    recs = import_bpo(FIXTURES / "bpo_small.json")
    assert recs[0].rejected == "tips for sleeping better"
    assert recs[0].golden_response.startswith("1. Keep")
    assert recs[0].silver_response == "Sleep more."
    assert recs[1].rejected is None and recs[1].metadata["unchanged"] is True
    assert all(r.rejected is None
               for r in import_bpo(FIXTURES / "bpo_small.json", bpo_rejected="null"))


def test_import_bpo_shared_dev_file(shared_data: Path) -> None:
    recs = import_bpo(shared_data / "bpo" / "bpo_pairs_dev.json")
    assert len(recs) == 100
    assert sum(r.rejected is not None for r in recs) == 95


def test_diversify_exact_case_counts_for_fixed_seed(pop_small) -> None:
    data = diversify(pop_small, seed=2024)
    assert data.counts() == {
        "sft": {"NAIVE_ONLY": 1, "SILVER_GEN": 2, "BOTH_MC": 1, "BOTH_GEN": 2},
        "dpo": {"SILVER_GEN": 2, "BOTH_MC": 1, "BOTH_GEN": 2},
        "ipl": {"SILVER_GEN": 2, "BOTH_MC": 1, "BOTH_GEN": 2, "ANSWER_GEN": 1,
                "DISCRIMINATE": 3},
        "skipped": {"dpo_no_rejected": 1, "answer_no_responses": 2},
    }
    raw = diversify(import_fipo_pop(FIXTURES / "fipo_pop_raw.jsonl"), seed=3)
    assert raw.counts() == {
        "sft": {"BOTH_MC": 2, "BOTH_GEN": 1},
        "dpo": {"BOTH_MC": 2, "BOTH_GEN": 1},
        "ipl": {"BOTH_MC": 2, "BOTH_GEN": 1, "ANSWER_MC": 1, "DISCRIMINATE": 2},
    }
    assert "total" in format_counts(data.counts())


def test_diversify_is_reproducible_and_dialects_share_the_scheme(pop_small) -> None:
    a = diversify(pop_small, seed=11)
    b = diversify(pop_small, seed=11)
    assert a.sft == b.sft and a.dpo == b.dpo and a.ipl == b.ipl
    orig = diversify(pop_small, seed=11, dialect="fipo-original")
    assert orig.counts() == a.counts()
    assert isinstance(orig.sft[0]["prompt"], str) and orig.sft[0]["prompt"].startswith(TULU_USER)
    assert isinstance(orig.sft[0]["completion"], str)
    msgs = a.sft[0]["prompt"]
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert a.sft[0]["completion"][0]["role"] == "assistant"


def test_multiple_choice_items_follow_the_paper(pop_small) -> None:
    """MC: options appended to the naive prompt, golden/silver become letters; label noise
    sets the silver letter to the golden one about 20% of the time."""
    recs = [r.model_copy(update={"id": f"{r.id}-{i}"}) for i in range(60) for r in pop_small]
    data = diversify(recs, seed=5)
    mc = [r for r in data.ipl if r["item"] == "optimize" and r["post_options"]]
    assert 0.35 < len(mc) / sum(r["item"] == "optimize" for r in data.ipl) < 0.65
    for row in mc:
        assert row["naive_prompt"].endswith("\nAnswer:") and "\nA: " in row["naive_prompt"]
        assert row["golden_response"] in ("A", "B") and row["silver_response"] in ("A", "B")
    noisy = sum(r["silver_response"] == r["golden_response"] for r in mc)
    assert 0.05 < noisy / len(mc) < 0.4
    judge = [r for r in data.ipl if r["case_type"] == CaseType.DISCRIMINATE]
    assert judge and all(r["chosen"][0]["content"] in ("A", "B") for r in judge)


def test_write_datasets_and_cli(tmp_path: Path, pop_small) -> None:
    from fipo_middleware.cli import main

    paths = write_datasets(diversify(pop_small, seed=1), tmp_path / "d")
    assert json.loads(paths["counts"].read_text())["sft"]
    assert len(load_rows(paths["dpo"], ("prompt", "chosen", "rejected"))) == 5
    pop = tmp_path / "bpo.jsonl"
    assert main(["pop", "import", "bpo", str(FIXTURES / "bpo_small.json"),
                 "--output", str(pop)]) == 0
    assert main(["pop", "diversify", "--input", str(pop), str(FIXTURES / "pop_small.jsonl"),
                 "--output-dir", str(tmp_path / "out"), "--dialect", "fipo-original"]) == 0
    assert (tmp_path / "out" / "ipl.jsonl").is_file()
    assert main(["pop", "diversify", "--input", str(FIXTURES / "pop_corrupt.jsonl"),
                 "--output-dir", str(tmp_path / "x")]) == 2


def test_config_yaml_then_flags(tmp_path: Path) -> None:
    import argparse

    y = tmp_path / "c.yaml"
    y.write_text("lora_r: 8\nmax_length: 256\nlearning_rate: 1.0e-4\n", encoding="utf-8")
    p = argparse.ArgumentParser()
    add_config_arguments(p, "dpo")
    args = p.parse_args(["--config", str(y), "--max-length", "64", "--use-lora", "false",
                         "--set", "optim=adamw_torch"])
    cfg = config_from_args("dpo", args)
    assert (cfg.lora_r, cfg.max_length, cfg.use_lora, cfg.learning_rate) == (8, 64, False, 1e-4)
    assert cfg.extra == {"optim": "adamw_torch"} and cfg.method == "dpo"
    y.write_text("nope: 1\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match="unknown field"):
        config_from_args("sft", p.parse_args(["--config", str(y)]))
    with pytest.raises(ValueError):
        TrainConfig(method="ppo")


def test_save_pop_roundtrip(tmp_path: Path, pop_small) -> None:
    save_pop(tmp_path / "p.jsonl", pop_small)
    assert load_pop(tmp_path / "p.jsonl") == pop_small
