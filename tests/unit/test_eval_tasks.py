"""Task loading: the real BIG-bench files, the JSONL format, and clear errors on bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.tasks import (
    GENERIC_GEN_INSTRUCTION,
    GENERIC_MC_INSTRUCTION,
    load_task,
    sample,
)
from fipo_middleware.errors import DataFormatError


def test_all_bigbench_tasks_load(shared_data: Path) -> None:
    files = sorted((shared_data / "bigbench").glob("*.json"))
    assert files, "no BIG-bench tasks found"
    for f in files:
        task = load_task(f)
        assert task.examples, f
        ex = task.examples[0]
        assert ex.prompt().startswith(ex.instruction)
        if task.kind == "multiple_choice":
            assert len(ex.options) >= 2 and ex.correct
            assert ex.prompt().endswith(ex.options_block())
        else:
            assert ex.targets


def test_bigbench_instruction_is_task_prefix_or_generic(shared_data: Path) -> None:
    bb = shared_data / "bigbench"
    sports = load_task(bb / "sports_understanding.json")
    raw = json.loads((bb / "sports_understanding.json").read_text())
    assert sports.examples[0].instruction == raw["task_prefix"].strip()
    assert sports.examples[0].input.startswith("Statement: ")
    assert sports.instruction_level == "task"
    date = load_task(bb / "date_understanding.json")
    assert date.examples[0].instruction == GENERIC_MC_INSTRUCTION
    assert date.metadata["instruction_derived"]
    desc = load_task(bb / "date_understanding.json", instruction_source="description")
    assert desc.examples[0].instruction == raw_description(bb / "date_understanding.json")
    counting = load_task(bb / "object_counting.json")
    assert counting.examples[0].instruction == GENERIC_GEN_INSTRUCTION
    assert counting.kind == "generation"


def raw_description(path: Path) -> str:
    return json.loads(path.read_text())["description"].strip().rstrip(".") + "."


def _write(tmp_path: Path, name: str, data: object) -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(data), encoding="utf-8")
    return p


def test_stringified_literals_are_accepted(tmp_path: Path) -> None:
    p = _write(tmp_path, "t.json", {
        "task_prefix": "Pick one.",
        "examples": [
            {"input": "Is it?", "target_scores": "{'Yes': 1, 'No': 0}"},
            {"input": "Is it not?", "target_scores": {"Yes": 0, "No": 1}},
        ],
    })
    task = load_task(p)
    for ex, right in zip(task.examples, ["Yes", "No"], strict=True):
        assert [ex.options[i] for i in ex.correct] == [right]
    g = _write(tmp_path, "g.json", {"examples": [
        {"input": "How many?", "target": "['three', '3']"},
        {"input": "Sort: b a", "target": "a b"},
    ]})
    task = load_task(g)
    assert task.examples[0].targets == ("three", "3")
    assert task.examples[1].targets == ("a b",)


def test_option_order_is_seeded_and_keeps_the_answer(shared_data: Path) -> None:
    path = shared_data / "bigbench" / "date_understanding.json"
    a, b, c = load_task(path, seed=0), load_task(path, seed=0), load_task(path, seed=1)
    assert a == b
    raw = json.loads(path.read_text())["examples"]
    firsts = set()
    for ex, r in zip(a.examples, raw, strict=True):
        scores = r["target_scores"]
        assert {ex.options[i] for i in ex.correct} == {k for k, v in scores.items() if v == 1}
        firsts.add(ex.correct[0])
    # The file lists the answer first; shown order must not.
    assert len(firsts) > 1
    assert [e.options for e in a.examples] != [e.options for e in c.examples]


def test_sample_is_seeded_subset(shared_data: Path) -> None:
    task = load_task(shared_data / "bigbench" / "navigate.json")
    s1, s2 = sample(task, 5, 0), sample(task, 5, 0)
    assert [e.id for e in s1.examples] == [e.id for e in s2.examples]
    assert len(s1.examples) == 5
    assert [e.id for e in sample(task, 5, 1).examples] != [e.id for e in s1.examples]
    assert sample(task, None, 0) is task


def test_jsonl_format(tmp_path: Path) -> None:
    p = tmp_path / "mine.jsonl"
    rows = [
        {"id": "q1", "instruction": "Choose the larger number.", "input": "7 or 12?",
         "options": ["7", "12"], "target": "12"},
        {"id": "q2", "instruction": "Choose the smaller number.", "input": "3 or 9?",
         "options": ["3", "9"], "target": 0},
    ]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    task = load_task(p)
    assert task.kind == "multiple_choice" and task.instruction_level == "example"
    assert [ex.options[ex.correct[0]] for ex in task.examples] == ["12", "3"]
    assert task.examples[0].prompt("Pick the bigger one.").startswith("Pick the bigger one.\n\n7")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"task_prefix": "x"}, "examples"),
        ({"examples": []}, "examples"),
        ({"examples": [{"input": "q", "target_scores": "{'Yes': 1, 'No': "}]}, "target_scores"),
        ({"examples": [{"input": "q", "target_scores": "['Yes', 'No']"}]}, "target_scores"),
        ({"examples": [{"input": "q", "target_scores": {"Yes": "high", "No": 0}}]},
         "target_scores"),
        ({"examples": [{"input": "q", "target_scores": {"Yes": 1, "No": 0}},
                       {"input": "r"}]}, "target_scores"),
        ({"examples": [{"target": "a"}]}, "input"),
        ({"examples": [{"input": "q", "target": []}]}, "target"),
        ({"task_prefix": 3, "examples": [{"input": "q", "target": "a"}]}, "task_prefix"),
    ],
)
def test_bad_bigbench_file_names_file_and_field(tmp_path: Path, data: object, field: str) -> None:
    p = _write(tmp_path, "bad_task.json", data)
    with pytest.raises(DataFormatError) as err:
        load_task(p)
    msg = str(err.value)
    assert str(p) in msg and repr(field) in msg


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"input": "x", "target": "y"}, "instruction"),
        ({"instruction": "Do.", "input": "x"}, "target"),
        ({"instruction": "Do.", "input": "x", "options": "a,b", "target": "a"}, "options"),
        ({"instruction": "Do.", "input": "x", "options": ["a", "b"], "target": "c"}, "target"),
        ({"instruction": "Do.", "input": 5, "target": "c"}, "input"),
    ],
)
def test_bad_jsonl_line_names_file_line_and_field(tmp_path: Path, line: dict, field: str) -> None:
    p = tmp_path / "bad.jsonl"
    good = {"instruction": "Do.", "input": "x", "target": "y"}
    p.write_text(json.dumps(good) + "\n" + json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError) as err:
        load_task(p)
    assert f"{p}:2" in str(err.value) and repr(field) in str(err.value)


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not found"):
        load_task(tmp_path / "nope.json")
    p = tmp_path / "broken.json"
    p.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"broken\.json"):
        load_task(p)
