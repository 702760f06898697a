"""``FIPOMiddleware`` in a real LangChain v1 agent (``create_agent``) with the real local
SmolLM2 optimizer (llama.cpp): a scripted chat model drives the tool-calling loop."""

from __future__ import annotations

from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, ToolMessage

from fipo_middleware import FIPOOptimizer
from integrations import FIPOMiddleware
from tests.fakes import (
    ScriptedToolModel,
    assert_only_humans_changed,
    get_weather,
    human_texts,
    tool_round,
)

SYSTEM = "You are a weather assistant. Use the tools."
NAIVE = "what is the weather in paris"


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
    assert_only_humans_changed(model.received[1], out["messages"][:3], SYSTEM)

    # The state keeps what the user wrote, and records both texts.
    assert out["messages"][0].text == NAIVE
    record = out["fipo_optimizations"][out["messages"][0].id]
    assert record["naive_prompt"] == NAIVE and record["optimized_prompt"] == expected
