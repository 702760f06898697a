"""JSONL helpers for long jobs: atomic whole-file writes, append-only resumable outputs."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError


def write_jsonl_atomic(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write all rows to a temp file in the same folder, then rename: readers never see a
    half-written file."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    n = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """A whole text file, written as ``write_jsonl_atomic`` writes: temp file, then rename."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", dir=p.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_jsonl(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Append one line and flush it to disk (resumable jobs: a crash loses at most the line
    being written, which the loader then skips as incomplete)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def done_ids(
    path: str | os.PathLike[str],
    key: str = "id",
    where: Callable[[dict[str, Any]], bool] | None = None,
) -> set[str]:
    """Ids already in an append-only output (only rows ``where`` accepts, when given); a torn
    last line (crash mid-write) is ignored."""
    p = Path(path)
    if not p.is_file():
        return set()
    ids: set[str] = set()
    with p.open(encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
                if where is None or (isinstance(row, dict) and where(row)):
                    ids.add(str(row[key]))
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return ids


def iter_jsonl(path: str | os.PathLike[str], what: str = "JSONL") -> Iterator[tuple[int, dict]]:
    """Yield ``(line number, object)`` for every non-blank line; a line that is not a JSON
    object raises ``DataFormatError`` naming file:line."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: {what} file not found")
    with p.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataFormatError(f"{p}:{lineno}: invalid JSON ({e.msg})") from None
            if not isinstance(data, dict):
                raise DataFormatError(f"{p}:{lineno}: expected a JSON object per line")
            yield lineno, data
