"""Intrinsic optimizer metrics on BPO prompt pairs without a model: faithfulness, bad pair files
and the CLI with the identity baseline (the real base optimizer: ``tests/integration``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.intrinsic import faithfulness, load_pairs
from fipo_middleware.cli import main as fipo_main
from fipo_middleware.errors import DataFormatError


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


def test_cli_eval_prompts(bpo: Path, capsys) -> None:
    rc = fipo_main(["eval-prompts", str(bpo), "--limit", "5", "--optimizer", "naive", "--json",
                    "--quiet"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n"] == 5 and out["optimizers"][0]["name"] == "naive"
    assert out["optimizers"][0]["faithful"] == 1.0
