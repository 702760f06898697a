"""Tasks as data: BIG-bench ``task.json`` files and a plain JSONL format, read by path.

A task is a list of examples, each with an instruction (what the optimizer rewrites), an input
and, for multiple choice, options (both kept byte for byte), plus the target. The naive prompt
is ``instruction + "\\n\\n" + input [+ "\\n\\nOptions:\\n" + labelled options]``.

BIG-bench (``examples[].input`` + ``target_scores`` or ``target``):

- the instruction is the task-level ``task_prefix``; a task without one gets a generic
  instruction (:data:`GENERIC_MC_INSTRUCTION` / :data:`GENERIC_GEN_INSTRUCTION`), never one
  written for that task, so no task is tuned by hand (``instruction_source="description"`` uses
  the task's own ``description`` instead);
- ``example_input_prefix`` (e.g. ``"\\nStatement: "``) is kept in front of the input, stripped;
- ``target_scores``/``target`` may be real dicts/lists or strings holding Python literals.

JSONL, one example per line: ``instruction`` (str), ``input`` (str, may be empty), ``options``
(list of str, empty or absent for generation), ``target`` (MC: one of the options or its index;
generation: a string or a list of accepted strings), optional ``id``.

Options are shown in a seeded random order (BIG-bench often lists the right answer first, which
would reward a letter-"A" bias), labelled A, B, C...
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError
from fipo_middleware.jsonl import iter_jsonl

GENERIC_MC_INSTRUCTION = "Answer the following question by choosing one of the options."
GENERIC_GEN_INSTRUCTION = "Answer the following question."
LABELS = string.ascii_uppercase
LETTER_SUFFIX = "\n\nAnswer with the letter of the correct option."
"""Fixed answer-format line the letter scorer appends (never optimized, same for every
optimizer), as in the paper's first-letter evaluation."""


@dataclass(frozen=True)
class Example:
    """One task example. ``options`` are in display order; ``correct`` indexes into them."""

    id: str
    instruction: str
    input: str
    options: tuple[str, ...] = ()
    correct: tuple[int, ...] = ()
    targets: tuple[str, ...] = ()

    @property
    def is_mc(self) -> bool:
        return bool(self.options)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(LABELS[i] for i in range(len(self.options)))

    def options_block(self) -> str:
        return "Options:\n" + "\n".join(
            f"{lab}) {opt}" for lab, opt in zip(self.labels, self.options, strict=True)
        )

    def fixed_part(self) -> str:
        """Everything after the instruction: input and options, byte for byte."""
        parts = [p for p in (self.input, self.options_block() if self.is_mc else "") if p]
        return "".join("\n\n" + p for p in parts)

    def prompt(self, instruction: str | None = None) -> str:
        """The prompt with ``instruction`` (default: the naive one) in front of the fixed part."""
        return (self.instruction if instruction is None else instruction) + self.fixed_part()


@dataclass(frozen=True)
class Task:
    name: str
    path: str
    kind: str  # "multiple_choice" | "generation"
    examples: tuple[Example, ...]
    instruction_level: str = "task"  # "task": one shared instruction; "example": per example
    metadata: dict[str, Any] = field(default_factory=dict)


def _literal(value: Any, where: str, fld: str, want: type | tuple[type, ...]) -> Any:
    """Accept a real value or a string holding a Python/JSON literal of the wanted type."""
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise DataFormatError(
                f"{where}: field {fld!r} is a string that is not a Python literal: {value[:80]!r}"
            ) from None
    if not isinstance(value, want):
        names = want.__name__ if isinstance(want, type) else "/".join(t.__name__ for t in want)
        raise DataFormatError(
            f"{where}: field {fld!r} must be a {names}, got {type(value).__name__}"
        )
    return value


