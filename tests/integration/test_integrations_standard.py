"""langchain-tests' standard integration suite for ``FIPOChatModel``: the real thing,
``ChatLlamaCpp`` over SmolLM2 behind the real base optimizer (both from conftest, greedy, small
``max_tokens``). The only skips are what the wrapped ``ChatLlamaCpp``/SmolLM2-135M cannot do on
its own; each names its reason. The standard unit suite is in
``tests/unit/test_integrations_standard.py``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_tests.integration_tests import ChatModelIntegrationTests
from pydantic import PrivateAttr

from fipo_middleware import FIPOOptimizer
from integrations import FIPOChatModel


@pytest.fixture(scope="module")
def serial_chat(smollm2_path: Path) -> BaseChatModel:
    """conftest's ``downstream_chat``, made safe for the suite's ``batch``/``abatch``.

    ChatLlamaCpp drives one llama.cpp context with no lock: two concurrent calls (which is
    what ``batch`` does, on threads) abort the process in ggml (``GGML_ASSERT(i1 >= 0 && i1 <
    ne1)``; reproduced with the bare ChatLlamaCpp). A lock around its generation serializes
    them; FIPOOptimizer's llama.cpp backend has the same lock of its own.
    """
    from langchain_community.chat_models import ChatLlamaCpp

    class SerialChatLlamaCpp(ChatLlamaCpp):
        # Re-entrant: ChatLlamaCpp._generate calls its own _stream (streaming=True default).
        _lock: Any = PrivateAttr(default_factory=threading.RLock)

        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return super()._generate(*args, **kwargs)

        def _stream(self, *args: Any, **kwargs: Any) -> Any:
            # Generate under the lock, yield after it: ``astream`` advances a sync generator
            # from executor threads, so a lock held across ``yield`` would be released (or
            # never released) by the wrong thread.
            with self._lock:
                chunks = list(super()._stream(*args, **kwargs))
            yield from chunks

    return SerialChatLlamaCpp(
        model_path=str(smollm2_path), n_ctx=2048, max_tokens=24, temperature=0.0,
        n_threads=2, verbose=False,
    )


# Reasons, one per thing the wrapped ChatLlamaCpp + SmolLM2-135M cannot do by itself.
NO_TOOL_CHOICE_ANY = (
    "wrapped model: ChatLlamaCpp.bind_tools rejects tool_choice='any' (ValueError; it only "
    "forces one named tool), and this test binds with tool_choice='any'"
)
NO_FREE_TOOL_CALLS = (
    "wrapped model: without a forced tool, llama.cpp's chat handler for SmolLM2 returns plain "
    "text, and the 135M model does not emit tool calls on its own"
)
NO_TOOL_HISTORY_TEMPLATE = (
    "wrapped model: SmolLM2's GGUF chat template, rendered by llama.cpp, concatenates message "
    "content as a string; ChatLlamaCpp sends an AIMessage with tool calls as content None (or "
    "a block list), so rendering the history raises TypeError before anything is generated"
)


class TestFIPOChatModelIntegration(ChatModelIntegrationTests):
    _params: dict[str, Any] = {}  # noqa: RUF012 - filled per test from the session fixtures

    @pytest.fixture(autouse=True)
    def _real_models(self, base_optimizer: FIPOOptimizer, serial_chat: BaseChatModel) -> None:
        # Autouse fixtures run before the suite's ``model`` fixture, which reads
        # ``chat_model_params``; the fixtures load each GGUF once.
        type(self)._params = {"optimizer": base_optimizer, "model": serial_chat}

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return FIPOChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return dict(self._params)

    @property
    def returns_usage_metadata(self) -> bool:
        # Wrapped model: ChatLlamaCpp (langchain-community 0.4.2) puts token counts only in
        # llm_output["token_usage"]; its AIMessage has no usage_metadata and its
        # response_metadata no model_name (FIPOChatModel passes both through untouched).
        return False

    @property
    def supports_model_override(self) -> bool:
        # Wrapped model: ChatLlamaCpp serves the one GGUF it loaded; there is no per-call
        # ``model=`` switch.
        return False

    @property
    def has_structured_output(self) -> bool:
        # Wrapped model: ChatLlamaCpp.with_structured_output (grammar-forced tool call) does not
        # report ``ls_structured_output_format`` to callbacks, which every structured-output
        # standard test asserts, and SmolLM2 with max_tokens=24 cannot finish the Joke JSON.
        # Pass-through of with_structured_output: tests/unit/test_integrations_chat_model.py.
        return False

    # Tool calling stays on (FIPOChatModel.bind_tools delegates to ChatLlamaCpp.bind_tools).
    # The tests below need the wrapped model to emit tool calls or to render tool-call
    # histories; the suite requires an overridden standard test to be an xfail with a
    # reason, so each still runs the standard body and fails for exactly that reason.
    @pytest.mark.xfail(reason=NO_TOOL_CHOICE_ANY, raises=ValueError)
    def test_tool_calling(self, model: BaseChatModel) -> None:
        super().test_tool_calling(model)

    @pytest.mark.xfail(reason=NO_TOOL_CHOICE_ANY, raises=ValueError)
    async def test_tool_calling_async(self, model: BaseChatModel) -> None:
        await super().test_tool_calling_async(model)

    @pytest.mark.xfail(reason=NO_TOOL_CHOICE_ANY, raises=ValueError)
    def test_tool_calling_with_no_arguments(self, model: BaseChatModel) -> None:
        super().test_tool_calling_with_no_arguments(model)

    @pytest.mark.xfail(reason=NO_TOOL_CHOICE_ANY, raises=ValueError)
    def test_bind_runnables_as_tools(self, model: BaseChatModel) -> None:
        super().test_bind_runnables_as_tools(model)

    @pytest.mark.xfail(reason=NO_TOOL_CHOICE_ANY, raises=ValueError)
    def test_tool_choice(self, model: BaseChatModel) -> None:
        super().test_tool_choice(model)

    @pytest.mark.xfail(reason=NO_TOOL_CHOICE_ANY, raises=ValueError)
    def test_structured_few_shot_examples(self, model: BaseChatModel, my_adder_tool: Any) -> None:
        super().test_structured_few_shot_examples(model, my_adder_tool)

    @pytest.mark.xfail(reason=NO_TOOL_CHOICE_ANY, raises=ValueError)
    def test_unicode_tool_call_integration(self, model: BaseChatModel) -> None:
        super().test_unicode_tool_call_integration(model)

    @pytest.mark.xfail(reason=NO_TOOL_HISTORY_TEMPLATE, raises=TypeError)
    def test_tool_message_histories_string_content(
        self, model: BaseChatModel, my_adder_tool: Any
    ) -> None:
        super().test_tool_message_histories_string_content(model, my_adder_tool)

    @pytest.mark.xfail(reason=NO_TOOL_HISTORY_TEMPLATE, raises=TypeError)
    def test_tool_message_histories_list_content(
        self, model: BaseChatModel, my_adder_tool: Any
    ) -> None:
        super().test_tool_message_histories_list_content(model, my_adder_tool)

    @pytest.mark.xfail(reason=NO_TOOL_HISTORY_TEMPLATE, raises=TypeError)
    def test_tool_message_error_status(self, model: BaseChatModel, my_adder_tool: Any) -> None:
        super().test_tool_message_error_status(model, my_adder_tool)

    @pytest.mark.slow  # the model generates a full agent turn before failing
    @pytest.mark.xfail(reason=NO_FREE_TOOL_CALLS, raises=AssertionError)
    def test_agent_loop(self, model: BaseChatModel) -> None:
        super().test_agent_loop(model)
