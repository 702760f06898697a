"""``fipo pop build`` with real llama.cpp models: SmolLM2 as the weak model and SmolLM2 with the
shipped FIPO adapter as the teacher. Every seed ends as a record or a logged reject with its
reason, at least one record is built, a failing prompt does not stop the run, and a rerun skips
what is done.

Cross-validation is off: SmolLM2-135M as discriminator gives no order-consistent verdict (every
pair of a 6-seed probe came back ``discriminator_inconsistent``, untuned or tuned), so with it
nothing would ever be kept and the record path would go untested."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fipo_middleware.guard import check_rewrite
from fipo_middleware.models import default_adapter_path
from fipo_middleware.template import MetaPromptInput
from training.build import POPBuilder, local_chat_model, rejects_path
from training.pop import SeedPrompt, iter_jsonl


@pytest.fixture(scope="module")
def teacher_chat():
    adapter = default_adapter_path()
    assert adapter is not None, "the shipped FIPO adapter is missing from fipo_middleware/weights"
    return local_chat_model(lora_path=adapter, max_tokens=32, n_threads=2)


@pytest.fixture(scope="module")
def tiny_ctx_chat():
    # Too small a context for the long seed below: llama.cpp raises, the run goes on.
    return local_chat_model(max_tokens=32, n_ctx=256, n_threads=2)


def test_build_records_rejects_and_resume(tmp_path: Path, teacher_chat, tiny_ctx_chat,
                                          caplog: pytest.LogCaptureFixture) -> None:
    seeds = [
        SeedPrompt(id="s1", prompt="name the capital of Italy"),
        SeedPrompt(id="s2", prompt="what is 9 plus 10", reference="19"),
        SeedPrompt(id="s3", prompt="name the capital of Italy!"),
        SeedPrompt(id="long", prompt="summarize this: " + "lorem ipsum dolor " * 150),
    ]
    by_id = {s.id: s for s in seeds}
    out = tmp_path / "pop.jsonl"
    builder = POPBuilder(tiny_ctx_chat, teacher_chat, workers=2, max_tokens=32,
                         cross_validate=False)
    stats = builder.run(seeds, out, progress=False)
    rejects = {row["id"]: row for _, row in iter_jsonl(rejects_path(out))}
    assert out.is_file(), f"no record built; rejects: {rejects}"
    kept = {row["id"]: row for _, row in iter_jsonl(out)}
    assert kept, f"no record built; rejects: {rejects}"
    assert set(kept) | set(rejects) == {"s1", "s2", "s3", "long"}
    assert not set(kept) & set(rejects)
    assert stats.kept == len(kept)
    assert rejects["long"]["kind"] == "error"  # context overflow, logged, run continued
    assert "long: failed" in caplog.text
    assert all(r["reason"] for r in rejects.values())
    # s1 and s3 are near-duplicates: at most one of them can be kept
    assert not {"s1", "s3"} <= set(kept)
    for rid, row in kept.items():
        seed = by_id[rid]
        assert row["source"] == "built" and row["naive_prompt"] == seed.prompt
        assert row["metadata"]["discriminator"] == [] and row["metadata"]["swapped"] is False
        assert row["metadata"]["golden_from"] == ("reference" if seed.reference else "teacher")
        if seed.reference:
            assert row["golden_response"] == seed.reference
        # The teacher's rewrite passed the guard; the rejected side is a different text.
        verdict = check_rewrite(seed.prompt, row["chosen"], MetaPromptInput(seed.prompt).budget)
        assert verdict.usable, verdict.reasons
        assert row["rejected"] and row["rejected"] != row["chosen"]

    # Resume: kept and filtered ids are skipped; only the failed one is retried.
    again = POPBuilder(tiny_ctx_chat, teacher_chat, workers=1, max_tokens=32,
                       cross_validate=False)
    stats2 = again.run(seeds, out, progress=False)
    assert stats2.skipped_done == 3 and stats2.errors == 1 and stats2.kept == 0
    assert [row["id"] for _, row in iter_jsonl(out)] == list(kept)  # nothing appended
    lines = rejects_path(out).read_text().splitlines()
    assert sum(json.loads(x)["id"] == "long" for x in lines) == 2
