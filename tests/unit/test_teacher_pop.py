"""The teacher POP (training/teacher/) and the held-out judge dev set: valid, consistent with
their documented edit rules, and disjoint."""

from __future__ import annotations

import json
from collections import Counter

from tests import REPO
from training.pop import load_pop

TEACHER = sorted((REPO / "training" / "teacher").glob("teacher_*.jsonl"))
DEV = REPO / "evaluation" / "data" / "judge_dev.jsonl"
EDITS = {"keep", "minimal_fix", "append", "rewrite"}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def test_teacher_records_follow_their_edit_rules() -> None:
    records = load_pop(*TEACHER)
    assert len(records) >= 3000
    assert len({r.id for r in records}) == len(records)
    edits = Counter(r.metadata["edit"] for r in records)
    assert set(edits) == EDITS, edits
    # About a third of the naive prompts are already good: chosen is the prompt or a minimal fix.
    assert 0.28 <= (edits["keep"] + edits["minimal_fix"]) / len(records) <= 0.45, edits
    for r in records:
        edit, guidance = r.metadata["edit"], r.metadata["guidance"]
        if edit == "keep":
            assert r.chosen == r.naive_prompt and guidance == "", r.id
        elif edit == "append":
            assert r.chosen == f"{r.naive_prompt} {guidance}", r.id
        else:
            assert r.chosen != r.naive_prompt, r.id
        assert r.rejected and r.rejected != r.chosen, r.id
    languages = Counter(r.metadata["language"] for r in records)
    assert sum(n for lang, n in languages.items() if lang != "en") >= 300, languages


def test_judged_teacher_records_name_their_outcome() -> None:
    judged = [r for r in load_pop(*TEACHER) if "judged" in r.metadata]
    assert len(judged) == len(load_pop(*TEACHER))  # every record carries its judged outcome
    outcomes = Counter(r.metadata["judged"]["chosen_vs_naive"] for r in judged)
    assert set(outcomes) <= {"win", "tie", "lose", "identical"}
    # The teacher's chosen rewrite must rarely lose to the naive prompt it replaces.
    assert outcomes["lose"] <= 0.01 * len(judged), outcomes


def test_judge_dev_set_shares_no_prompt_with_training() -> None:
    dev = [json.loads(line) for line in DEV.read_text(encoding="utf-8").splitlines()]
    assert len(dev) >= 150 and len({d["id"] for d in dev}) == len(dev)
    assert sum(d["language"] != "en" for d in dev) >= 10
    seed = sorted((REPO / "training" / "seed").glob("*.jsonl"))
    train = {_norm(r.naive_prompt) for r in load_pop(*TEACHER, *seed)}
    shared = [d["id"] for d in dev if _norm(d["prompt"]) in train]
    assert not shared, shared


def test_every_failure_label_uses_the_one_vocabulary() -> None:
    from training.pop import FAILURE_KINDS

    seed = sorted((REPO / "training" / "seed").glob("*.jsonl"))
    labels = Counter(r.metadata.get("failure") for r in load_pop(*TEACHER, *seed))
    unknown = {f for f in labels if f is not None and not set(f.split(",")) <= FAILURE_KINDS}
    assert not unknown, unknown


def test_append_form_keeps_the_naive_prompt_verbatim() -> None:
    from fipo_middleware.complement import join_guidance
    from training.pop import append_form

    records = load_pop(*TEACHER)
    kept, skipped = append_form(records)
    assert len(kept) + sum(skipped.values()) == len(records)
    assert len(kept) >= 2500, skipped
    by_id = {r.id: r for r in records}
    wins_with_guidance = 0
    for r in kept:
        src = by_id[r.id]
        # The user's words survive byte for byte: the chosen prompt starts with them.
        assert r.chosen.startswith(src.naive_prompt.rstrip()), r.id
        assert r.rejected == src.rejected and r.metadata["chosen_form"] == "append"
        if src.metadata["edit"] in ("keep", "minimal_fix"):
            assert r.chosen == src.naive_prompt, r.id
        else:
            assert src.metadata["judged"]["chosen_vs_naive"] == "win", r.id
            assert r.chosen == join_guidance(src.naive_prompt, src.metadata["guidance"]), r.id
            wins_with_guidance += 1
    assert wins_with_guidance >= 1500
    # A tied rewrite has nothing verbatim-safe to teach.
    assert skipped.get("not_a_win", 0) + skipped.get("no_guidance", 0) > 0, skipped


def test_join_guidance_layout() -> None:
    from fipo_middleware.complement import join_guidance

    assert join_guidance("Why is the sky blue?", " Explain the physics. ") == \
        "Why is the sky blue? Explain the physics."
    assert join_guidance("Summarize:\nSome pasted text", "Keep the names.") == \
        "Summarize:\nSome pasted text\n\nKeep the names."
    assert join_guidance("fix my code", "Explain the bug.") == "fix my code\n\nExplain the bug."
    assert join_guidance("Why?", "  ") == "Why?"
