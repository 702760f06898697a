"""Shared fixtures: the real SmolLM2 GGUF, served by real llama.cpp.

Loading a 135M GGUF takes well under a second, but generation is the expensive part on two
cores, so model-backed fixtures are session-scoped and tests keep ``max_tokens`` small.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.fail(f"third-party data not found at {SHARED_DATA} (expected beside the repo)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    from fipo_middleware.models import smollm2_gguf_path

    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def base_optimizer(smollm2_path: Path):
    """The untuned base model as optimizer (no adapter): real llama.cpp, greedy."""
    from fipo_middleware import DecodingParams, FIPOOptimizer

    return FIPOOptimizer.from_gguf(
        smollm2_path, n_ctx=2048, n_threads=2, decoding=DecodingParams(max_tokens=64)
    )


@pytest.fixture(scope="session")
def default_optimizer():
    """``FIPOOptimizer.default(verify=False)``: SmolLM2 + the shipped FIPO adapter, the rewriter
    itself (guard and resamples, no verifier), so tests see what it writes."""
    from fipo_middleware import DecodingParams, FIPOOptimizer

    return FIPOOptimizer.default(verify=False, n_threads=2,
                                 decoding=DecodingParams(max_tokens=96))


@pytest.fixture(scope="session")
def downstream_llm(smollm2_path: Path):
    """A real LangChain LLM over llama.cpp (SmolLM2) as the downstream model."""
    from langchain_community.llms import LlamaCpp

    return LlamaCpp(
        model_path=str(smollm2_path),
        n_ctx=2048,
        max_tokens=24,
        temperature=0.0,
        n_threads=2,
        verbose=False,
    )


@pytest.fixture(scope="session")
def downstream_chat(smollm2_path: Path):
    """A real LangChain chat model over llama.cpp (SmolLM2) as the downstream model."""
    from langchain_community.chat_models import ChatLlamaCpp

    return ChatLlamaCpp(
        model_path=str(smollm2_path),
        n_ctx=2048,
        max_tokens=24,
        temperature=0.0,
        n_threads=2,
        verbose=False,
    )
