"""POP: the prompt-optimization preference dataset, as validated JSONL.

One record per line (all strings UTF-8):

| field | type | meaning |
| --- | --- | --- |
| ``id`` | str | unique within a file |
| ``naive_prompt`` | str | the instruction as a user wrote it |
| ``silver_response`` | str or null | a weak model's response to the naive prompt |
| ``golden_response`` | str or null | the ground-truth / strong model's response |
| ``chosen`` | str | the preferred optimized prompt (concise, faithful, instructive) |
| ``rejected`` | str or null | a dispreferred optimized prompt (a realistic failure) |
| ``task_kind`` | ``"generation"`` or ``"multiple_choice"`` | |
| ``options`` | list[str] | answer options (multiple choice), kept verbatim by rewrites |
| ``source`` | str | where it came from (``seed``, ``teacher``, ``bpo``, ``built``, ``mined``) |
| ``metadata`` | dict | category, ``failure`` (see below), split... |

``metadata.failure`` says what is wrong with ``rejected``, in the one vocabulary
``FAILURE_KINDS`` (comma-joined when several).

Seed naive prompts (input of ``fipo pop build``) are JSONL too: ``id`` (optional, defaults to
the line number), ``prompt`` (or ``naive_prompt``), optional ``reference`` (or
``golden_response``: a reference answer, used as the golden response instead of asking the
teacher), optional ``options`` and ``task_kind``. See :class:`SeedPrompt`.

Pure module (pydantic only).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fipo_middleware.errors import DataFormatError
from fipo_middleware.jsonl import append_jsonl, done_ids, iter_jsonl, write_jsonl_atomic

TaskKind = Literal["generation", "multiple_choice"]

FAILURE_KINDS = frozenset({
    # the guard's reasons (``fipo_middleware.guard.check_rewrite``), used by mined records
    "empty", "over_budget", "template_leak", "meta_chatter", "dropped_numbers", "dropped_quotes",
    "dropped_options", "invented_material", "changed_task", "negated_task", "answers_task",
    # failures only a reader sees (the judging rubric's classes), used by hand-written records
    "dropped_input", "dropped_requirement", "added_length_cap", "added_format",
    "damaged_wording", "changed_language", "padding",
})
"""The one vocabulary for ``metadata.failure``, shared by the guard, the seed and teacher POP,
mining and the judge."""


class POPRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    naive_prompt: str = Field(min_length=1)
    silver_response: str | None = None
    golden_response: str | None = None
    chosen: str = Field(min_length=1)
    rejected: str | None = None
    task_kind: TaskKind = "generation"
    options: list[str] = Field(default_factory=list)
    source: str = "seed"
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("naive_prompt", "chosen")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


def _describe(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "<record>"
        parts.append(f"field {loc!r}: {e['msg']}")
    return "; ".join(parts)


def iter_pop(path: str | os.PathLike[str]) -> Iterator[POPRecord]:
    """Yield validated records; a bad line raises ``DataFormatError`` naming file:line."""
    seen: set[str] = set()
    for lineno, data in iter_jsonl(path, "POP"):
        try:
            record = POPRecord.model_validate(data)
        except ValidationError as e:
            raise DataFormatError(f"{path}:{lineno}: {_describe(e)}") from None
        if record.id in seen:
            raise DataFormatError(f"{path}:{lineno}: duplicate id {record.id!r}")
        seen.add(record.id)
        yield record


class SeedPrompt(BaseModel):
    """One naive prompt to build a POP record from."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(min_length=1)
    prompt: str = Field(min_length=1)
    reference: str | None = None
    options: list[str] = Field(default_factory=list)
    task_kind: TaskKind = "generation"

    @field_validator("prompt")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v


def load_seed_prompts(path: str | os.PathLike[str]) -> list[SeedPrompt]:
    """Seed naive prompts; accepts ``naive_prompt`` for ``prompt`` and ``golden_response`` for
    ``reference`` so a POP file doubles as a seed file."""
    out: list[SeedPrompt] = []
    seen: set[str] = set()
    for lineno, data in iter_jsonl(path, "seed"):
        row = dict(data)
        row.setdefault("id", str(lineno))
        row["id"] = str(row["id"])
        if "prompt" not in row and "naive_prompt" in row:
            row["prompt"] = row["naive_prompt"]
        if row.get("reference") is None and row.get("golden_response"):
            row["reference"] = row["golden_response"]
        try:
            seed = SeedPrompt.model_validate(row)
        except ValidationError as e:
            raise DataFormatError(f"{path}:{lineno}: {_describe(e)}") from None
        if seed.id in seen:
            raise DataFormatError(f"{path}:{lineno}: duplicate id {seed.id!r}")
        seen.add(seed.id)
        out.append(seed)
    return out


def load_pop(*paths: str | os.PathLike[str]) -> list[POPRecord]:
    out: list[POPRecord] = []
    for path in paths:
        out.extend(iter_pop(path))
    return out


def append_form(records: Iterable[POPRecord]) -> tuple[list[POPRecord], dict[str, int]]:
    """Records whose chosen prompt is the naive prompt verbatim plus the teacher's guidance, the
    form append mode serves, and a count of the records left out, by reason.

    Teacher records say what they are in ``metadata.edit``: a ``keep`` or ``minimal_fix`` becomes
    the naive prompt itself (append mode never edits the user's words), an ``append`` or
    ``rewrite`` that its judge preferred to the naive prompt becomes naive + ``metadata.guidance``.
    A rewrite with no guidance, or one that did not win, has nothing verbatim-safe to teach."""
    from fipo_middleware.complement import join_guidance

    kept: list[POPRecord] = []
    skipped: dict[str, int] = {}
    for rec in records:
        edit = rec.metadata.get("edit")
        judged = rec.metadata.get("judged") or {}
        guidance = str(rec.metadata.get("guidance") or "").strip()
        if edit in ("keep", "minimal_fix"):
            chosen = rec.naive_prompt
        elif edit in ("append", "rewrite") and guidance and judged.get("chosen_vs_naive") == "win":
            chosen = join_guidance(rec.naive_prompt, guidance)
        else:
            reason = ("no_edit" if edit is None else "no_guidance" if not guidance
                      else "not_a_win")
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        if chosen == rec.rejected:
            skipped["chosen_is_rejected"] = skipped.get("chosen_is_rejected", 0) + 1
            continue
        kept.append(rec.model_copy(update={
            "chosen": chosen, "metadata": {**rec.metadata, "chosen_form": "append"}}))
    return kept, skipped


def save_pop(path: str | os.PathLike[str], records: Iterable[POPRecord]) -> int:
    return write_jsonl_atomic(path, (r.model_dump() for r in records))


__all__ = [
    "POPRecord",
    "TaskKind",
    "append_form",
    "append_jsonl",
    "done_ids",
    "iter_pop",
    "load_pop",
    "save_pop",
    "write_jsonl_atomic",
]
