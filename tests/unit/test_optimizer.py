"""FIPOOptimizer control flow with scripted optimizer models (``tests.fakes``): the cache,
guard rejections and fallbacks, a failing backend, guarded resampling. The same features run
on the real SmolLM2 model in ``tests/integration/test_optimizer.py``."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListLLM

from fipo_middleware import FIPOOptimizer, RewriteRejectedError
from tests.fakes import FailingLLM, RecordingBackend

NAIVE = "Classify the sentiment of this review: the food was cold and the waiter rude."
GOOD_REWRITE = (
    "Classify the sentiment of this review as positive, negative or neutral: "
    "the food was cold and the waiter rude."
)


class Recorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.ends: list[Any] = []

    def on_chain_end(self, outputs, **kwargs):
        self.ends.append(outputs)


def scripted(*responses: str, **kwargs: Any) -> FIPOOptimizer:
    """An optimizer whose backend is a scripted LangChain LLM (control-flow tests only)."""
    return FIPOOptimizer.from_llm(FakeListLLM(responses=list(responses)), **kwargs)


# ---------------------------------------------------------------- cache
def test_cache_hits_and_opt_out():
    opt = scripted(GOOD_REWRITE, GOOD_REWRITE + " Be brief.")
    first = opt.optimize(NAIVE)
    second = opt.optimize(NAIVE)
    assert not first.cached and second.cached
    assert second.optimized_prompt == first.optimized_prompt
    assert opt.cache.hits == 1
    no_cache = scripted(
        GOOD_REWRITE,
        "Classify the review's sentiment: the food was cold and the waiter rude.",
        cache_size=0,
    )
    assert no_cache.optimize(NAIVE).optimized_prompt != no_cache.optimize(NAIVE).optimized_prompt


# ---------------------------------------------------------------- fallbacks
def test_guard_rejection_falls_back_and_reports():
    opt = scripted("The sentiment is negative.")
    rec = Recorder()
    assert opt.invoke(NAIVE, config={"callbacks": [rec]}) == NAIVE
    assert "answers_task" in rec.ends[-1]["fallback_reason"]
    assert rec.ends[-1]["guard_reasons"] == ["answers_task"]
    with pytest.raises(RewriteRejectedError, match="answers_task"):
        scripted("The sentiment is negative.", on_failure="raise").invoke(NAIVE)


def test_accepted_rewrite_replaces_instruction():
    assert scripted("Golden Prompt: " + GOOD_REWRITE).invoke(NAIVE) == GOOD_REWRITE


def test_backend_failure_falls_back(caplog):
    opt = FIPOOptimizer.from_llm(FailingLLM())
    with caplog.at_level("WARNING", logger="fipo_middleware"):
        assert opt.invoke(NAIVE) == NAIVE
    assert "backend_error" in caplog.text and "optimizer server down" in caplog.text
    strict = FIPOOptimizer.from_llm(FailingLLM(), on_failure="raise")
    with pytest.raises(Exception, match="optimizer server down"):
        strict.invoke(NAIVE)


def test_rewrite_returns_output_and_result():
    opt = scripted("Choose the planet closest to the Sun. Answer with the letter only.")
    out, result = opt.rewrite("which planet is closest to the sun\nA) Venus\nB) Mercury\n")
    assert out == (
        "Choose the planet closest to the Sun. Answer with the letter only.\nA) Venus\nB) Mercury\n"
    )
    assert result.naive_prompt == "which planet is closest to the sun"
    assert not result.used_fallback


# ---------------------------------------------------------------- guarded resampling
def test_retries_resample_until_the_guard_accepts():
    backend = RecordingBackend("The sentiment is negative.", "Negative.", GOOD_REWRITE)
    opt = FIPOOptimizer(backend=backend, retries=2, retry_temperature=0.6)
    result = opt.optimize(NAIVE)
    assert result.optimized_prompt == GOOD_REWRITE and result.attempts == 3
    assert not result.used_fallback and result.to_dict()["attempts"] == 3
    first, *resamples = backend.params
    assert first.greedy
    assert [(p.temperature, p.seed) for p in resamples] == [(0.6, 1), (0.6, 2)]


def test_retries_stop_at_the_first_accepted_rewrite():
    backend = RecordingBackend(GOOD_REWRITE, "unused", "unused")
    assert FIPOOptimizer(backend=backend, retries=2).optimize(NAIVE).attempts == 1
    assert len(backend.params) == 1


async def test_when_every_try_is_rejected_the_greedy_reasons_are_reported():
    def make():
        return FIPOOptimizer(backend=RecordingBackend("The sentiment is negative.",
                                                      "Sure! Here it is.", "Negative."),
                             retries=2)

    for result in (make().optimize(NAIVE), await make().aoptimize(NAIVE)):
        assert result.used_fallback and result.attempts == 3
        assert result.optimized_prompt == NAIVE
        assert result.raw_output == "The sentiment is negative."
        assert result.guard_reasons == ("answers_task",)


def test_no_retries_without_the_guard():
    backend = RecordingBackend("The sentiment is negative.", "unused")
    result = FIPOOptimizer(backend=backend, retries=3, use_guard=False).optimize(NAIVE)
    assert result.attempts == 1 and result.optimized_prompt == "The sentiment is negative."


@pytest.mark.parametrize("kwargs, match", [
    ({"model": "/no/such/model-dir"}, "model path not found: /no/such/model-dir"),
    ({"model": "./missing-model"}, "model path not found: ./missing-model"),
    ({"model": "HuggingFaceTB/SmolLM2-135M-Instruct", "adapter_path": "/no/such/adapter"},
     "adapter path not found: /no/such/adapter"),
])
def test_from_transformers_names_a_bad_path_before_importing_torch(kwargs, match):
    # The unit tier blocks torch/transformers imports, so reaching them would raise
    # ModelRuntimeImportError instead of the ModelLoadError asserted here.
    from fipo_middleware.errors import ModelLoadError

    with pytest.raises(ModelLoadError, match=match):
        FIPOOptimizer.from_transformers(**kwargs)
