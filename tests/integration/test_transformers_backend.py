"""The HF transformers backend on the real SmolLM2 weights (dequantized from the GGUF by
transformers), on the CPU here; the same code takes a GPU when torch sees one."""

from __future__ import annotations

import pytest

from fipo_middleware import DecodingParams, FIPOOptimizer, ModelLoadError
from fipo_middleware.template import MetaPromptInput, build_chat_messages

pytest.importorskip("transformers", reason="the 'hf' extra is not installed")


@pytest.fixture(scope="module")
def hf_optimizer(smollm2_path):
    return FIPOOptimizer.from_transformers(
        str(smollm2_path.parent),
        gguf_file=smollm2_path.name,
        decoding=DecodingParams(max_tokens=24),
    )


def test_device_and_identity(hf_optimizer):
    import torch

    backend = hf_optimizer.backend
    assert backend.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert backend.identity.startswith("transformers:") and backend.context_length == 8192


def test_chat_template_matches_llama_cpp(hf_optimizer, base_optimizer):
    messages = build_chat_messages(MetaPromptInput("Sort these words: pear apple fig"))
    assert hf_optimizer.backend.render(messages) == base_optimizer.backend.render(messages)


def test_generates_and_runs_the_full_pipeline(hf_optimizer):
    raw = hf_optimizer.backend.generate(
        [{"role": "user", "content": "Say hello."}], DecodingParams(max_tokens=8)
    )
    assert isinstance(raw, str) and raw.strip()
    result = hf_optimizer.optimize("List three uses of copper.")
    assert result.raw_output and result.optimized_prompt.strip()
    assert hf_optimizer.invoke({"prompt": "List three uses of copper.", "suffix": "\n-"}).endswith(
        "\n-"
    )


def test_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(ModelLoadError, match="not found"):
        FIPOOptimizer.from_transformers(str(tmp_path / "no" / "such-model"))
