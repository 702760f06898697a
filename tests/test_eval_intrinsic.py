"""Intrinsic optimizer metrics on BPO prompt pairs, against the identity baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.intrinsic import faithfulness, load_pairs, run_prompt_eval
from evaluation.optimizers import as_optimizer, parse_optimizer
from fipo_middleware.cli import main as fipo_main
from fipo_middleware.errors import DataFormatError
from fipo_middleware.guard import check_rewrite


def test_faithfulness_counts_kept_numbers_quotes_and_options() -> None:
    naive = 'Summarize "the report" in 3 bullet points.\nA) short\nB) long'
    assert faithfulness(naive, naive) == {
        "numbers_kept": 1.0, "quotes_kept": 1.0, "options_kept": 1.0, "faithful": 1.0}
    lossy = "Summarize it briefly.\nA) short"
    f = faithfulness(naive, lossy)
    assert f["numbers_kept"] == 0.0 and f["quotes_kept"] == 0.0
    assert f["options_kept"] == 0.5 and f["faithful"] == 0.0
    plain = faithfulness("Write a poem.", "Write a short poem about the sea.")
    assert plain == {"numbers_kept": None, "quotes_kept": None, "options_kept": None,
                     "faithful": 1.0}


def test_load_pairs_errors(tmp_path: Path) -> None:
    p = tmp_path / "pairs.json"
    p.write_text(json.dumps([{"prompt": "Do X."}]), encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_pairs(p)
    assert str(p) in str(err.value) and "'optimized_prompt'" in str(err.value)


@pytest.fixture(scope="module")
def bpo(shared_data: Path) -> Path:
    return shared_data / "bpo" / "bpo_pairs_dev.json"


def test_prompt_eval_vs_identity(bpo: Path, base_optimizer, tmp_path: Path) -> None:
    specs = [parse_optimizer("naive"), as_optimizer("base", base_optimizer)]
    summary = run_prompt_eval(bpo, specs, output=tmp_path, limit=3, progress=False)
    by = {e["name"]: e for e in summary["optimizers"]}
    assert set(by) == {"naive", "base"} and summary["n"] == 3
    ident = by["naive"]
    assert ident["faithful"] == 1.0  # the naive prompt keeps everything of itself
    pairs = load_pairs(bpo, 3)
    expected_usable = sum(check_rewrite(p["prompt"], p["prompt"]).usable for p in pairs) / 3
    assert ident["usable"] == pytest.approx(expected_usable, abs=1e-4)
    for e in summary["optimizers"]:
        assert 0.0 <= e["usable"] <= 1.0 and 0.0 <= e["rouge_l"] <= 1.0
    for row in summary["rows"]:
        if row["optimizer"] == "base" and row["rewrite"].strip():
            verdict = check_rewrite(row["naive_prompt"], row["rewrite"],
                                    _budget(row["naive_prompt"]))
            assert row["usable"] == (1.0 if verdict.usable else 0.0)
    assert (tmp_path / "prompt_summary.json").is_file()
    assert "| naive |" in (tmp_path / "prompt_report.md").read_text(encoding="utf-8")
    # Rerun: rewrites come from the cache, the optimizer is not asked again.
    from evaluation.optimizers import OptimizerSpec

    cached = OptimizerSpec("base", specs[1].key, lambda: pytest.fail("optimizer re-ran"))
    again = run_prompt_eval(bpo, [cached], output=tmp_path, limit=3, progress=False)
    assert [e["usable"] for e in again["optimizers"]] == [ident["usable"], by["base"]["usable"]]


def _budget(naive: str) -> int:
    from fipo_middleware.template import MetaPromptInput

    return MetaPromptInput(naive).budget


def test_cli_eval_prompts(bpo: Path, capsys) -> None:
    rc = fipo_main(["eval-prompts", str(bpo), "--limit", "5", "--optimizer", "naive", "--json",
                    "--quiet"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 5 and out["optimizers"][0]["name"] == "naive"
    assert out["optimizers"][0]["faithful"] == 1.0
