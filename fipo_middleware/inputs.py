"""Input adapters: every input type fipo accepts, taken apart into the instruction to optimize
and a way to put the optimized instruction back in the caller's type.

One module for the Runnable (``FIPOOptimizer.invoke``/``rewrite``) and the integrations
(``FIPOChatModel``, ``FIPOMiddleware``), so a message is read and rebuilt the same way
everywhere: the instruction of a message is its text, or the first text block of multimodal
content (images and other blocks are kept as they are).

| input | output |
| --- | --- |
| ``str`` | ``str`` |
| ``dict``: ``prompt``, optional ``silver_response``, ``golden_response``, ``prefix``,
  ``suffix``, ``max_words`` | ``str`` (``prefix + optimized + suffix``) |
| ``StringPromptValue`` / ``ChatPromptValue`` | same type; only the last human message changes |
| ``list[BaseMessage]`` | ``list[BaseMessage]``; system, AI and tool messages untouched |
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.prompt_values import ChatPromptValue, PromptValue, StringPromptValue

from fipo_middleware.errors import UnsupportedInputError
from fipo_middleware.segments import SplitPrompt

DICT_KEYS = frozenset({"prompt", "silver_response", "golden_response", "prefix", "suffix",
                       "max_words"})
RewritePolicy = Literal["last_human", "first_human", "all_human"]
REWRITE_POLICIES: tuple[str, ...] = ("last_human", "first_human", "all_human")


@dataclass
class Job:
    """An input taken apart: what to optimize, and how to put the answer back in the caller's
    type."""

    split: SplitPrompt
    silver: str | None
    golden: str | None
    max_words: int | None
    rebuild: Callable[[str], Any]


# ---------------------------------------------------------------------------- messages
def _text_block_index(content: list[Any]) -> int | None:
    for i, block in enumerate(content):
        if isinstance(block, str) or (isinstance(block, dict) and block.get("type") == "text"):
            return i
    return None


def message_text(message: BaseMessage) -> str | None:
    """The instruction text of a message (its first text block), or None when it has none."""
    content = message.content
    if isinstance(content, str):
        return content
    i = _text_block_index(list(content))
    if i is None:
        return None
    block = content[i]
    return block if isinstance(block, str) else str(block.get("text", ""))


def with_text(message: BaseMessage, text: str) -> BaseMessage:
    """A copy of ``message`` (same id, name, metadata) whose instruction text is ``text``;
    other content blocks (images, files...) are kept as they are."""
    content = message.content
    if isinstance(content, str):
        return message.model_copy(update={"content": text})
    blocks = list(content)
    i = _text_block_index(blocks)
    if i is None:
        return message
    block = blocks[i]
    blocks[i] = text if isinstance(block, str) else {**block, "text": text}
    return message.model_copy(update={"content": blocks})


def select_human(messages: Sequence[BaseMessage], policy: str) -> list[int]:
    """Indices of the human messages ``policy`` rewrites; never system, AI or tool messages."""
    humans = [i for i, m in enumerate(messages) if isinstance(m, HumanMessage)]
    if not humans:
        return []
    if policy == "last_human":
        return [humans[-1]]
    if policy == "first_human":
        return [humans[0]]
    if policy == "all_human":
        return humans
    raise ValueError(f"unknown rewrite policy {policy!r}; expected one of {REWRITE_POLICIES}")


# ---------------------------------------------------------------------------- jobs
def _messages_job(messages: list[BaseMessage], split: Callable[[str], SplitPrompt]) -> Job:
    picked = select_human(messages, "last_human")
    if not picked:
        raise UnsupportedInputError("the message list has no human message to optimize")
    i = picked[0]
    text = message_text(messages[i])
    if text is None:
        raise UnsupportedInputError("the last human message has no text to optimize")
    parts = split(text)

    def put_back(opt: str) -> list[BaseMessage]:
        return [*messages[:i], with_text(messages[i], parts.rebuild(opt)), *messages[i + 1:]]

    return Job(parts, None, None, None, put_back)


def _dict_job(value: dict[str, Any], split: Callable[[str], SplitPrompt]) -> Job:
    if "prompt" not in value:
        raise UnsupportedInputError(
            "a dict input needs a 'prompt' key (optional: silver_response, "
            f"golden_response, prefix, suffix, max_words); got keys {sorted(value)}"
        )
    unknown = set(value) - DICT_KEYS
    if unknown:
        raise UnsupportedInputError(
            f"unknown key(s) {sorted(unknown)} in dict input; allowed: {sorted(DICT_KEYS)}"
        )
    for k in ("prompt", "silver_response", "golden_response", "prefix", "suffix"):
        if value.get(k) is not None and not isinstance(value[k], str):
            raise UnsupportedInputError(
                f"dict input field {k!r} must be a string, got {type(value[k]).__name__}"
            )
    parts = split(value["prompt"])
    prefix, suffix = value.get("prefix") or "", value.get("suffix") or ""
    return Job(parts, value.get("silver_response"), value.get("golden_response"),
               value.get("max_words"), lambda opt: prefix + parts.rebuild(opt) + suffix)


def to_job(value: Any, split: Callable[[str], SplitPrompt]) -> Job:
    """Take ``value`` apart; ``split`` separates the instruction from its fixed parts."""
    if isinstance(value, str):
        parts = split(value)
        return Job(parts, None, None, None, parts.rebuild)
    if isinstance(value, dict):
        return _dict_job(value, split)
    if isinstance(value, StringPromptValue):
        parts = split(value.text)
        return Job(parts, None, None, None, lambda o: StringPromptValue(text=parts.rebuild(o)))
    if isinstance(value, ChatPromptValue):
        inner = _messages_job(list(value.messages), split)
        return replace(inner, rebuild=lambda o: ChatPromptValue(messages=inner.rebuild(o)))
    if isinstance(value, PromptValue):
        return _messages_job(value.to_messages(), split)
    if isinstance(value, list) and value and all(isinstance(m, BaseMessage) for m in value):
        return _messages_job(value, split)
    raise UnsupportedInputError(
        "FIPOOptimizer accepts str, dict (with 'prompt'), PromptValue or a list of messages; "
        f"got {type(value).__name__}"
    )
