"""``fipo compile`` without a model: the gate (bootstrap lower bound above zero), bad task
files rejected before any model loads, and the LangChain template round trip. Compiling on
the real SmolLM2 model is in ``tests/integration/test_compile.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

from evaluation.compile import choose, template_instruction
from fipo_middleware.cli import main as fipo_main


@pytest.fixture(scope="module")
def navigate(shared_data: Path) -> Path:
    return shared_data / "bigbench" / "navigate.json"


# ------------------------------------------------------------------ gate
def test_gate_needs_lower_bound_above_zero() -> None:
    naive = [0.0] * 20
    small = [1.0] + [0.0] * 19            # +5 points, but the interval touches 0
    big = [1.0] * 10 + [0.0] * 10         # +50 points, clearly above
    win, gains, reason = choose(naive, [small, big], n_resamples=500)
    assert gains[0]["ci_low"] <= 0 < gains[1]["ci_low"]
    assert win == 1 and reason.startswith("candidate 2")
    win, _, reason = choose(naive, [small], n_resamples=500)
    assert win is None and reason.startswith("naive")


def test_gate_ties_keep_naive_and_best_qualified_wins() -> None:
    naive = [1.0, 0.0] * 10
    win, gains, _ = choose(naive, [list(naive), list(naive)], n_resamples=300)
    assert win is None and all(g["diff"] == 0 for g in gains)
    better = [1.0] * 20                   # +50
    best = [1.0] * 20                     # same accuracy: the earlier proposal wins
    win, _, _ = choose(naive, [better, best], n_resamples=300)
    assert win == 0
    win, _, _ = choose(naive, [], n_resamples=300)
    assert win is None


# ------------------------------------------------------------------ bad input
def _cli(capsys, *argv: str) -> tuple[int, str]:
    rc = fipo_main(["compile", *argv, "--quiet"])
    return rc, capsys.readouterr().err


def test_bad_task_files_are_clear_errors(tmp_path, capsys, navigate) -> None:
    empty = tmp_path / "empty.json"
    empty.write_text(json.dumps({"examples": []}))
    rc, err = _cli(capsys, str(empty), "--output", str(tmp_path / "o1"))
    assert rc == 2 and "'examples' is missing or not a non-empty list" in err
    no_target = tmp_path / "nt.json"
    no_target.write_text(json.dumps({"examples": [{"input": "2+2?"}]}))
    rc, err = _cli(capsys, str(no_target), "--output", str(tmp_path / "o2"))
    assert rc == 2 and "field 'target' is missing" in err
    rc, err = _cli(capsys, str(navigate), "--dev-limit", "5000", "--output",
                   str(tmp_path / "o3"))
    assert rc == 2 and "--dev-limit 5000 is larger than the task's 1000 examples" in err


# ------------------------------------------------------------------ LangChain templates
def test_prompt_template_round_trip() -> None:
    tmpl = PromptTemplate.from_template(
        "Classify the sentiment of the review.\n\nReview: {review}\nSentiment:")
    naive, rebuild = template_instruction(tmpl)
    assert naive == "Classify the sentiment of the review."
    new = rebuild("Label the review {positive/negative}.")  # braces stay literal text
    assert isinstance(new, PromptTemplate) and new.input_variables == ["review"]
    assert new.format(review="great") == (
        "Label the review {positive/negative}.\n\nReview: great\nSentiment:")
    assert rebuild(naive).format(review="x") == tmpl.format(review="x")


def test_chat_template_round_trip_keeps_other_messages() -> None:
    tmpl = ChatPromptTemplate.from_messages([
        ("system", "Classify the sentiment of the review as positive or negative."),
        ("human", "Review: {review}"),
        ("ai", "Sentiment:"),
    ])
    naive, rebuild = template_instruction(tmpl)
    assert naive == "Classify the sentiment of the review as positive or negative."
    new = rebuild("Read the review, then answer positive or negative.")
    assert isinstance(new, ChatPromptTemplate)
    assert new.input_variables == tmpl.input_variables
    assert new.messages[1:] == tmpl.messages[1:]
    msgs = new.format_messages(review="awful")
    assert msgs[0].content == "Read the review, then answer positive or negative."
    assert [m.content for m in msgs[1:]] == ["Review: awful", "Sentiment:"]


# ------------------------------------------------------------------ candidate forms
class _Proposer:
    """Pure control flow: fixed candidates, as FIPOOptimizer.candidates returns them."""

    def candidates(self, naive, silver, golden, max_words, *, n, options):
        from fipo_middleware.backends.base import DecodingParams
        from fipo_middleware.optimizer import Candidate

        greedy = DecodingParams()
        return [
            # rejected as a full rewrite (the 3 is gone) but its guidance is sound
            Candidate(naive, "Count the objects. Say how you counted them.", "raw",
                      ("dropped_numbers",), greedy),
            # accepted, and its append form adds a sentence too
            Candidate(naive, "Count all 3 kinds of objects listed. Give the total as a number.",
                      "raw", (), greedy),
        ][:n]


def test_propose_append_form_survives_a_rejected_rewrite(tmp_path) -> None:
    from evaluation.cache import JsonlCache
    from evaluation.compile import CompileError, propose
    from evaluation.optimizers import OptimizerSpec

    naive = "How many objects are there? There are 3 kinds."
    spec = OptimizerSpec("fake", "fake-key", lambda: _Proposer())
    both, _, gens = propose(spec, naive, [], 8, JsonlCache(tmp_path / "a.jsonl"))
    forms = [(c["form"], c["text"]) for c in both]
    assert any(f == "append" and t.endswith("Say how you counted them.") for f, t in forms)
    assert ("rewrite", "Count the objects. Say how you counted them.") not in forms
    assert ("rewrite", "Count all 3 kinds of objects listed. Give the total as a number.") in forms
    assert all(t.startswith(naive) for f, t in forms if f == "append")
    assert len({t for _, t in forms}) == len(forms) and gens >= 2
    only, _, _ = propose(spec, naive, [], 8, JsonlCache(tmp_path / "b.jsonl"),
                         forms=("rewrite",))
    assert {c["form"] for c in only} == {"rewrite"} and len(only) < len(both)
    with pytest.raises(CompileError, match="forms must be among"):
        propose(spec, naive, [], 8, JsonlCache(tmp_path / "c.jsonl"), forms=("fancy",))
