"""Rewrite one human message with a ``FIPOOptimizer``, shared by the chat model and the agent
middleware.

The optimizer's own ``invoke`` rewrites only the *last* human message of a list; both
integrations pick which messages to rewrite and record naive and optimized text, so they call
``FIPOOptimizer.rewrite`` (same fixed-part protection, plus the ``OptimizationResult``) on the
text of each selected message.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import BaseMessage

from fipo_middleware.errors import InvalidPromptError
from fipo_middleware.inputs import message_text, select_human, with_text
from fipo_middleware.optimizer import FIPOOptimizer, OptimizationResult


def _record(naive: str, optimized: str, result: OptimizationResult | None, why: str = "") -> dict:
    """One audit record. ``naive_prompt``/``optimized_prompt`` are the whole message texts
    (fixed segments included), i.e. exactly what the user wrote and what the model received."""
    if result is None:
        return {
            "naive_prompt": naive,
            "optimized_prompt": naive,
            "used_fallback": True,
            "fallback_reason": why,
            "guard_reasons": [],
            "cached": False,
            "latency_ms": 0.0,
            "model": "",
        }
    return {**result.to_dict(), "naive_prompt": naive, "optimized_prompt": optimized}


def rewrite_text(optimizer: FIPOOptimizer, text: str) -> tuple[str, dict]:
    """Optimize the instruction in ``text``; returns the new text and its audit record."""
    try:
        new, result = optimizer.rewrite(text)
    except InvalidPromptError as e:
        # Blank or all-fixed text has nothing to optimize: pass it through, say why.
        return text, _record(text, text, None, f"nothing_to_optimize: {e}")
    return new, _record(text, new, result)


async def arewrite_text(optimizer: FIPOOptimizer, text: str) -> tuple[str, dict]:
    try:
        new, result = await optimizer.arewrite(text)
    except InvalidPromptError as e:
        return text, _record(text, text, None, f"nothing_to_optimize: {e}")
    return new, _record(text, new, result)


def rewrite_messages(
    optimizer: FIPOOptimizer, messages: Sequence[BaseMessage], policy: str
) -> tuple[list[BaseMessage], list[dict]]:
    """Rewrite the human messages ``policy`` selects; returns the new list and one record per
    rewritten message (with its ``index`` in the list and ``message_id``)."""
    out = list(messages)
    records: list[dict] = []
    for i in select_human(out, policy):
        text = message_text(out[i])
        if text is None:
            continue
        new, record = rewrite_text(optimizer, text)
        out[i] = with_text(out[i], new)
        records.append({"index": i, "message_id": out[i].id, **record})
    return out, records


async def arewrite_messages(
    optimizer: FIPOOptimizer, messages: Sequence[BaseMessage], policy: str
) -> tuple[list[BaseMessage], list[dict]]:
    out = list(messages)
    records: list[dict] = []
    for i in select_human(out, policy):
        text = message_text(out[i])
        if text is None:
            continue
        new, record = await arewrite_text(optimizer, text)
        out[i] = with_text(out[i], new)
        records.append({"index": i, "message_id": out[i].id, **record})
    return out, records