def _shuffled(options: list[str], key: str, seed: int) -> list[int]:
    """A permutation of option indices, stable for (seed, task, example id)."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    order = list(range(len(options)))
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def _mc_example(
    ex_id: str, instruction: str, text: str, options: list[str], correct: set[int],
    key: str, seed: int,
) -> Example:
    order = _shuffled(options, key, seed)
    shown = tuple(options[i] for i in order)
    return Example(
        id=ex_id,
        instruction=instruction,
        input=text,
        options=shown,
        correct=tuple(pos for pos, i in enumerate(order) if i in correct),
    )


def _gen_targets(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip()[:1] in ("[", "("):
        # A stringified list ("['three', '3']"); a plain string target stays as it is.
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            pass
    if isinstance(value, str | int | float):
        return (str(value),)
    if isinstance(value, list | tuple) and value and all(
        isinstance(v, str | int | float) for v in value
    ):
        return tuple(str(v) for v in value)
    raise DataFormatError(
        f"{where}: field 'target' must be a string or a non-empty list of strings"
    )


def load_bigbench(path: Path, *, seed: int = 0, instruction_source: str = "generic") -> Task:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{path}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object with field 'examples'")
    examples = data.get("examples")
    if not isinstance(examples, list) or not examples:
        raise DataFormatError(f"{path}: field 'examples' is missing or not a non-empty list")
    name = path.stem
    is_mc = any(isinstance(e, dict) and "target_scores" in e for e in examples)
    prefix = data.get("task_prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise DataFormatError(f"{path}: field 'task_prefix' must be a string")
    instruction = (prefix or "").strip()
    derived = not instruction
    if derived:
        desc = data.get("description")
        if instruction_source == "description" and isinstance(desc, str) and desc.strip():
            instruction = desc.strip().rstrip(".") + "."
        else:
            instruction = GENERIC_MC_INSTRUCTION if is_mc else GENERIC_GEN_INSTRUCTION
    in_prefix = data.get("example_input_prefix") or ""
    in_prefix = in_prefix.strip() + " " if isinstance(in_prefix, str) and in_prefix.strip() else ""
    out: list[Example] = []
    for i, ex in enumerate(examples):
        where = f"{path}: examples[{i}]"
        if not isinstance(ex, dict):
            raise DataFormatError(f"{where}: expected an object")
        text = ex.get("input")
        if not isinstance(text, str):
            raise DataFormatError(f"{where}: field 'input' is missing or not a string")
        ex_id = str(ex.get("id", i))
        text = in_prefix + text.strip()
        if is_mc:
            if "target_scores" not in ex:
                raise DataFormatError(f"{where}: field 'target_scores' is missing")
            scores = _literal(ex["target_scores"], where, "target_scores", dict)
            if len(scores) < 2 or not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in scores.values()
            ):
                raise DataFormatError(
                    f"{where}: field 'target_scores' must map at least two options to numbers"
                )
            options = [str(k) for k in scores]
            best = max(scores.values())
            correct = {j for j, v in enumerate(scores.values()) if v == best}
            out.append(
                _mc_example(ex_id, instruction, text, options, correct, f"{name}:{ex_id}", seed)
            )
        else:
            if "target" not in ex:
                raise DataFormatError(f"{where}: field 'target' is missing")
            out.append(
                Example(id=ex_id, instruction=instruction, input=text,
                        targets=_gen_targets(ex["target"], where))
            )
    return Task(
        name=name,
        path=str(path),
        kind="multiple_choice" if is_mc else "generation",
        examples=tuple(out),
        instruction_level="task",
        metadata={"instruction_derived": derived, "source": "bigbench"},
    )


def load_jsonl(path: Path, *, seed: int = 0) -> Task:
    out: list[Example] = []
    kinds: set[str] = set()
    for lineno, row in iter_jsonl(path, "task"):
        where = f"{path}:{lineno}"
        instruction = row.get("instruction")
        if not isinstance(instruction, str) or not instruction.strip():
            raise DataFormatError(f"{where}: field 'instruction' is missing or empty")
        text = row.get("input", "")
        if not isinstance(text, str):
            raise DataFormatError(f"{where}: field 'input' must be a string")
        if "target" not in row:
            raise DataFormatError(f"{where}: field 'target' is missing")
        ex_id = str(row.get("id", lineno))
        options = row.get("options") or []
        if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
            raise DataFormatError(f"{where}: field 'options' must be a list of strings")
        if options:
            if len(options) < 2 or len(options) > len(LABELS):
                raise DataFormatError(f"{where}: field 'options' needs 2 to 26 entries")
            target = row["target"]
            if isinstance(target, int) and not isinstance(target, bool):
                if not 0 <= target < len(options):
                    raise DataFormatError(f"{where}: field 'target' index out of range")
                idx = target
            elif isinstance(target, str) and target in options:
                idx = options.index(target)
            else:
                raise DataFormatError(
                    f"{where}: field 'target' must be one of 'options' or its index"
                )
            kinds.add("multiple_choice")
            out.append(_mc_example(ex_id, instruction.strip(), text, options, {idx},
                                   f"{path.stem}:{ex_id}", seed))
        else:
            kinds.add("generation")
            out.append(Example(id=ex_id, instruction=instruction.strip(), input=text,
                               targets=_gen_targets(row["target"], where)))
    if not out:
        raise DataFormatError(f"{path}: no examples (empty file)")
    if len(kinds) > 1:
        raise DataFormatError(
            f"{path}: field 'options' is set on some lines and not others; a task file is "
            "either all multiple choice or all generation"
        )
    shared = len({e.instruction for e in out}) == 1
    return Task(
        name=path.stem,
        path=str(path),
        kind=kinds.pop(),
        examples=tuple(out),
        instruction_level="task" if shared else "example",
        metadata={"instruction_derived": False, "source": "jsonl"},
    )


def load_task(
    path: str | Path, *, seed: int = 0, instruction_source: str = "generic"
) -> Task:
    """Load a BIG-bench ``.json`` task or a ``.jsonl`` task file; ``DataFormatError`` names the
    file (and line/example) and the field on bad input."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: task file not found")
    if p.suffix == ".jsonl":
        return load_jsonl(p, seed=seed)
    return load_bigbench(p, seed=seed, instruction_source=instruction_source)


def sample(task: Task, limit: int | None, seed: int) -> Task:
    """A seeded random subset of ``limit`` examples, in file order (files are often sorted, so
    the first N would be unrepresentative)."""
    if limit is None or limit >= len(task.examples):
        return task
    rng = random.Random(f"{seed}:{task.name}")
    keep = sorted(rng.sample(range(len(task.examples)), limit))
    return Task(
        name=task.name, path=task.path, kind=task.kind,
        examples=tuple(task.examples[i] for i in keep),
        instruction_level=task.instruction_level, metadata=task.metadata,
    )
