"""``fipo compile`` / ``compile_prompt``: the real SmolLM2 GGUF through llama.cpp as downstream
and the default optimizer on a few examples of a shared BIG-bench task, plus fast tests of the
gate, resuming, bad input and the LangChain template round trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate

from evaluation import LlamaCppDownstream
from evaluation.compile import (
    CompileError,
    choose,
    compile_prompt,
    compile_task,
    template_instruction,
)
from fipo_middleware import FIPOOptimizer
from fipo_middleware.cli import main as fipo_main
from tests.fakes import RewriteTableLLM

DEV = 6
K = 2


@pytest.fixture(scope="module")
def smol(smollm2_path: Path) -> LlamaCppDownstream:
    return LlamaCppDownstream(smollm2_path, name="smollm2", n_threads=2)


@pytest.fixture(scope="module")
def navigate(shared_data: Path) -> Path:
    return shared_data / "bigbench" / "navigate.json"


@pytest.fixture(scope="module")
def real_run(tmp_path_factory, navigate, smol, default_optimizer):
    out = tmp_path_factory.mktemp("compile")
    calls0 = smol.calls
    rep = compile_task(navigate, dev_limit=DEV, candidates=K, downstream=smol,
                       optimizer=default_optimizer, output=out, n_resamples=200,
                       progress=False)
    return rep, out, smol.calls - calls0


# ------------------------------------------------------------------ gate (fast)
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


# ------------------------------------------------------------------ real components
def test_real_compile_writes_reports(real_run) -> None:
    rep, out, calls = real_run
    data = json.loads((out / "compiled.json").read_text(encoding="utf-8"))
    assert data["naive"] == "If you follow these instructions, do you return to the starting point?"
    assert data["compiled"] == rep.compiled and data["chosen_reason"] == rep.chosen_reason
    assert data["metric"] == "loglik" and data["n_dev"] == DEV
    cands = data["candidates"]
    assert cands[0]["case"] == "naive" and cands[0]["gain"] is None
    assert 1 <= len(cands) - 1 <= K
    texts = [c["text"] for c in cands]
    assert len({" ".join(t.split()).casefold() for t in texts}) == len(texts)  # de-duplicated
    for c in cands[1:]:
        assert c["case"] in ("naive_only", "silver", "golden", "both")
        g = c["gain"]
        assert g["ci_low"] <= g["diff"] <= g["ci_high"]
        assert g["diff"] == pytest.approx(c["dev_accuracy"] - cands[0]["dev_accuracy"])
    assert sum(c["chosen"] for c in cands) == 1
    chosen = next(c for c in cands if c["chosen"])
    assert chosen["text"] == rep.compiled
    if chosen["index"]:
        assert chosen["gain"]["ci_low"] > 0
    rows = [json.loads(x) for x in (out / "scores.jsonl").read_text().splitlines()]
    assert len(rows) == DEV * len(cands)
    # Every dev accuracy is the mean of its scored rows.
    for c in cands:
        vals = [r["score"] for r in rows if r["candidate"] == c["index"]]
        assert c["dev_accuracy"] == pytest.approx(sum(vals) / len(vals))
    assert calls == DEV * len(cands)  # one loglik pass per (candidate, example)
    assert "| 0 | naive |" in (out / "report.md").read_text(encoding="utf-8")
    assert (out / "chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rerun_reuses_every_scored_row(real_run, navigate, smol, default_optimizer) -> None:
    rep, out, _ = real_run
    calls0 = smol.calls
    again = compile_task(navigate, dev_limit=DEV, candidates=K, downstream=smol,
                         optimizer=default_optimizer, output=out, n_resamples=200,
                         progress=False)
    assert smol.calls == calls0
    assert again.compiled == rep.compiled
    assert again.summary["cost"]["cached_answers_used"] == DEV * len(rep.candidates)


class FailingAfter:
    """The real downstream, failing from its ``n``-th call on (a model server going down)."""

    def __init__(self, inner: LlamaCppDownstream, n: int) -> None:
        self.inner, self.n, self.name, self.calls = inner, n, inner.name, 0
        self.supports_loglik = True

    @property
    def key(self) -> str:
        return self.inner.key

    def generate(self, prompt: str, max_tokens: int) -> str:
        raise AssertionError("not used for a loglik task")

    def loglik(self, prompt, continuations):
        if self.calls >= self.n:
            raise ConnectionError("downstream went away")
        self.calls += 1
        return self.inner.loglik(prompt, continuations)


def test_downstream_failing_mid_run_is_recorded_and_resumable(tmp_path, navigate, smol) -> None:
    opt = FIPOOptimizer.from_llm(RewriteTableLLM(table={}))  # naive only: no rewrite passes
    flaky = FailingAfter(smol, 3)
    with pytest.raises(CompileError, match=r"failed on example .*rerun to resume"):
        compile_task(navigate, dev_limit=DEV, candidates=1, downstream=flaky, optimizer=opt,
                     output=tmp_path, n_resamples=100, progress=False)
    failed = json.loads((tmp_path / "failed.json").read_text())
    assert "downstream went away" in failed["error"] and failed["answers_cached"] == 3
    calls0 = smol.calls
    done = compile_task(navigate, dev_limit=DEV, candidates=1, downstream=smol, optimizer=opt,
                        output=tmp_path, n_resamples=100, progress=False)
    assert smol.calls - calls0 == DEV - 3  # only the rows the failure left unanswered
    assert not (tmp_path / "failed.json").exists()
    assert done.compiled == done.naive and "no candidate passed the guard" in done.chosen_reason


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


def test_metric_that_raises_names_the_example(tmp_path, smol) -> None:
    def bad_metric(output: str, example: dict) -> float:
        raise KeyError("label")

    with pytest.raises(CompileError, match=r"metric 'bad_metric' raised KeyError on example '0'"):
        compile_prompt("Answer the question.", [{"input": "2+2?", "target": "4"}], smol,
                       metric=bad_metric, optimizer=FIPOOptimizer.from_llm(
                           RewriteTableLLM(table={})), candidates=1, max_new_tokens=4)
    with pytest.raises(CompileError, match="no target"):
        compile_prompt("Answer.", [{"input": "x"}], smol)
    with pytest.raises(CompileError, match="dev_limit 3 is larger than the 1 examples"):
        compile_prompt("Answer.", [{"input": "x", "target": "y"}], smol, dev_limit=3)


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


def test_compile_prompt_chat_template_with_real_chat_model(downstream_chat) -> None:
    """A real LangChain chat model as downstream, a custom metric, and a scripted optimizer
    whose single rewrite either wins (returned as a ChatPromptTemplate) or loses to naive."""
    tmpl = ChatPromptTemplate.from_messages([
        ("system", "Reply."),
        ("human", "What is the capital of {country}?"),
    ])
    examples = [{"country": c, "target": t} for c, t in
                [("France", "Paris"), ("Italy", "Rome"), ("Japan", "Tokyo"),
                 ("Spain", "Madrid")]]
    seen: list[str] = []

    def contains(output: str, example: dict) -> float:
        seen.append(output)
        return float(example["target"].lower() in output.lower())

    opt = FIPOOptimizer.from_llm(RewriteTableLLM(table={
        "Reply.": "Reply with the name of the city only."}))
    out, rep = compile_prompt(tmpl, examples, downstream_chat, metric=contains, optimizer=opt,
                              candidates=1, n_resamples=300)
    assert isinstance(out, ChatPromptTemplate)
    assert out.input_variables == ["country"] and out.messages[1:] == tmpl.messages[1:]
    assert len(seen) == 2 * len(examples)  # naive + one candidate, every example
    assert rep.summary["metric"] == "contains"
    assert [c["case"] for c in rep.candidates] == ["naive", "naive_only"]
    if rep.improved:
        assert out.format_messages(country="x")[0].content == rep.compiled
        assert rep.candidates[1]["gain"]["ci_low"] > 0
    else:
        assert out is tmpl
