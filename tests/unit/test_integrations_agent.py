"""``FIPOMiddleware`` in a real LangChain v1 agent (``create_agent``): a scripted chat model
drives a tool-calling loop behind a deterministic optimizer, so the text actually changes. The
same loop with the real local SmolLM2 optimizer is in ``tests/integration``."""

from __future__ import annotations

from typing import Any

import pytest
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver

from fipo_middleware import FIPOOptimizer
from integrations import FIPOMiddleware
from tests.fakes import (
    RewriteTableLLM,
    ScriptedToolModel,
    assert_only_humans_changed,
    get_weather,
    human_texts,
    tool_round,
)

SYSTEM = "You are a weather assistant. Use the tools."
NAIVE = "what is the weather in paris"
REWRITE = (
    "Find the current weather in Paris and report the temperature and conditions in one sentence."
)
SECOND = "and in rome"
SECOND_REWRITE = "Find the current weather in Rome and report it in one sentence."


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


def test_instruction_changes_and_is_optimized_once(
    table_optimizer: FIPOOptimizer, count_optimize: list[str]
) -> None:
    model = ScriptedToolModel(messages=iter(tool_round("Paris", "call-1")))
    agent = create_agent(
        model, [get_weather], system_prompt=SYSTEM, middleware=[FIPOMiddleware(table_optimizer)]
    )
    out = agent.invoke({"messages": [{"role": "user", "content": NAIVE}]})

    assert [human_texts(sent) for sent in model.received] == [[REWRITE], [REWRITE]]
    assert_only_humans_changed(model.received[1], out["messages"][:3], SYSTEM)
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


