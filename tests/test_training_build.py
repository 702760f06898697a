"""``fipo pop build`` with real llama.cpp models (SmolLM2 as weak model, teacher and
discriminator): every seed ends as a record or a logged reject with its reason, a failing
prompt does not stop the run, and a rerun skips what is done."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.build import POPBuilder, local_chat_model, rejects_path
from training.pop import SeedPrompt, iter_jsonl


@pytest.fixture(scope="module")
def small_chat():
    return local_chat_model(max_tokens=32, n_threads=2)


@pytest.fixture(scope="module")
def tiny_ctx_chat():
    # Too small a context for the long seed below: llama.cpp raises, the run goes on.
    return local_chat_model(max_tokens=32, n_ctx=256, n_threads=2)


def test_build_records_rejects_and_resume(tmp_path: Path, small_chat, tiny_ctx_chat,
                                          caplog: pytest.LogCaptureFixture) -> None:
    seeds = [
        SeedPrompt(id="s1", prompt="name the capital of Italy"),
        SeedPrompt(id="s2", prompt="what is 9 plus 10", reference="19"),
        SeedPrompt(id="s3", prompt="name the capital of Italy!"),
        SeedPrompt(id="long", prompt="summarize this: " + "lorem ipsum dolor " * 150),
    ]
    out = tmp_path / "pop.jsonl"
    builder = POPBuilder(tiny_ctx_chat, small_chat, workers=2, max_tokens=32)
    stats = builder.run(seeds, out, progress=False)
    rejects = {row["id"]: row for _, row in iter_jsonl(rejects_path(out))}
    kept = {row["id"] for _, row in iter_jsonl(out)} if out.is_file() else set()
    assert kept | set(rejects) == {"s1", "s2", "s3", "long"}
    assert stats.kept == len(kept)
    assert rejects["long"]["kind"] == "error"  # context overflow, logged, run continued
    assert "long: failed" in caplog.text
    assert all(r["reason"] for r in rejects.values())
    # s1 and s3 are near-duplicates: at most one of them can be kept
    assert not {"s1", "s3"} <= kept
    for _, row in iter_jsonl(out) if out.is_file() else []:
        assert row["source"] == "built" and len(row["metadata"]["discriminator"]) == 2

    # Resume: kept and filtered ids are skipped; only the failed one is retried.
    again = POPBuilder(tiny_ctx_chat, small_chat, workers=1, max_tokens=32)
    stats2 = again.run(seeds, out, progress=False)
    assert stats2.skipped_done == 3 and stats2.errors == 1
    lines = rejects_path(out).read_text().splitlines()
    assert sum(json.loads(x)["id"] == "long" for x in lines) == 2
