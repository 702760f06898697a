"""``fipo compile`` / ``compile_prompt``: the real SmolLM2 GGUF through llama.cpp as downstream
and the default optimizer on a few examples of a shared BIG-bench task, resuming after a failing
downstream, and a real chat model behind a LangChain template. The gate, bad task files and the
template round trip are in ``tests/unit/test_compile.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.prompts import ChatPromptTemplate

from evaluation import LlamaCppDownstream
from evaluation.compile import CompileError, compile_prompt, compile_task
from fipo_middleware import FIPOOptimizer
from tests.fakes import FailingAfter, RewriteTableLLM

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


# ------------------------------------------------------------------ real components
@pytest.mark.slow
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
        assert c["form"] in ("rewrite", "append")
        if c["form"] == "append":  # the naive instruction survives byte for byte
            assert c["text"].startswith(data["naive"]) and c["text"] != data["naive"]
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


@pytest.mark.slow
def test_rerun_reuses_every_scored_row(real_run, navigate, smol, default_optimizer) -> None:
    rep, out, _ = real_run
    calls0 = smol.calls
    again = compile_task(navigate, dev_limit=DEV, candidates=K, downstream=smol,
                         optimizer=default_optimizer, output=out, n_resamples=200,
                         progress=False)
    assert smol.calls == calls0
    assert again.compiled == rep.compiled
    assert again.summary["cost"]["cached_answers_used"] == DEV * len(rep.candidates)


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
@pytest.mark.slow
def test_compile_prompt_chat_template_with_real_chat_model(downstream_chat) -> None:
    """A real LangChain chat model as downstream, a custom metric, and a scripted optimizer
    whose single rewrite is served only when its measured gain's lower bound is above zero."""
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
    # The gate's decision must follow from the measured interval, and the returned object
    # from the decision: a mismatch in either direction fails.
    gain = rep.candidates[1]["gain"]
    assert rep.improved == (gain["ci_low"] > 0)
    if rep.improved:
        assert out.format_messages(country="x")[0].content == rep.compiled
        assert rep.compiled == "Reply with the name of the city only."
    else:
        assert out is tmpl and rep.compiled == "Reply."
