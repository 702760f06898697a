"""Scripted LangChain models for control-flow tests (never proof that a feature works)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import LLM


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
