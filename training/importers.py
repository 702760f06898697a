"""Importers: third-party prompt-optimization data -> POP records.

* **FIPO POP** (the released ``final_collected_data.jsonl`` of LuJunru/FIPO_Project): one
  object per line with ``raw_prompt``, ``gpt4_response_based_raw`` (golden response),
  ``text003_response_based_raw`` (silver response), ``gpt4_optimized_prompt`` (chosen) and
  ``chatgpt_optimized_prompt`` (rejected), optional ``id``.
* **BPO pairs** (a JSON list or JSONL of ``prompt``, ``optimized_prompt``, ``good_res``,
  ``bad_res``): chosen = ``optimized_prompt``, golden = ``good_res``, silver = ``bad_res``.
  BPO has no dispreferred rewrite, so ``rejected`` is the naive prompt itself by default
  (``bpo_rejected="naive"``): the preference "the optimized prompt beats leaving the prompt as it
  is" is exactly what BPO's data encodes (``bad_res`` is the reply to the naive prompt). When
  the optimized prompt equals the naive prompt (BPO keeps some unchanged) the pair carries no
  preference and ``rejected`` is null (SFT only). ``bpo_rejected="null"`` always leaves it null.

Files are read by path (third-party data is never copied into the repository); a malformed
line or field raises ``DataFormatError`` naming file:line and the field.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from fipo_middleware.errors import DataFormatError
from fipo_middleware.jsonl import iter_jsonl
from training.pop import POPRecord


def _rows(path: str | os.PathLike[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(location, object)`` from a JSON list (location = ``file:[index]``) or JSONL
    (location = ``file:line``)."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: file not found")
    with p.open(encoding="utf-8") as f:
        head = f.read(64).lstrip()
    if head.startswith("["):
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
        for i, row in enumerate(data):
            if not isinstance(row, dict):
                raise DataFormatError(f"{p}:[{i}]: expected a JSON object")
            yield f"{p}:[{i}]", row
        return
    for lineno, row in iter_jsonl(p):
        yield f"{p}:{lineno}", row


def _text(row: dict[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = row.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise DataFormatError(f"{where}: field {key!r} missing, empty or not a string")
    return value


def import_fipo_pop(path: str | os.PathLike[str], id_prefix: str = "fipo-") -> list[POPRecord]:
    """The released FIPO POP raw format."""
    out: list[POPRecord] = []
    for n, (where, row) in enumerate(_rows(path)):
        naive = _text(row, "raw_prompt", where)
        chosen = _text(row, "gpt4_optimized_prompt", where)
        rejected = _text(row, "chatgpt_optimized_prompt", where, required=False)
        out.append(
            POPRecord(
                id=f"{id_prefix}{row.get('id', n)}",
                naive_prompt=naive,  # type: ignore[arg-type]
                silver_response=_text(row, "text003_response_based_raw", where, required=False),
                golden_response=_text(row, "gpt4_response_based_raw", where, required=False),
                chosen=chosen,  # type: ignore[arg-type]
                rejected=rejected or None,
                source="fipo-pop",
                metadata={"rejected_kind": "chatgpt_optimized_prompt"},
            )
        )
    return out


def import_bpo(
    path: str | os.PathLike[str],
    bpo_rejected: Literal["naive", "null"] = "naive",
    id_prefix: str = "bpo-",
) -> list[POPRecord]:
    """BPO pairs; see the module docstring for how ``rejected`` is chosen."""
    if bpo_rejected not in ("naive", "null"):
        raise ValueError(f"bpo_rejected must be 'naive' or 'null', got {bpo_rejected!r}")
    out: list[POPRecord] = []
    for n, (where, row) in enumerate(_rows(path)):
        naive = _text(row, "prompt", where)
        chosen = _text(row, "optimized_prompt", where)
        assert naive is not None and chosen is not None
        unchanged = chosen.strip() == naive.strip()
        rejected = naive if bpo_rejected == "naive" and not unchanged else None
        out.append(
            POPRecord(
                id=f"{id_prefix}{row.get('id', n)}",
                naive_prompt=naive,
                silver_response=_text(row, "bad_res", where, required=False),
                golden_response=_text(row, "good_res", where, required=False),
                chosen=chosen,
                rejected=rejected,
                source="bpo",
                metadata={"rejected_kind": "naive_prompt" if rejected else None,
                          "unchanged": unchanged},
            )
        )
    return out
