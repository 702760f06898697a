"""``FIPOMiddleware`` in a real LangChain v1 agent (``create_agent``): a scripted chat model
drives a tool-calling loop; the optimizer is the real local SmolLM2 one, and a deterministic
one where the test needs the text to actually change."""

from __future__ import annotations

from typing import Any

import pytest
from fakes import RewriteTableLLM
from langchain.agents import create_agent
from langchain_core.language_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from pydantic import Field

from fipo_middleware import FIPOOptimizer
from integrations import FIPOMiddleware

SYSTEM = "You are a weather assistant. Use the tools."
NAIVE = "what is the weather in paris"
REWRITE = (
    "Find the current weather in Paris and report the temperature and conditions in one sentence."
)
SECOND = "and in rome"
SECOND_REWRITE = "Find the current weather in Rome and report it in one sentence."


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"It is sunny and 21 C in {city}."


class ScriptedToolModel(GenericFakeChatModel):
    """Plays back AIMessages (tool calls, then an answer) and records what it was sent."""

    received: list[list[BaseMessage]] = Field(default_factory=list)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.received.append(list(messages))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kw)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedToolModel:
        return self


def tool_round(city: str, call_id: str) -> list[AIMessage]:
    return [
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": call_id}]),
        AIMessage(f"It is sunny in {city}."),
    ]




@pytest.fixture
def table_optimizer() -> FIPOOptimizer:
    return FIPOOptimizer.from_llm(RewriteTableLLM(table={NAIVE: REWRITE, SECOND: SECOND_REWRITE}))


@pytest.fixture
def count_optimize(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Naive prompts optimized, in order. ``aoptimize`` runs ``optimize`` off the event loop,
    so patching ``optimize`` alone counts sync and async calls once each."""
    seen: list[str] = []
    sync = FIPOOptimizer.optimize

    def optimize(self: FIPOOptimizer, naive: str, *a: Any, **k: Any) -> Any:
        seen.append(naive)
        return sync(self, naive, *a, **k)

    monkeypatch.setattr(FIPOOptimizer, "optimize", optimize)
    return seen


def human_texts(messages: list[BaseMessage]) -> list[str]:
    return [m.text for m in messages if m.type == "human"]


def assert_only_humans_changed(sent: list[BaseMessage], state: list[BaseMessage]) -> None:
    """The model got the state's conversation (plus the system prompt), with only human
    message text replaced: AI and tool messages identical."""
    assert sent[0].type == "system" and sent[0].text == SYSTEM
    assert len(sent) == len(state) + 1
    for got, orig in zip(sent[1:], state, strict=False):
        assert got.id == orig.id and got.type == orig.type
        if orig.type != "human":
            assert got == orig


def test_agent_tool_loop_with_real_optimizer(base_optimizer: FIPOOptimizer) -> None:
    model = ScriptedToolModel(messages=iter(tool_round("Paris", "call-1")))
    agent = create_agent(
        model, [get_weather], system_prompt=SYSTEM, middleware=[FIPOMiddleware(base_optimizer)]
    )
    out = agent.invoke({"messages": [HumanMessage(NAIVE)]})

    # The loop ran: tool call -> tool result -> final answer.
    assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "ai"]
    assert isinstance(out["messages"][2], ToolMessage) and "sunny" in out["messages"][2].text
    assert out["messages"][-1].text == "It is sunny in Paris."

    # Both model calls received the optimizer's output for the instruction (cached and
    # deterministic; the untuned base model may well have fallen back to the naive prompt).
    expected = base_optimizer.optimize(NAIVE).optimized_prompt
    assert len(model.received) == 2
    for sent in model.received:
        assert human_texts(sent) == [expected]
    assert_only_humans_changed(model.received[1], out["messages"][:3])

    # The state keeps what the user wrote, and records both texts.
    assert out["messages"][0].text == NAIVE
    record = out["fipo_optimizations"][out["messages"][0].id]
    assert record["naive_prompt"] == NAIVE and record["optimized_prompt"] == expected


def test_instruction_changes_and_is_optimized_once(
    table_optimizer: FIPOOptimizer, count_optimize: list[str]
) -> None:
    model = ScriptedToolModel(messages=iter(tool_round("Paris", "call-1")))
    agent = create_agent(
        model, [get_weather], system_prompt=SYSTEM, middleware=[FIPOMiddleware(table_optimizer)]
    )
    out = agent.invoke({"messages": [{"role": "user", "content": NAIVE}]})

    assert [human_texts(sent) for sent in model.received] == [[REWRITE], [REWRITE]]
    assert_only_humans_changed(model.received[1], out["messages"][:3])
    assert count_optimize == [NAIVE]  # two model calls, one optimization
    [record] = out["fipo_optimizations"].values()
    assert record["optimized_prompt"] == REWRITE and record["used_fallback"] is False


@pytest.mark.parametrize(
    ("turns", "second_turn_sent", "optimized"),
    [
        ("first", [REWRITE, SECOND], [NAIVE]),
        ("all", [REWRITE, SECOND_REWRITE], [NAIVE, SECOND]),
    ],
)
def test_turns_across_a_checkpointed_thread(
    table_optimizer: FIPOOptimizer,
    count_optimize: list[str],
    turns: str,
    second_turn_sent: list[str],
    optimized: list[str],
) -> None:
    model = ScriptedToolModel(
        messages=iter([*tool_round("Paris", "call-1"), *tool_round("Rome", "call-2")])
    )
    agent = create_agent(
        model,
        [get_weather],
        system_prompt=SYSTEM,
        middleware=[FIPOMiddleware(table_optimizer, turns=turns)],  # type: ignore[arg-type]
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": f"t-{turns}"}}
    agent.invoke({"messages": [HumanMessage(NAIVE)]}, config)
    out = agent.invoke({"messages": [HumanMessage(SECOND)]}, config)

    assert len(model.received) == 4
    assert human_texts(model.received[-1]) == second_turn_sent
    assert count_optimize == optimized  # each message once, over both turns
    assert human_texts(out["messages"]) == [NAIVE, SECOND]  # the state keeps the naive text
    assert sorted(r["naive_prompt"] for r in out["fipo_optimizations"].values()) == sorted(
        optimized
    )


async def test_async_agent(table_optimizer: FIPOOptimizer, count_optimize: list[str]) -> None:
    model = ScriptedToolModel(messages=iter(tool_round("Paris", "call-1")))
    agent = create_agent(
        model, [get_weather], system_prompt=SYSTEM, middleware=[FIPOMiddleware(table_optimizer)]
    )
    out = await agent.ainvoke({"messages": [HumanMessage(NAIVE)]})
    assert [human_texts(sent) for sent in model.received] == [[REWRITE], [REWRITE]]
    assert count_optimize == [NAIVE]
    assert out["messages"][-1].text == "It is sunny in Paris."


def test_bad_turns_value() -> None:
    with pytest.raises(ValueError, match="turns"):
        FIPOMiddleware(FIPOOptimizer.from_llm(RewriteTableLLM(table={})), turns="some")  # type: ignore[arg-type]


