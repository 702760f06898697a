"""``fipo eval-judge --answer-with``: the second stage, both prompts answered by one downstream
model and the answers judged blind against the user's request. Bookkeeping with a scripted
downstream (control flow only; tests/integration answers with SmolLM2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.judge import build_report, import_verdicts, prepare_answers
from fipo_middleware.errors import FIPOError
from fipo_middleware.jsonl import write_jsonl_atomic


class Scripted:
    """Answers ``answer to: <prompt>``; raises on a prompt containing ``FAIL``."""

    name = "scripted"
    supports_loglik = False

    def __init__(self) -> None:
        self.calls = 0

    @property
    def key(self) -> str:
        return "scripted:1"

    def generate(self, prompt: str, max_tokens: int) -> str:
        self.calls += 1
        if "FAIL" in prompt:
            raise RuntimeError("server went away")
        return f"answer to: {prompt}"


def _setup(tmp: Path, first: dict[str, str], naive: dict[str, str]) -> Path:
    prompts = tmp / "prompts.jsonl"
    write_jsonl_atomic(prompts, [{"id": k, "prompt": v, "category": "c"}
                                 for k, v in naive.items()])
    out = tmp / "run"
    out.mkdir()
    write_jsonl_atomic(out / "texts-opt.jsonl", [{"id": k, "text": v} for k, v in first.items()])
    write_jsonl_atomic(out / "texts-naive.jsonl", [{"id": k, "text": v}
                                                   for k, v in naive.items()])
    return prompts


def test_answers_are_paired_with_the_request_and_identical_texts_answered_once(tmp_path):
    naive = {str(i): f"question {i}" for i in range(6)}
    first = {k: f"clearer {v}" for k, v in naive.items()}
    first["0"] = naive["0"]  # the optimizer kept the prompt: one answer, a tie without a judge
    prompts = _setup(tmp_path, first, naive)
    ds = Scripted()
    blind, key = prepare_answers(prompts, ("opt", "naive"), tmp_path / "run", ds,
                                 progress=False)
    assert ds.calls == 11
    assert len(blind) == 5 and all(set(b) == {"pair_id", "request", "A", "B"} for b in blind)
    by_pair = {k["pair_id"]: k for k in key}
    for b in blind:
        k = by_pair[b["pair_id"]]
        assert b["request"] == naive[k["id"]]  # the user's own words, not the rewrite
        first_answer = b[k["first_is"]]
        assert first_answer == f"answer to: {first[k['id']]}"
    ans = tmp_path / "run" / "answers"
    assert "two answers" in (ans / "JUDGE.md").read_text()
    assert "first_is" not in (ans / "pairs.jsonl").read_text()  # the key stays apart

    # Resumable: a rerun answers nothing again.
    again = Scripted()
    prepare_answers(prompts, ("opt", "naive"), tmp_path / "run", again, progress=False)
    assert again.calls == 0

    # An external judge preferring the rewrite's answers: wins for the first source.
    verdicts = ans / "judge1.jsonl"
    verdicts.write_text("".join(json.dumps(
        {"pair_id": b["pair_id"], "task_changed": False,
         "verdict": "A" if "clearer" in b["A"] else "B"}) + "\n" for b in blind))
    report = build_report(("opt", "naive"), key, {"judge1": import_verdicts(verdicts, key)})
    assert report["judges"]["judge1"]["overall"]["win"]["count"] == 5
    assert report["judges"]["judge1"]["overall"]["identical"] == 1


def test_a_failing_downstream_names_the_prompt_and_keeps_earlier_answers(tmp_path):
    naive = {"a": "question a", "b": "question b FAIL"}
    prompts = _setup(tmp_path, {k: f"clearer {v}" for k, v in naive.items()}, naive)
    with pytest.raises(FIPOError, match=r"failed answering prompt 'b'.*rerun to resume"):
        prepare_answers(prompts, ("opt", "naive"), tmp_path / "run", Scripted(),
                        progress=False)
    kept = (tmp_path / "run" / "answers" / "answers.jsonl").read_text().splitlines()
    assert len(kept) == 1 and json.loads(kept[0])["id"] == "a"


def test_stage_two_needs_stage_one_texts(tmp_path):
    prompts = tmp_path / "p.jsonl"
    write_jsonl_atomic(prompts, [{"id": "a", "prompt": "q"}])
    with pytest.raises(FIPOError, match="stage 1 writes them first"):
        prepare_answers(prompts, ("opt", "naive"), tmp_path / "run", Scripted(),
                        progress=False)


@pytest.mark.parametrize(("flags", "message"), [
    (("--import-answer-verdicts", "v.jsonl"), "needs --answer-with"),
    (("--answer-with", "smollm2", "--answer-max-tokens", "0"), "at least 1"),
])
def test_bad_stage_two_flags_are_clear_errors_before_any_work(tmp_path, flags, message):
    import subprocess
    import sys

    prompts = tmp_path / "p.jsonl"
    write_jsonl_atomic(prompts, [{"id": "a", "prompt": "q"}])
    proc = subprocess.run(
        [sys.executable, "-m", "fipo_middleware.cli", "eval-judge", str(prompts), "--first",
         "naive", "--second", "x=file:" + str(prompts), "--output", str(tmp_path / "o"),
         *flags], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()
