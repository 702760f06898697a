"""``run_eval`` end to end with real components: SmolLM2 through real llama.cpp as the downstream
model, the untuned base model as optimizer, a few examples of real BIG-bench tasks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evaluation import LlamaCppDownstream, load_task, run_eval
from evaluation.tasks import LETTER_SUFFIX, sample
from fipo_middleware.cli import main as fipo_main

TASKS = ("sports_understanding.json", "object_counting.json")
LIMIT = 3


@pytest.fixture(scope="module")
def smol(smollm2_path: Path) -> LlamaCppDownstream:
    return LlamaCppDownstream(smollm2_path, name="smollm2", n_threads=2)


@pytest.fixture(scope="module")
def task_paths(shared_data: Path) -> list[Path]:
    return [shared_data / "bigbench" / t for t in TASKS]


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, task_paths, smol, base_optimizer):
    out = tmp_path_factory.mktemp("eval_run")
    res = run_eval(
        task_paths, {"naive": None, "base": base_optimizer}, [smol],
        output=out, limit=LIMIT, seed=0, max_new_tokens=24, n_resamples=200, progress=False,
    )
    return res, smol.calls


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.slow
def test_reports_exist_and_agree(first_run, task_paths) -> None:
    res, _ = first_run
    files = res.files
    assert {"examples", "summary", "markdown", "chart"} <= set(files)
    rows = _read_jsonl(files["examples"])
    assert len(rows) == len(TASKS) * LIMIT * 2  # tasks x examples x optimizers
    summary = json.loads(files["summary"].read_text(encoding="utf-8"))
    # Every accuracy in the summary is the mean of the per-example scores.
    for r in summary["results"]:
        vals = [x["scores"][r["metric"]] for x in rows
                if (x["task"], x["downstream"], x["optimizer"]) == (
                    r["task"], r["downstream"], r["optimizer"])
                and x["scores"].get(r["metric"]) is not None]
        assert r["n"] == len(vals)
        assert r["accuracy"] == pytest.approx(sum(vals) / len(vals))
        if r["optimizer"] == "base":
            naive = next(n for n in summary["results"] if n["optimizer"] == "naive"
                         and (n["task"], n["metric"]) == (r["task"], r["metric"]))
            assert r["vs_naive"]["diff"] == pytest.approx(r["accuracy"] - naive["accuracy"])
            assert r["vs_naive"]["ci_low"] <= r["vs_naive"]["diff"] <= r["vs_naive"]["ci_high"]
    prim = {(r["task"], r["metric"]) for r in summary["results"] if r["primary"]}
    assert prim == {("sports_understanding", "loglik"), ("object_counting", "numeric")}
    md = files["markdown"].read_text(encoding="utf-8")
    for r in summary["results"]:
        if r["primary"]:
            assert f"| {r['task']} | {r['metric']} | {r['n']} |" in md
    assert "Δ base" in md and "macro avg" in md
    png = files["chart"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    import matplotlib.image as mpimg

    assert mpimg.imread(files["chart"]).shape[0] > 100


@pytest.mark.slow
def test_prompts_keep_input_and_options_byte_for_byte(first_run, task_paths) -> None:
    res, _ = first_run
    tasks = {t.name: t for t in (sample(load_task(p), LIMIT, 0) for p in task_paths)}
    for r in res.examples:
        ex = next(e for e in tasks[r["task"]].examples if e.id == r["example_id"])
        assert r["prompt"] == r["optimized_instruction"] + ex.fixed_part()
        if r["optimizer"] == "naive":
            assert r["prompt"] == ex.prompt()
        if r["kind"] == "multiple_choice":
            assert r["letter"]["prompt"] == r["prompt"] + LETTER_SUFFIX
            assert set(r["scores"]) == {"loglik", "loglik_avg", "letter"}
            assert len(r["loglik"]["logliks"]) == len(ex.options)
        else:
            assert isinstance(r["output"], str)
            assert set(r["scores"]) == {"exact", "normalized", "numeric"}


@pytest.mark.slow
def test_rerun_is_served_from_cache(first_run, task_paths, smollm2_path, base_optimizer) -> None:
    res, calls = first_run
    assert calls > 0
    fresh = LlamaCppDownstream(smollm2_path, name="smollm2", n_threads=2)
    again = run_eval(
        task_paths, {"naive": None, "base": base_optimizer}, [fresh],
        output=res.output, limit=LIMIT, seed=0, max_new_tokens=24, n_resamples=200,
        progress=False,
    )
    assert fresh.calls == 0 and fresh._backend is None  # never even loaded
    assert again.summary["cache"]["optimized"]["misses"] == 0
    assert again.summary["cache"]["responses"]["misses"] == 0
    assert again.examples == res.examples


@pytest.mark.slow
def test_interrupted_run_resumes_only_missing_work(first_run, task_paths, smollm2_path,
                                                  tmp_path) -> None:
    res, _ = first_run
    # A copy of the cache that lost its last two responses, plus a line torn by a crash.
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "optimized.jsonl").write_bytes(
        (res.output / "cache" / "optimized.jsonl").read_bytes())
    lines = (res.output / "cache" / "responses.jsonl").read_text(encoding="utf-8").splitlines()
    (cache / "responses.jsonl").write_text(
        "\n".join(lines[:-2]) + "\n" + lines[-2][: len(lines[-2]) // 2], encoding="utf-8")
    fresh = LlamaCppDownstream(smollm2_path, name="smollm2", n_threads=2)
    from evaluation.optimizers import OptimizerSpec

    # The optimizer must not run again: its factory fails the test if called.
    key = next(s["key"] for s in res.summary["config"]["optimizers"] if s["name"] == "base")
    spec = OptimizerSpec("base", key, lambda: pytest.fail("optimizer re-ran"))
    again = run_eval(task_paths, {"naive": None, "base": spec}, [fresh], output=tmp_path,
                     limit=LIMIT, seed=0, max_new_tokens=24, n_resamples=200, progress=False)
    assert fresh.calls == 2
    assert again.summary["cache"]["responses"]["misses"] == 2
    assert [r["scores"] for r in again.examples] == [r["scores"] for r in res.examples]


def test_loglik_matches_a_full_forward_pass(smol) -> None:
    prompt = "Is the sky blue on a clear day?"
    options = ["Yes, it is.", "No"]
    got = smol.loglik(prompt, options)
    llama = smol.backend.llama
    ctx_text = smol._context(prompt)
    n_ctx = len(llama.tokenize(ctx_text.encode(), add_bos=True, special=True))
    for (total, n), opt in zip(got, options, strict=True):
        toks = llama.tokenize((ctx_text + opt).encode(), add_bos=True, special=True)
        llama.reset()
        llama.eval(toks)
        sc = np.asarray(llama.scores[: len(toks)], dtype=np.float64)
        logp = sc - np.logaddexp.reduce(sc, axis=1, keepdims=True)
        expected = sum(logp[i - 1, toks[i]] for i in range(n_ctx, len(toks)))
        assert n == len(toks) - n_ctx
        assert total == pytest.approx(expected, abs=1e-3)
        assert total < 0


@pytest.mark.slow
def test_langchain_downstreams_use_the_letter_scorer(tmp_path, downstream_llm,
                                                    downstream_chat) -> None:
    task = tmp_path / "capitals.jsonl"
    rows = [
        {"id": "fr", "instruction": "Pick the capital city.", "input": "France",
         "options": ["Lyon", "Paris", "Nice"], "target": "Paris"},
        {"id": "it", "instruction": "Pick the capital city.", "input": "Italy",
         "options": ["Rome", "Milan"], "target": 0},
    ]
    task.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    res = run_eval([task], ["naive"], {"llm": downstream_llm, "chat": downstream_chat},
                   output=tmp_path / "out", seed=0, n_resamples=100, progress=False)
    assert {r["downstream"] for r in res.examples} == {"llm", "chat"}
    for r in res.examples:
        assert set(r["scores"]) == {"letter"}
        assert isinstance(r["letter"]["output"], str)
        assert r["letter"]["pred"] in (None, *("ABC"[: len(r["options"])]))
    assert {r["metric"] for r in res.summary["results"] if r["primary"]} == {"letter"}


def test_cli_eval_and_bad_file(tmp_path, task_paths, capsys) -> None:
    out = tmp_path / "cli"
    rc = fipo_main(["eval", str(task_paths[0]), "--limit", "2", "--optimizer", "naive",
                    "--mc-scorer", "loglik", "--n-threads", "2", "--output", str(out),
                    "--quiet", "--bootstrap", "100"])
    assert rc == 0
    assert {p.name for p in out.iterdir()} >= {"examples.jsonl", "summary.json", "report.md",
                                              "chart.png", "cache"}
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert {r["metric"] for r in summary["results"]} == {"loglik", "loglik_avg"}
    bad = tmp_path / "bad_task.json"
    bad.write_text(json.dumps({"examples": [{"input": "q", "target_scores": "{'Yes': 1,"}]}),
                   encoding="utf-8")
    capsys.readouterr()
    rc = fipo_main(["eval", str(bad), "--output", str(tmp_path / "bad"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(bad) in err and "'target_scores'" in err


@pytest.mark.slow
def test_hf_downstream_agrees_with_llamacpp(smollm2_path: Path, smol) -> None:
    """The transformers built-in on the same SmolLM2 weights (the GGUF, dequantized by
    transformers): greedy generation works and the option ranking matches llama.cpp's."""
    pytest.importorskip("transformers")
    pytest.importorskip("gguf")
    from evaluation import HFDownstream

    hf = HFDownstream(str(smollm2_path.parent), gguf_file=smollm2_path.name, name="smollm2-hf",
                      device="cpu")
    prompt = "What is the capital of France?"
    options = ["Paris", "London"]
    got = hf.loglik(prompt, options)
    ref = smol.loglik(prompt, options)
    assert [n for _, n in got] == [n for _, n in ref]
    assert got[0][0] > got[1][0] and ref[0][0] > ref[1][0]
    assert got[0][0] == pytest.approx(ref[0][0], abs=1.5)  # Q4_1 in llama.cpp vs dequantized
    assert isinstance(hf.generate("Say hello.", 8), str) and hf.calls == 2
