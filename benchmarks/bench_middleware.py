"""Middleware overhead, cache hits and batch throughput on the real SmolLM2 GGUF (2 cores).

    .venv/bin/python -m pytest benchmarks/bench_middleware.py --benchmark-only

Overhead compares ``FIPOOptimizer.optimize`` (meta-prompt, token count, generation, parsing,
guard; cache off) with a raw ``Llama.create_completion`` on the same llama.cpp instance, the
same rendered prompt and the same greedy decoding, so both generate the same tokens.
"""

from __future__ import annotations

import pytest

from fipo_middleware import DecodingParams, FIPOOptimizer
from fipo_middleware.template import MetaPromptInput, build_meta_prompt

NAIVE = "Classify the sentiment of this review: the food was cold and the waiter rude."
PARAMS = DecodingParams(max_tokens=48)


@pytest.fixture(scope="module")
def opt(smollm2_path):
    return FIPOOptimizer.from_gguf(smollm2_path, n_threads=2, decoding=PARAMS, cache_size=0)


def _raw_call(opt: FIPOOptimizer) -> str:
    backend = opt.backend
    text = backend.render(build_meta_prompt(MetaPromptInput(NAIVE), opt.dialect))
    out = backend.llama.create_completion(
        text,
        max_tokens=PARAMS.max_tokens,
        temperature=PARAMS.temperature,
        top_p=PARAMS.top_p,
        top_k=40,
        repeat_penalty=PARAMS.repeat_penalty,
        seed=PARAMS.seed,
        stop=list(PARAMS.stop),
    )
    return out["choices"][0]["text"]


def test_raw_llama_cpp_call(benchmark, opt):
    benchmark.group = "overhead"
    raw = benchmark.pedantic(_raw_call, args=(opt,), rounds=15, warmup_rounds=2)
    assert raw == opt.optimize(NAIVE).raw_output


def test_middleware_optimize_no_cache(benchmark, opt):
    benchmark.group = "overhead"
    result = benchmark.pedantic(opt.optimize, args=(NAIVE,), rounds=15, warmup_rounds=2)
    assert result.raw_output


def test_cache_hit(benchmark, smollm2_path):
    cached = FIPOOptimizer.from_gguf(smollm2_path, n_threads=2, decoding=PARAMS)
    cached.optimize(NAIVE)
    result = benchmark(cached.optimize, NAIVE)
    assert result.cached


def test_batch_throughput(benchmark, opt):
    prompts = [f"Write a short title for a blog post about hobby number {i}." for i in range(8)]
    benchmark.extra_info["prompts_per_round"] = len(prompts)
    outs = benchmark.pedantic(
        opt.batch, args=(prompts,), kwargs={"config": {"max_concurrency": 4}}, rounds=3
    )
    assert len(outs) == 8


def test_feature_verifier_scores_a_candidate(benchmark):
    """The bundled verifier's cost per served prompt: the naive prompt and one candidate."""
    from fipo_middleware.models import default_verifier_path
    from fipo_middleware.verifier import FeatureVerifier

    path = default_verifier_path()
    assert path is not None, "fipo_middleware/weights/fipo-verifier.json is missing"
    v = FeatureVerifier(path)
    rewrite = ("Classify the sentiment of this review as positive, negative or neutral: the "
               "food was cold and the waiter rude.")
    scores = benchmark(v.score, NAIVE, [NAIVE, rewrite])
    assert len(scores) == 2 and scores[0] != scores[1]


def test_verified_default_end_to_end(benchmark):
    """``FIPOOptimizer.default(verify=True)``: one greedy candidate, guard, verifier (cache off);
    the latency the 1 s target is about."""
    opt = FIPOOptimizer.default(verify=True, n_threads=2, cache_size=0)
    result = benchmark.pedantic(opt.optimize, args=(NAIVE,), rounds=10, warmup_rounds=1)
    assert result.verifier_margin is not None or result.fallback_reason
