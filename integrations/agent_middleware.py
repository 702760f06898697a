"""``FIPOMiddleware``: FIPO for LangChain v1 agents.

    agent = create_agent(model, tools, middleware=[FIPOMiddleware(FIPOOptimizer.default())])
    out = agent.invoke({"messages": [{"role": "user", "content": "weather in paris?"}]})
    out["fipo_optimizations"]   # {message id: {"naive_prompt": ..., "optimized_prompt": ...}}

Two hooks share the work:

- ``before_model`` optimizes the human messages that are due (``rewrite``, the policy
  ``FIPOChatModel`` uses: the first human turn of the thread, every human turn, or the latest
  one) and are not yet in ``state["fipo_optimizations"]``, and writes
  their records there. A tool loop calls the model many times; each message is optimized once,
  because later calls find its record (also across turns of a checkpointed thread).
- ``wrap_model_call`` hands the model a copy of the request whose recorded human messages carry
  the optimized text. The conversation in the state keeps what the user wrote, so the naive
  text is never lost and other middleware (summarization, PII...) see the real conversation.

System, AI and tool messages are never touched.
"""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, NotRequired

from langchain.agents.middleware import (
    AgentMiddleware,
    AgentState,
    ModelRequest,
    ModelResponse,
)
from langchain.agents.middleware.types import ExtendedModelResponse, OmitFromInput
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage

from fipo_middleware.inputs import REWRITE_POLICIES, RewritePolicy, select_human
from fipo_middleware.optimizer import FIPOOptimizer
from integrations._rewrite import arewrite_text, message_text, rewrite_text, with_text

STATE_KEY = "fipo_optimizations"

_OLD_TURNS: dict[str, RewritePolicy] = {"first": "first_human", "all": "all_human"}
"""The ``turns=`` spellings before the middleware shared ``FIPOChatModel``'s ``rewrite``
policy; still accepted, with a ``DeprecationWarning``."""


def _merge_records(
    left: dict[str, dict[str, Any]] | None, right: dict[str, dict[str, Any]] | None
) -> dict[str, dict[str, Any]]:
    # A reducer, so records written by separate model steps accumulate instead of replacing.
    return {**(left or {}), **(right or {})}


class FIPOState(AgentState[Any]):
    """Agent state with the FIPO audit trail: human message id -> record (``naive_prompt``,
    ``optimized_prompt``, ``used_fallback``, ``fallback_reason``, ``guard_reasons``, ``cached``,
    ``latency_ms``, ``model``). Output only; the reducer must be the last annotation."""

    fipo_optimizations: NotRequired[
        Annotated[dict[str, dict[str, Any]], OmitFromInput, _merge_records]
    ]


ModelResult = ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]


class FIPOMiddleware(AgentMiddleware[FIPOState, Any]):
    """Optimizes the user's instruction before the agent's model sees it."""

    state_schema = FIPOState

    def __init__(
        self,
        optimizer: FIPOOptimizer,
        *,
        rewrite: RewritePolicy | None = None,
        turns: Literal["first", "all"] | RewritePolicy | None = None,
    ):
        """``rewrite``: which human turns to optimize, the same policy as
        ``FIPOChatModel(rewrite=...)``: ``"first_human"`` (the thread's task statement, the
        default), ``"all_human"`` (every human turn) or ``"last_human"`` (the latest human turn
        of each invocation). ``turns="first"``/``"all"`` is the deprecated spelling."""
        super().__init__()
        if turns is not None:
            if rewrite is not None:
                raise TypeError("give rewrite= or the deprecated turns=, not both")
            if turns not in _OLD_TURNS and turns not in REWRITE_POLICIES:
                raise ValueError(
                    f"turns must be 'first' or 'all' (deprecated; use rewrite= with one of "
                    f"{REWRITE_POLICIES}), got {turns!r}"
                )
            new = _OLD_TURNS.get(turns, turns)
            warnings.warn(
                f"FIPOMiddleware(turns={turns!r}) is deprecated; use rewrite={new!r}",
                DeprecationWarning, stacklevel=2,
            )
            rewrite = new  # type: ignore[assignment]
        if rewrite is None:
            rewrite = "first_human"
        if rewrite not in REWRITE_POLICIES:
            raise ValueError(f"rewrite must be one of {REWRITE_POLICIES}, got {rewrite!r}")
        self.optimizer = optimizer
        self.rewrite: RewritePolicy = rewrite

    # ------------------------------------------------------------------ what is due
    def _due(self, state: FIPOState) -> list[tuple[str, str]]:
        """(message id, text) of the selected human messages without an up-to-date record."""
        records = state.get(STATE_KEY) or {}
        messages = state["messages"]
        due = []
        for m in (messages[i] for i in select_human(messages, self.rewrite)):
            text = message_text(m)
            # add_messages gives every state message an id; without one there is no key.
            if m.id is None or text is None:
                continue
            record = records.get(m.id)
            # A message edited in place (same id, new text) is optimized again.
            if record is None or record["naive_prompt"] != text:
                due.append((m.id, text))
        return due

    def before_model(self, state: FIPOState, runtime: Any) -> dict[str, Any] | None:
        due = self._due(state)
        if not due:
            return None
        return {STATE_KEY: {mid: rewrite_text(self.optimizer, text)[1] for mid, text in due}}

    async def abefore_model(self, state: FIPOState, runtime: Any) -> dict[str, Any] | None:
        due = self._due(state)
        if not due:
            return None
        records = {mid: (await arewrite_text(self.optimizer, text))[1] for mid, text in due}
        return {STATE_KEY: records}

    # ------------------------------------------------------------------ what the model sees
    @staticmethod
    def _apply(request: ModelRequest) -> ModelRequest:
        records = request.state.get(STATE_KEY) or {}
        if not records:
            return request
        messages: list[AnyMessage] = []
        for m in request.messages:
            record = records.get(m.id) if isinstance(m, HumanMessage) and m.id else None
            if record is not None and message_text(m) == record["naive_prompt"]:
                m = with_text(m, record["optimized_prompt"])
            messages.append(m)
        return request.override(messages=messages)

    def wrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], ModelResponse[Any]],
    ) -> ModelResult:
        return handler(self._apply(request))

    async def awrap_model_call(
        self,
        request: ModelRequest,
        handler: Callable[[ModelRequest], Awaitable[ModelResponse[Any]]],
    ) -> ModelResult:
        return await handler(self._apply(request))
