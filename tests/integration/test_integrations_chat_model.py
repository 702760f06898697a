"""``FIPOChatModel`` around the real local models: SmolLM2 as optimizer and as the wrapped
``ChatLlamaCpp`` answerer (llama.cpp)."""

from __future__ import annotations

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from fipo_middleware import FIPOOptimizer
from integrations import METADATA_KEY, FIPOChatModel
from tests.fakes import RewriteTableLLM


def table_optimizer() -> FIPOOptimizer:
    return FIPOOptimizer.from_llm(RewriteTableLLM(table={}))


def test_standard_params_are_forwarded_to_a_copy_of_the_wrapped_model(
    downstream_chat: BaseChatModel,
) -> None:
    chat = FIPOChatModel(
        optimizer=table_optimizer(), model=downstream_chat, max_tokens=5, stop=["\n"],
        temperature=0.0,
    )
    assert chat.model.max_tokens == 5 and chat.model.stop == ["\n"]
    assert downstream_chat.max_tokens == 24 and downstream_chat.stop is None  # not mutated
    assert chat.model.client is downstream_chat.client  # the loaded GGUF is shared
    ls = chat._get_ls_params()
    assert ls["ls_provider"] == "fipo" and ls["ls_max_tokens"] == 5


def test_real_local_models_end_to_end(
    base_optimizer: FIPOOptimizer, downstream_chat: BaseChatModel
) -> None:
    """SmolLM2 optimizer + SmolLM2 answerer over llama.cpp: the answer records exactly what the
    optimizer produced for the instruction (often the naive prompt: the untuned base model's
    rewrites are mostly rejected by the guard)."""
    naive = "List three uses of a paperclip."
    chat = FIPOChatModel(optimizer=base_optimizer, model=downstream_chat)
    answer = chat.invoke([SystemMessage("Be brief."), HumanMessage(naive)])
    assert isinstance(answer, AIMessage) and answer.text.strip()
    [record] = answer.response_metadata[METADATA_KEY]
    expected = base_optimizer.optimize(naive)
    assert record["naive_prompt"] == naive
    assert record["optimized_prompt"] == expected.optimized_prompt
    assert record["fallback_reason"] == expected.fallback_reason
