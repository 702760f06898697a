"""On-disk caches of optimized prompts and model responses: append-only JSONL under the run's
output folder, keyed by a hash (``content_key``) of the parts the caller passes: the optimizer or
downstream key and the exact prompt and settings. How far a key identifies the model files
depends on that key (docs/EVALUATION.md, "Resuming"). A rerun (or a run that crashed half way)
reads them back and only computes what is missing."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from fipo_middleware.jsonl import append_jsonl


def content_key(*parts: Any) -> str:
    blob = json.dumps(parts, ensure_ascii=False, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


class JsonlCache:
    """id -> row, persisted with ``fipo_middleware.jsonl.append_jsonl`` (one fsynced line per
    entry). A torn last line from a crash is skipped on load, like
    ``fipo_middleware.jsonl.done_ids`` does."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.rows: dict[str, dict[str, Any]] = {}
        self.hits = 0
        self.misses = 0
        if self.path.is_file():
            with self.path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                        self.rows[str(row["id"])] = row
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue

    def get(self, key: str) -> dict[str, Any] | None:
        row = self.rows.get(key)
        if row is None:
            self.misses += 1
        else:
            self.hits += 1
        return row

    def put(self, key: str, row: dict[str, Any]) -> dict[str, Any]:
        row = {"id": key, **row}
        append_jsonl(self.path, row)
        self.rows[key] = row
        return row

    def __len__(self) -> int:
        return len(self.rows)
