"""``FIPOChatModel`` behaviour beyond the standard suites, with a deterministic optimizer and a
recording chat model: which messages are rewritten, what is recorded, and that tools,
structured output, streaming and callbacks pass through. The real local models wrapped end
to end are in ``tests/integration/test_integrations_chat_model.py``."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.runnables import RunnableBinding
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel

from fipo_middleware import FIPOOptimizer
from integrations import METADATA_KEY, FIPOChatModel
from tests.fakes import RewriteTableLLM, recording

PARIS = "tell me about paris"
PARIS_REWRITE = (
    "Describe the history, culture and main landmarks of Paris in three short paragraphs."
)
WEATHER = "what is the weather in paris"
WEATHER_REWRITE = (
    "Find the current weather in Paris and report the temperature and conditions in one sentence."
)


def table_optimizer() -> FIPOOptimizer:
    return FIPOOptimizer.from_llm(
        RewriteTableLLM(table={PARIS: PARIS_REWRITE, WEATHER: WEATHER_REWRITE})
    )


CONVERSATION = [
    SystemMessage("You are a travel guide."),
    HumanMessage(PARIS),
    AIMessage("Paris is the capital of France."),
    HumanMessage(WEATHER),
]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("last_human", [PARIS, WEATHER_REWRITE]),
        ("first_human", [PARIS_REWRITE, WEATHER]),
        ("all_human", [PARIS_REWRITE, WEATHER_REWRITE]),
    ],
)
def test_rewrite_policy_selects_human_messages(policy: str, expected: list[str]) -> None:
    inner = recording("Sunny.")
    chat = FIPOChatModel(optimizer=table_optimizer(), model=inner, rewrite=policy)
    answer = chat.invoke(CONVERSATION)

    received, _ = inner.calls[0]
    assert [m.content for m in received if m.type == "human"] == expected
    # System and AI messages reach the model exactly as given.
    assert received[0] == CONVERSATION[0]
    assert received[2] == CONVERSATION[2]
    assert answer.content == "Sunny."
    records = answer.response_metadata[METADATA_KEY]
    assert [r["optimized_prompt"] for r in records] == [
        e for e, n in zip(expected, [PARIS, WEATHER], strict=True) if e != n
    ]
    assert all(r["fallback_reason"] is None for r in records)


def test_default_rewrites_only_the_last_human_message() -> None:
    chat = FIPOChatModel(optimizer=table_optimizer(), model=recording())
    assert chat.rewrite == "last_human"
    [record] = chat.invoke(PARIS).response_metadata[METADATA_KEY]
    assert record["naive_prompt"] == PARIS
    assert record["optimized_prompt"] == PARIS_REWRITE
    assert record["message_id"] is None and record["index"] == 0


def test_fixed_segments_pass_through_byte_for_byte() -> None:
    inner = recording()
    chat = FIPOChatModel(optimizer=table_optimizer(), model=inner)
    code = "```python\nprint('x')\n```"
    chat.invoke(f"{PARIS}\n\n{code}")
    sent = inner.calls[0][0][-1].content
    assert sent.startswith(PARIS_REWRITE)
    assert sent.endswith(code)


def test_multimodal_message_keeps_non_text_blocks() -> None:
    inner = recording()
    chat = FIPOChatModel(optimizer=table_optimizer(), model=inner)
    image = {"type": "image", "url": "https://example.com/paris.png"}
    chat.invoke([HumanMessage([{"type": "text", "text": PARIS}, image])])
    content = inner.calls[0][0][-1].content
    assert content == [{"type": "text", "text": PARIS_REWRITE}, image]


def test_tool_calls_and_usage_metadata_come_back_untouched() -> None:
    tool_call = {"name": "get_weather", "args": {"city": "Paris"}, "id": "call-1"}
    usage = {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    scripted = AIMessage("", tool_calls=[tool_call], usage_metadata=usage)
    inner = recording(scripted)
    chat = FIPOChatModel(optimizer=table_optimizer(), model=inner)

    def get_weather(city: str) -> str:
        """Weather in a city."""
        return "sunny"

    bound = chat.bind_tools([get_weather], tool_choice="get_weather")
    assert isinstance(bound, RunnableBinding) and bound.bound is chat
    answer = bound.invoke(WEATHER)

    received, kwargs = inner.calls[0]
    assert received[-1].content == WEATHER_REWRITE
    # The wrapped model's own bind_tools formatted the tools; they arrive unchanged.
    assert kwargs["tools"] == [convert_to_openai_tool(get_weather)]
    assert kwargs["tool_choice"] == "get_weather"
    assert answer.tool_calls == [{**tool_call, "type": "tool_call"}]
    assert answer.usage_metadata == usage


class Forecast(BaseModel):
    """A weather forecast."""

    city: str
    summary: str


def test_with_structured_output_uses_the_wrapped_models_implementation() -> None:
    call = {"name": "Forecast", "args": {"city": "Paris", "summary": "sunny"}, "id": "c1"}
    inner = recording(AIMessage("", tool_calls=[call]))
    chat = FIPOChatModel(optimizer=table_optimizer(), model=inner)
    result = chat.with_structured_output(Forecast).invoke(WEATHER)
    assert result == Forecast(city="Paris", summary="sunny")
    received, kwargs = inner.calls[0]
    assert received[-1].content == WEATHER_REWRITE
    assert kwargs["tools"][0]["function"]["name"] == "Forecast"


def test_stream_and_astream_delegate_and_record_once() -> None:
    inner = recording("It is sunny in Paris today.")
    chat = FIPOChatModel(optimizer=table_optimizer(), model=inner)
    chunks = list(chat.stream(WEATHER))
    assert len(chunks) > 2  # the fake splits on words: real chunks, not one message
    full = chunks[0]
    for c in chunks[1:]:
        full += c
    assert full.content == "It is sunny in Paris today."
    assert [c for c in chunks if METADATA_KEY in c.response_metadata] == chunks[:1]
    assert full.response_metadata[METADATA_KEY][0]["optimized_prompt"] == WEATHER_REWRITE
    assert chunks[-1].chunk_position == "last"


async def test_async_invoke_and_astream() -> None:
    inner = recording("It is sunny.")
    chat = FIPOChatModel(optimizer=table_optimizer(), model=inner)
    answer = await chat.ainvoke(PARIS)
    assert answer.response_metadata[METADATA_KEY][0]["optimized_prompt"] == PARIS_REWRITE
    text = "".join([c.text async for c in chat.astream(WEATHER)])
    assert text == "It is sunny."
    assert [m[-1].content for m, _ in inner.calls] == [PARIS_REWRITE, WEATHER_REWRITE]


class RunRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.starts: list[dict[str, Any]] = []
        self.events: list[tuple[str, Any]] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: UUID,
                            parent_run_id: UUID | None = None, tags: Any = None,
                            **kwargs: Any) -> None:
        self.starts.append({"run_id": run_id, "parent": parent_run_id, "tags": tags or [],
                            "human": messages[0][-1].content})

    def on_custom_event(self, name: str, data: Any, **kwargs: Any) -> None:
        self.events.append((name, data))


def test_wrapped_model_run_nests_under_ours_and_event_is_dispatched() -> None:
    recorder = RunRecorder()
    chat = FIPOChatModel(optimizer=table_optimizer(), model=recording())
    chat.invoke(PARIS, config={"callbacks": [recorder]})
    outer, inner = recorder.starts
    assert outer["human"] == PARIS and inner["human"] == PARIS_REWRITE
    assert inner["parent"] == outer["run_id"]
    # LangGraph's stream_mode="messages" would otherwise stream every token twice.
    assert "nostream" in inner["tags"] and "nostream" not in outer["tags"]
    [(name, data)] = recorder.events
    assert name == "fipo_optimization" and data["optimized_prompt"] == PARIS_REWRITE


def test_blank_human_message_passes_through() -> None:
    inner = recording()
    chat = FIPOChatModel(optimizer=table_optimizer(), model=inner)
    [record] = chat.invoke([HumanMessage("   ")]).response_metadata[METADATA_KEY]
    assert inner.calls[0][0][-1].content == "   "
    assert record["fallback_reason"].startswith("nothing_to_optimize")
