"""The seed POP we ship: valid, big enough, a clean held-out dev split, and every chosen rewrite
usable by the project's own guard."""

from __future__ import annotations

from collections import Counter

import pytest

from fipo_middleware.guard import check_rewrite
from tests import REPO
from training.pop import load_pop

SEED = REPO / "training" / "seed"


@pytest.fixture(scope="module")
def splits():
    train = load_pop(*sorted(SEED.glob("train_*.jsonl")))
    dev = load_pop(*sorted(SEED.glob("dev_*.jsonl")))
    return train, dev


def test_size_and_categories(splits):
    train, dev = splits
    assert len(train) + len(dev) >= 400
    cats = Counter(r.metadata["category"] for r in train)
    assert len(cats) >= 10 and min(cats.values()) >= 25, cats
    assert {r.metadata["category"] for r in dev} == set(cats)


def test_dev_is_held_out(splits):
    train, dev = splits
    assert not {r.id for r in train} & {r.id for r in dev}
    norm = lambda s: " ".join(s.lower().split())  # noqa: E731
    assert not {norm(r.naive_prompt) for r in train} & {norm(r.naive_prompt) for r in dev}


def test_every_record_is_a_full_preference_pair(splits):
    for r in [*splits[0], *splits[1]]:
        # Instruction-only prompts (the input comes later) have no response to show.
        if not r.metadata.get("instruction_only"):
            assert r.silver_response and r.golden_response, r.id
        assert r.rejected, r.id
        assert r.metadata.get("failure"), r.id
        if r.task_kind == "multiple_choice":
            assert r.options and all(o in r.chosen for o in r.options), r.id


def test_guard_accepts_every_chosen_rewrite(splits):
    bad = [
        (r.id, check_rewrite(r.naive_prompt, r.chosen).reasons)
        for r in [*splits[0], *splits[1]]
        if not check_rewrite(r.naive_prompt, r.chosen).usable
    ]
    assert not bad


def test_guard_catches_the_obvious_rejected_kinds(splits):
    rs = [r for r in splits[0] if r.metadata["failure"] in ("answers_task", "meta_chatter")]
    caught = sum(not check_rewrite(r.naive_prompt, r.rejected).usable for r in rs)
    assert caught / len(rs) >= 0.9


def test_no_seed_prompt_is_an_evaluation_instruction(splits, shared_data):
    """Training on the very instructions the BIG-bench evaluation rewrites would inflate it."""
    import json

    from evaluation.tasks import GENERIC_GEN_INSTRUCTION, GENERIC_MC_INSTRUCTION

    norm = lambda s: " ".join(s.lower().strip().rstrip(":.?").split())  # noqa: E731
    evals = {norm(GENERIC_MC_INSTRUCTION), norm(GENERIC_GEN_INSTRUCTION)}
    for path in sorted((shared_data / "bigbench").glob("*.json")):
        prefix = json.loads(path.read_text(encoding="utf-8")).get("task_prefix") or ""
        evals |= {norm(part) for part in [prefix, *prefix.split("\n")] if part.strip()}
    assert len(evals) >= 5
    clashes = [r.id for r in [*splits[0], *splits[1]] if norm(r.naive_prompt) in evals]
    assert not clashes


def test_instruction_only_records_teach_against_inventing(splits):
    """The invented-input failure seen on task-level instructions has its own training pairs,
    and the guard catches most of their rejected rewrites."""
    only = [r for r in splits[0] if r.metadata.get("instruction_only")]
    assert len(only) >= 150
    inventing = [r for r in only if r.metadata["failure"] == "invented_material"]
    caught = sum(not check_rewrite(r.naive_prompt, r.rejected).usable for r in inventing)
    assert caught / len(inventing) >= 0.75, (caught, len(inventing))
