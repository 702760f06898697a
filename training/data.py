"""Training data: dataset JSONL rows (from ``fipo pop diversify``) and the HF ``Dataset`` TRL
trains on; the IPL loop's per-round preference rows.

``datasets`` is imported inside functions only.
"""

from __future__ import annotations

import os
from typing import Any

from fipo_middleware.errors import DataFormatError
from training.pop import POPRecord, iter_jsonl

SFT_COLUMNS = ("prompt", "completion")
PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


def columns_for(method: str) -> tuple[str, ...]:
    """The dataset columns ``fipo train METHOD`` reads (sft: prompt/completion, else pairs)."""
    return SFT_COLUMNS if method == "sft" else PREFERENCE_COLUMNS


def load_rows(path: str | os.PathLike[str], columns: tuple[str, ...]) -> list[dict[str, Any]]:
    """Dataset rows with the given columns; a missing column is reported as file:line."""
    rows = []
    for lineno, data in iter_jsonl(path, "dataset"):
        missing = [c for c in columns if data.get(c) in (None, "", [])]
        if missing:
            raise DataFormatError(f"{path}:{lineno}: field {missing[0]!r} missing or empty")
        rows.append({c: data[c] for c in columns})
    if not rows:
        raise DataFormatError(f"{path}: no rows")
    return rows


def to_dataset(rows: list[dict[str, Any]]) -> Any:
    """Rows -> ``datasets.Dataset`` (what TRL's trainers take)."""
    from datasets import Dataset

    return Dataset.from_list(rows)


def ipl_rows(records: list[POPRecord], *, seed: int, dialect: str) -> tuple[
        list[dict[str, Any]], dict[str, dict[str, int]]]:
    """One IPL round's preference rows (``diversify``'s IPL dataset: optimize, answer and
    discriminate items) and its case-type counts."""
    from training.diversify import diversify

    data = diversify(records, seed=seed, dialect=dialect)
    rows = [{k: row[k] for k in PREFERENCE_COLUMNS} for row in data.ipl]
    return rows, data.counts()
