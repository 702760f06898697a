"""``fipo optimize`` end to end through the installed console script, on the real model. Bad
input files and model paths, rejected before any model loads, are in ``tests/unit/test_cli.py``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

FIPO = shutil.which("fipo") or str(Path(sys.executable).parent / "fipo")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIPO, *args], capture_output=True, text=True, input=stdin, timeout=600, check=False
    )


def test_optimize_text_prints_prompt():
    proc = run("optimize", "List 3 uses of copper.", "--max-tokens", "48", "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["naive_prompt"] == "List 3 uses of copper."
    assert result["optimized_prompt"].strip()
    plain = run("optimize", "-", "--max-tokens", "48", stdin="List 3 uses of copper.")
    assert plain.returncode == 0 and plain.stdout.strip() == result["optimized_prompt"]


def test_optimize_file_resumes(tmp_path):
    src = tmp_path / "in.jsonl"
    out = tmp_path / "out.jsonl"
    rows = [
        {"id": "a", "prompt": "Write a title for a cooking blog."},
        {"id": "b", "prompt": "Translate 'good night' into Spanish."},
    ]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    first = run("optimize", "--input", str(src), "--output", str(out), "--max-tokens", "32")
    assert first.returncode == 0, first.stderr
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "b"]
    with src.open("a") as f:
        f.write(json.dumps({"id": "c", "prompt": "Name two planets."}) + "\n")
    second = run("optimize", "--input", str(src), "--output", str(out), "--max-tokens", "32")
    assert second.returncode == 0, second.stderr
    assert "resuming, 2 of 3" in second.stderr
    assert [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "b", "c"]



def test_optimize_verifies_by_default_and_no_verify_shows_the_raw_rewrite():
    naive = "tell me about mount everest"
    verified = run("optimize", "--json", naive)
    assert verified.returncode == 0, verified.stderr
    out = json.loads(verified.stdout)
    assert out["attempts"] == 1  # one greedy candidate: the latency budget
    # The raw rewrite caps the answer at 100 words; the verifier scores it below the naive prompt.
    assert out["optimized_prompt"] == naive
    assert out["fallback_reason"].startswith("verifier: no candidate beats the naive prompt")
    assert out["verifier_margin"] < 0
    plain = run("optimize", naive)
    assert plain.stdout.strip() == naive and "--no-verify shows" in plain.stderr
    raw = json.loads(run("optimize", "--no-verify", "--json", naive).stdout)
    assert raw["verifier_margin"] is None and raw["fallback_reason"] is None
    assert raw["optimized_prompt"] != naive


def test_eval_judge_second_stage_answers_with_smollm2(tmp_path):
    # Stage 2 as BPO evaluates: the real downstream answers both texts; an external judge's
    # verdicts on the blind answer pairs make the answers report.
    prompts = tmp_path / "prompts.jsonl"
    rows = [{"id": "a", "prompt": "name a planet"}, {"id": "b", "prompt": "say hi"}]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    texts = tmp_path / "texts.jsonl"
    texts.write_text("".join(json.dumps({"id": r["id"], "prompt": r["prompt"].capitalize()
                                         + ", please."}) + "\n" for r in rows))
    out = tmp_path / "judge"
    args = ("eval-judge", str(prompts), "--first", f"opt=file:{texts}", "--second", "naive",
            "--output", str(out), "--answer-with", "smollm2", "--answer-max-tokens", "12",
            "--quiet")
    first = run(*args)
    assert first.returncode == 0, first.stderr
    assert "--import-answer-verdicts" in first.stderr
    pairs = [json.loads(x) for x in (out / "answers" / "pairs.jsonl").read_text().splitlines()]
    assert {p["request"] for p in pairs} == {"name a planet", "say hi"}
    assert all(p["A"].strip() and p["B"].strip() and p["A"] != p["B"] for p in pairs)
    verdicts = tmp_path / "j1.jsonl"
    verdicts.write_text("".join(json.dumps({"pair_id": p["pair_id"], "verdict": "tie",
                                            "task_changed": False}) + "\n" for p in pairs))
    second = run(*args, "--import-answer-verdicts", str(verdicts))
    assert second.returncode == 0, second.stderr
    report = json.loads((out / "answers" / "judge.json").read_text())
    assert report["judges"]["j1"]["overall"]["tie"]["count"] == 2
    assert report["answered_by"] == "smollm2"
    assert "answers by smollm2" in (out / "answers" / "judge.md").read_text()
