"""Scorers and the paired bootstrap on known data (pure, no model)."""

from __future__ import annotations

import math

import pytest

from evaluation.scorers import (
    exact_match,
    first_number,
    letter_prediction,
    normalize,
    normalized_match,
    numeric_match,
    parse_number,
    primary_metric,
    score_generation,
    score_letter,
    score_loglik,
)
from evaluation.stats import paired_bootstrap

LABELS = ("A", "B", "C")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("B", "B"),
        ("B) implausible", "B"),
        ("(C) The blue book", "C"),
        ("  A.", "A"),
        ("Answer: B", "B"),
        ("The answer is (C).", "C"),
        ("**B**", "B"),
        ("A person would say yes", None),  # the article, not a label
        ("a", None),
        ("D) nothing", None),  # not among the labels
        ("Yes", None),
        ("", None),
    ],
)
def test_letter_prediction(output: str, expected: str | None) -> None:
    assert letter_prediction(output, LABELS) == expected


def test_score_letter() -> None:
    assert score_letter("B) No", LABELS, [1])["score"] == 1.0
    assert score_letter("A) Yes", LABELS, [1])["score"] == 0.0
    assert score_letter("I think so", LABELS, [1]) == {"output": "I think so", "pred": None,
                                                       "score": 0.0}


def test_score_loglik_sum_and_average_can_disagree() -> None:
    # Option 1 has the best total; option 0 has the best per-token average.
    s = score_loglik([-6.0, -4.0], [6, 1], correct=[0])
    assert s["pred"] == 1 and s["loglik"] == 0.0
    assert s["pred_avg"] == 0 and s["loglik_avg"] == 1.0


def test_generation_metrics() -> None:
    assert exact_match(" gelatine stick\n", ["gelatine stick"]) == 1.0
    assert exact_match("Gelatine stick", ["gelatine stick"]) == 0.0
    assert normalized_match("Gelatine, stick.", ["gelatine stick"]) == 1.0
    assert normalized_match("Sorted:\ngelatine stick", ["gelatine stick"]) == 0.0
    assert normalized_match("gelatine stick\nbecause g < s", ["gelatine stick"]) == 1.0
    assert normalize("The  Cat, an apple!") == "cat apple"
    assert numeric_match("You have three instruments.", ["three", "3"]) == 1.0
    assert numeric_match("I count 4 of them", ["three", "3"]) == 0.0
    assert numeric_match("none", ["three", "3"]) == 0.0
    assert numeric_match("anything", ["gelatine stick"]) is None
    s = score_generation("5", ["five", "5"])
    assert s == {"output": "5", "exact": 1.0, "normalized": 1.0, "numeric": 1.0}


@pytest.mark.parametrize(
    ("text", "value"),
    [("3", 3.0), ("1,000", 1000.0), ("twenty-one", 21.0), ("seventeen", 17.0), ("2.5", 2.5),
     ("zebra", None), ("", None)],
)
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value


def test_first_number() -> None:
    assert first_number("There are twelve apples and 3 pears") == 12.0
    assert first_number("Total: 1,204.") == 1204.0
    assert first_number("no numbers here") is None


def test_primary_metric() -> None:
    assert primary_metric("multiple_choice", ["letter", "loglik"], False) == "loglik"
    assert primary_metric("multiple_choice", ["letter"], False) == "letter"
    assert primary_metric("generation", ["exact", "normalized", "numeric"], True) == "numeric"
    assert primary_metric("generation", ["exact", "normalized"], False) == "normalized"


def test_bootstrap_identical_scores_give_zero_interval() -> None:
    d = paired_bootstrap([1, 0, 1, 0], [1, 0, 1, 0], n_resamples=200)
    assert d.diff == 0 and d.lo == 0 and d.hi == 0 and d.n == 4


def test_bootstrap_constant_gain() -> None:
    # b is right exactly where a is wrong on 10 of 20 examples: every resample gains > 0.
    a = [0.0] * 10 + [1.0] * 10
    b = [1.0] * 20
    d = paired_bootstrap(a, b, n_resamples=1000, seed=1)
    assert d.diff == pytest.approx(0.5)
    assert 0 < d.lo <= 0.5 <= d.hi <= 0.8
    assert d.mean_a == pytest.approx(0.5) and d.mean_b == pytest.approx(1.0)


def test_bootstrap_interval_matches_normal_approximation() -> None:
    # 100 pairs: 30 gains, 10 losses, 60 ties -> mean diff 0.2, sd of the diff ~0.6.
    a = [0.0] * 30 + [1.0] * 10 + [1.0] * 60
    b = [1.0] * 30 + [0.0] * 10 + [1.0] * 60
    d = paired_bootstrap(a, b, n_resamples=4000, seed=0)
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / len(diffs))
    half = 1.96 * sd / math.sqrt(len(diffs))
    assert d.diff == pytest.approx(0.2)
    assert d.lo == pytest.approx(mean - half, abs=0.03)
    assert d.hi == pytest.approx(mean + half, abs=0.03)
    # Deterministic for a seed.
    assert paired_bootstrap(a, b, n_resamples=4000, seed=0) == d


def test_bootstrap_grouped_is_macro_average() -> None:
    # Task 1 (2 examples) gains 1.0 each, task 2 (6 examples) gains nothing: macro gain 0.5.
    d = paired_bootstrap([[0, 0], [1] * 6], [[1, 1], [1] * 6], n_resamples=500)
    assert d.diff == pytest.approx(0.5)
    assert d.lo == pytest.approx(0.5) and d.hi == pytest.approx(0.5)
    with pytest.raises(ValueError):
        paired_bootstrap([1, 0], [1])
