"""``FIPOChatModel``: any LangChain chat model, with its human instruction optimized first.

    chat = FIPOChatModel(optimizer=FIPOOptimizer.default(), model=ChatLlamaCpp(...))
    chat.invoke("explain recursion")                  # the wrapped model gets the rewrite
    chat.bind_tools([...]).invoke(...)                # the wrapped model's own tool format
    chat.with_structured_output(Schema).invoke(...)   # the wrapped model's own implementation

Everything but the human instruction is the wrapped model's: tool calls, usage metadata,
``response_metadata`` and streaming chunks come back as it produced them. The audit trail
(naive and optimized text of every rewritten message) is added under
``response_metadata["fipo"]`` of the answer (of the first chunk when streaming), never in
``additional_kwargs``, because some providers send ``additional_kwargs`` back to the API when
the message is replayed in a later turn.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
    adispatch_custom_event,
    dispatch_custom_event,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.language_models.base import LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, PrivateAttr, model_validator

from fipo_middleware.inputs import RewritePolicy
from fipo_middleware.optimizer import CUSTOM_EVENT, FIPOOptimizer
from integrations._rewrite import arewrite_messages, rewrite_messages

logger = logging.getLogger("fipo_middleware.integrations")

METADATA_KEY = "fipo"
"""Key of the audit records in ``response_metadata``."""

# LangGraph's ``stream_mode="messages"`` skips runs tagged like this. The wrapped model's run is
# nested under ours, so without the tag every token would be streamed twice.
_NOSTREAM_TAG = "nostream"

# Standard chat-model parameters (langchain-tests passes them to every chat model). They belong
# to the wrapped model, so they are forwarded to it where it declares a field of that name.
_FORWARDED = ("temperature", "max_tokens", "timeout", "max_retries", "stop", "streaming")


class FIPOChatModel(BaseChatModel):
    """A chat model that optimizes the human instruction, then delegates to ``model``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    optimizer: FIPOOptimizer
    """The prompt optimizer (e.g. ``FIPOOptimizer.default()``)."""
    model: BaseChatModel
    """The chat model that answers the optimized prompt."""
    rewrite: RewritePolicy = "last_human"
    """Which human messages to optimize: the last (the current instruction), the first (the
    task statement of a conversation), or all. System, AI and tool messages are never touched."""

    temperature: float | None = None
    max_tokens: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    stop: list[str] | None = None
    streaming: bool = False
    """These six are forwarded to the wrapped model (a copy of it) when it has a field of the
    same name; ``stop`` is otherwise passed per call. None leaves the wrapped model's own."""

    _call_stop: list[str] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _forward_standard_params(self) -> FIPOChatModel:
        fields = type(self.model).model_fields
        update: dict[str, Any] = {}
        for name in _FORWARDED:
            value = getattr(self, name)
            if name == "streaming" and "streaming" not in self.model_fields_set:
                continue
            if value is None:
                continue
            if name in fields:
                update[name] = value
            elif name == "stop":
                self._call_stop = list(value) or None
            else:
                logger.info(
                    "%s has no %r field; FIPOChatModel keeps %s=%r for tracing only",
                    type(self.model).__name__, name, name, value,
                )
        if update:
            # A copy, so the caller's model object is left as configured; clients (e.g. a
            # loaded llama.cpp model) are shared, not reloaded.
            self.model = self.model.model_copy(update=update)
        return self

    # ------------------------------------------------------------------ identity
    @property
    def _llm_type(self) -> str:
        return "fipo-chat-model"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "rewrite": self.rewrite,
            "optimizer": self.optimizer.backend.identity,
            "model": self.model._llm_type,
            "model_params": self.model._identifying_params,
        }

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        # The model name, temperature etc. are the wrapped model's; the provider is us.
        inner = self.model._get_ls_params(stop=stop or self._call_stop, **kwargs)
        params = LangSmithParams(ls_provider="fipo", ls_model_type="chat")
        for key in ("ls_model_name", "ls_temperature", "ls_max_tokens", "ls_stop"):
            if inner.get(key) is not None:
                params[key] = inner[key]  # type: ignore[literal-required]
        if isinstance(kwargs.get("model"), str):
            params["ls_model_name"] = kwargs["model"]
        params.setdefault("ls_model_name", type(self.model).__name__)
        return params

    # ------------------------------------------------------------------ rewriting
    def _rewrite(
        self, messages: list[BaseMessage], run_manager: CallbackManagerForLLMRun | None
    ) -> tuple[list[BaseMessage], list[dict]]:
        new, records = rewrite_messages(self.optimizer, messages, self.rewrite)
        if run_manager is not None:
            for record in records:
                dispatch_custom_event(CUSTOM_EVENT, record, config=self._child(run_manager))
        return new, records

    async def _arewrite(
        self, messages: list[BaseMessage], run_manager: AsyncCallbackManagerForLLMRun | None
    ) -> tuple[list[BaseMessage], list[dict]]:
        new, records = await arewrite_messages(self.optimizer, messages, self.rewrite)
        if run_manager is not None:
            for record in records:
                await adispatch_custom_event(
                    CUSTOM_EVENT, record, config=self._child(run_manager)
                )
        return new, records

    @staticmethod
    def _child(
        run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
    ) -> RunnableConfig:
        # ``BaseChatModel.stream`` calls ``_stream`` without a run manager; the outer run then
        # already reports every chunk, so the wrapped model's run is left out of the trace
        # (an empty list, unlike None, also keeps a parent chain's callbacks from leaking in).
        if run_manager is None:
            return {"callbacks": []}
        # An LLM run manager has no ``get_child`` (model runs are usually leaves); this is
        # ``ParentRunManager.get_child`` spelled out, so the wrapped model's run nests under ours.
        manager_cls = (
            AsyncCallbackManager
            if isinstance(run_manager, AsyncCallbackManagerForLLMRun)
            else CallbackManager
        )
        manager = manager_cls(handlers=[], parent_run_id=run_manager.run_id)
        manager.set_handlers(run_manager.inheritable_handlers)
        manager.add_tags(run_manager.inheritable_tags)
        manager.add_metadata(run_manager.inheritable_metadata)
        manager.add_tags([_NOSTREAM_TAG], inherit=False)
        return {"callbacks": manager}

    def _stop(self, stop: list[str] | None) -> list[str] | None:
        return stop if stop is not None else self._call_stop

    @staticmethod
    def _annotate(message: BaseMessage, records: list[dict]) -> Any:
        return message.model_copy(
            update={"response_metadata": {**message.response_metadata, METADATA_KEY: records}}
        )

    # ------------------------------------------------------------------ generation
    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        new, records = self._rewrite(messages, run_manager)
        answer = self.model.invoke(
            new, config=self._child(run_manager), stop=self._stop(stop), **kwargs
        )
        return ChatResult(generations=[ChatGeneration(message=self._annotate(answer, records))])

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        new, records = await self._arewrite(messages, run_manager)
        answer = await self.model.ainvoke(
            new, config=self._child(run_manager), stop=self._stop(stop), **kwargs
        )
        return ChatResult(generations=[ChatGeneration(message=self._annotate(answer, records))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        new, records = self._rewrite(messages, run_manager)
        first = True
        for chunk in self.model.stream(
            new, config=self._child(run_manager), stop=self._stop(stop), **kwargs
        ):
            if first:
                chunk = self._annotate(chunk, records)
                first = False
            # No on_llm_new_token here: BaseChatModel reports every chunk we yield itself.
            yield ChatGenerationChunk(message=_as_chunk(chunk))

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        new, records = await self._arewrite(messages, run_manager)
        first = True
        async for chunk in self.model.astream(
            new, config=self._child(run_manager), stop=self._stop(stop), **kwargs
        ):
            if first:
                chunk = self._annotate(chunk, records)
                first = False
            yield ChatGenerationChunk(message=_as_chunk(chunk))

    # ------------------------------------------------------------------ pass-through
    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable | BaseTool],
        *,
        tool_choice: str | dict | bool | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools in the wrapped model's own format: its ``bind_tools`` computes the call
        arguments (formatted tools, ``tool_choice``...), which we bind to ourselves so each call
        is still optimized and then forwards them unchanged."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        bound = self.model.bind_tools(tools, **kwargs)
        if isinstance(bound, RunnableBinding) and bound.bound is self.model:
            return self.bind(**bound.kwargs).with_config(bound.config)
        # A model whose bind_tools builds something else: rewrite, then run that.
        return self.rewriter() | bound

    def with_structured_output(
        self,
        schema: dict[str, Any] | type,
        *,
        include_raw: bool = False,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, dict[str, Any] | Any]:
        """The wrapped model's own ``with_structured_output`` (any ``method``), fed the
        optimized messages. The parsed output has no room for the audit trail; it is reported
        as the ``fipo_optimization`` custom callback event."""
        structured = self.model.with_structured_output(schema, include_raw=include_raw, **kwargs)
        return self.rewriter() | structured

    def rewriter(self) -> Runnable[LanguageModelInput, list[BaseMessage]]:
        """The rewriting step alone, as a Runnable: input -> optimized message list."""

        def _run(value: LanguageModelInput, config: RunnableConfig) -> list[BaseMessage]:
            messages = self._convert_input(value).to_messages()
            new, records = rewrite_messages(self.optimizer, messages, self.rewrite)
            for record in records:
                dispatch_custom_event(CUSTOM_EVENT, record, config=config)
            return new

        async def _arun(value: LanguageModelInput, config: RunnableConfig) -> list[BaseMessage]:
            messages = self._convert_input(value).to_messages()
            new, records = await arewrite_messages(self.optimizer, messages, self.rewrite)
            for record in records:
                await adispatch_custom_event(CUSTOM_EVENT, record, config=config)
            return new

        return RunnableLambda(_run, afunc=_arun, name="FIPORewrite")


def _as_chunk(message: BaseMessage) -> AIMessageChunk:
    # ``stream`` yields chunks; a model without streaming yields its one AIMessage instead.
    if isinstance(message, AIMessageChunk):
        return message
    return AIMessageChunk(**message.model_dump(exclude={"type"}))
