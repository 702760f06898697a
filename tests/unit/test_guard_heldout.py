"""The guard on data it was not tuned on: the teacher POP (written after the guard's thresholds
were set on the BPO pairs, judged blind by strong-model judges). Floors sit a few points under
the measured rates (in comments), so a regression fails and noise does not.

What it says about the guard: it lets through most rewrites judges prefer and catches the
failures it has rules for (answering the task, dropping pasted input); unasked length caps and
formats, changed tasks and damaged wording mostly pass it (21-33 % caught): that is what the
verifier and judged evaluation are for."""

from __future__ import annotations

from collections import Counter

from fipo_middleware.guard import check_rewrite
from tests import REPO
from training.pop import load_pop

RECORDS = load_pop(*sorted((REPO / "training" / "teacher").glob("teacher_*.jsonl")))


def test_judged_better_rewrites_mostly_pass() -> None:
    passed: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for r in RECORDS:
        edit = r.metadata.get("edit")
        if edit == "keep" or r.metadata.get("judged", {}).get("chosen_vs_naive") != "win":
            continue
        total[edit] += 1
        passed[edit] += check_rewrite(r.naive_prompt, r.chosen).usable
    assert sum(total.values()) > 1500
    assert sum(passed.values()) / sum(total.values()) >= 0.83  # 0.87 of 1,897 (guard 5: 0.76)
    assert passed["minimal_fix"] / total["minimal_fix"] >= 0.90  # measured 0.99 of 81


def test_failures_with_rules_are_caught() -> None:
    caught: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for r in RECORDS:
        if r.rejected:
            kind = r.metadata.get("failure")
            total[kind] += 1
            caught[kind] += not check_rewrite(r.naive_prompt, r.rejected).usable
    assert caught["answers_task"] / total["answers_task"] >= 0.85  # measured 0.91
    assert caught["dropped_input"] / total["dropped_input"] >= 0.80  # measured 0.88
    assert caught["padding"] / total["padding"] >= 0.50  # measured 0.60
