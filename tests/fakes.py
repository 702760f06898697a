"""Scripted stand-ins for control-flow tests (never proof that a feature works): every fake
model, backend, verifier and downstream the suite uses lives here, so a test file never grows
its own. Each feature is also exercised on the real SmolLM2 model in ``tests/integration``."""

from __future__ import annotations

import itertools
from typing import Any

from langchain_core.language_models import LLM, FakeListLLM, GenericFakeChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field


# ------------------------------------------------------------------ optimizer models (LLMs)
class RewriteTableLLM(LLM):
    """A deterministic optimizer model: answers the meta-prompt with the rewrite of whichever
    naive prompt it contains (the rewrites pass the guard)."""

    table: dict[str, str]

    @property
    def _llm_type(self) -> str:
        return "rewrite-table"

    def _call(
        self, prompt: str, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> str:
        return next((rw for naive, rw in self.table.items() if naive in prompt), "")


class SequenceLLM(LLM):
    """An optimizer model that answers successive calls with ``outputs`` in order (then "")."""

    outputs: list[str]
    calls: int = 0

    @property
    def _llm_type(self) -> str:
        return "sequence"

    def _call(
        self, prompt: str, stop: list[str] | None = None, run_manager: Any = None, **kwargs: Any
    ) -> str:
        self.calls += 1
        return self.outputs[self.calls - 1] if self.calls <= len(self.outputs) else ""


class FailingLLM(FakeListLLM):
    """An optimizer model whose server is down: every call raises ``ConnectionError``."""

    responses: list[str] = Field(default_factory=lambda: ["unused"])

    def _call(self, *args: Any, **kwargs: Any) -> str:
        raise ConnectionError("optimizer server down")


# ------------------------------------------------------------------ optimizer backend
class RecordingBackend:
    """An ``OptimizerBackend`` with scripted outputs that records the decoding settings of
    every call."""

    identity = "recording"
    context_length = None

    def __init__(self, *outputs: str) -> None:
        self.outputs: list[str] = list(outputs)
        self.params: list[Any] = []

    def count_tokens(self, prompt: Any) -> int:
        return 0

    def generate(self, prompt: Any, params: Any) -> str:
        self.params.append(params)
        return self.outputs[len(self.params) - 1]


# ------------------------------------------------------------------ downstream chat models
class ToolFakeChatModel(GenericFakeChatModel):
    """GenericFakeChatModel with a ``bind_tools`` (OpenAI tool format), so tool and
    structured-output pass-through can be exercised."""

    def bind_tools(self, tools: Any, *, tool_choice: Any = None, **kwargs: Any) -> Any:
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)


class RecordingChatModel(ToolFakeChatModel):
    """Scripted answers; remembers the messages and call kwargs it received."""

    calls: list[tuple[list[BaseMessage], dict[str, Any]]] = Field(default_factory=list)

    @property
    def received(self) -> list[list[BaseMessage]]:
        """The messages of every call, in order."""
        return [messages for messages, _ in self.calls]

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        self.calls.append((list(messages), dict(kw)))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kw)


def recording(*answers: AIMessage | str) -> RecordingChatModel:
    """A ``RecordingChatModel`` answering ``answers`` in a cycle (default: "ok")."""
    return RecordingChatModel(messages=itertools.cycle(answers or ["ok"]))


class ScriptedToolModel(RecordingChatModel):
    """Plays back AIMessages (tool calls, then an answer) in an agent loop and records what it
    was sent; ``bind_tools`` is a no-op (the script already holds the tool calls)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedToolModel:
        return self


@tool
def get_weather(city: str) -> str:
    """Current weather in a city."""
    return f"It is sunny and 21 C in {city}."


def tool_round(city: str, call_id: str) -> list[AIMessage]:
    """A ``ScriptedToolModel`` script for one agent turn: call ``get_weather``, then answer."""
    return [
        AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": call_id}]),
        AIMessage(f"It is sunny in {city}."),
    ]


# ------------------------------------------------------------------ verifier
class TableVerifier:
    """A verifier scoring candidates from a table (0.0 when absent); records every call."""

    def __init__(self, table: dict[str, float]) -> None:
        self.table = table
        self.calls: list[list[str]] = []

    def score(self, naive_prompt: str, candidates: list[str]) -> list[float]:
        self.calls.append(list(candidates))
        return [self.table.get(c, 0.0) for c in candidates]


# ------------------------------------------------------------------ evaluation downstream
class FailingAfter:
    """A real downstream that fails from its ``n``-th loglik call on (a model server going
    down)."""

    def __init__(self, inner: Any, n: int) -> None:
        self.inner, self.n, self.name, self.calls = inner, n, inner.name, 0
        self.supports_loglik = True

    @property
    def key(self) -> str:
        return self.inner.key

    def generate(self, prompt: str, max_tokens: int) -> str:
        raise AssertionError("not used for a loglik task")

    def loglik(self, prompt: str, continuations: list[str]) -> Any:
        if self.calls >= self.n:
            raise ConnectionError("downstream went away")
        self.calls += 1
        return self.inner.loglik(prompt, continuations)


# ---------------------------------------------------------------- shared assertions / files
def human_texts(messages: list[BaseMessage]) -> list[str]:
    return [m.text for m in messages if m.type == "human"]


def assert_only_humans_changed(sent: list[BaseMessage], state: list[BaseMessage],
                               system: str) -> None:
    """The model got the state's conversation (plus the system prompt), with only human
    message text replaced: AI and tool messages identical."""
    assert sent[0].type == "system" and sent[0].text == system
    assert len(sent) == len(state) + 1
    for got, orig in zip(sent[1:], state, strict=False):
        assert got.id == orig.id and got.type == orig.type
        if orig.type != "human":
            assert got == orig


def write_jsonl(path: Any, rows: list[dict[str, Any]]) -> str:
    """Rows to a JSONL file; returns its path as a string (what the CLIs and configs take)."""
    import json
    from pathlib import Path

    Path(path).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)
