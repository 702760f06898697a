"""benchmarks/bench_recorded_optimizer.py: the messages ``from_llm`` sends are recorded, and
replies replayed through the real optimizer (guard, append extraction) come back as texts for
``fipo eval-judge file:``. Control flow with a recorded chat model; the guard is the real one."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests import REPO

_spec = importlib.util.spec_from_file_location(
    "bench_recorded_optimizer", REPO / "benchmarks" / "bench_recorded_optimizer.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

PROMPTS = [
    {"id": "a", "prompt": "whats a good way to learn chess as an adult"},
    {"id": "b", "prompt": "Add 17 and 25."},
    {"id": "c", "prompt": "fix this\n\n```python\ndef f(x):\n  return x+1\n```"},
]


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def test_export_then_serve_round_trip(tmp_path):
    prompts = tmp_path / "prompts.jsonl"
    _jsonl(prompts, PROMPTS)
    requests = tmp_path / "requests.jsonl"
    bench.main(["export", str(prompts), "--requests", str(requests)])
    sent = [json.loads(line) for line in requests.read_text().splitlines()]
    assert len(sent) == 3
    # Protected code is not sent: the optimizer rewrites the instruction only.
    code = next(r for r in sent if "fix this" in r["messages"][-1]["content"])
    assert "return x+1" not in code["messages"][-1]["content"]

    by_prompt = {r["messages"][-1]["content"].split("Naive prompt:\n", 1)[1]: r["key"]
                 for r in sent}
    replies = {
        "whats a good way to learn chess as an adult":
            "What is a good way to learn chess as an adult beginner? Suggest a step-by-step "
            "plan with free resources.",
        "Add 17 and 25.": "The sum of 17 and 25 is 42.",  # an answer: the guard refuses it
    }
    rows = [{"key": by_prompt[p], "reply": r} for p, r in replies.items()]
    _jsonl(tmp_path / "replies.jsonl", rows)  # prompt c has no reply: naive, and counted
    out = tmp_path / "out"
    bench.main(["serve", str(prompts), "--replies", str(tmp_path / "replies.jsonl"),
                "--output", str(out)])
    texts = {json.loads(line)["id"]: json.loads(line)
             for line in (out / "texts-rewrite.jsonl").read_text().splitlines()}
    assert texts["a"]["text"].startswith("What is a good way to learn chess")
    assert texts["a"]["fallback_reason"] is None
    assert texts["b"]["text"] == "Add 17 and 25."
    assert "answers_task" in texts["b"]["fallback_reason"]
    assert texts["c"]["text"] == PROMPTS[2]["prompt"] and texts["c"]["fallback_reason"]
    assert (out / "texts-append.jsonl").is_file()
