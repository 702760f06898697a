"""Output parsing: wrappers small models add are removed; budgets are enforced."""

from __future__ import annotations

import pytest

from fipo_middleware.parsing import enforce_budget, parse_rewrite


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Golden Prompt: List three primes.", "List three primes."),
        ("**Optimized prompt:** List three primes.", "List three primes."),
        ("Here is the optimized prompt:\nList three primes.", "List three primes."),
        ('Sure! Here\'s a better version:\n"List three primes."', "List three primes."),
        ("```\nList three primes.\n```", "List three primes."),
        ("'List three primes.'", "List three primes."),
        ("List three primes.<|user|>\nnext turn", "List three primes."),
        ("List three primes.\n\nSliver Prompt:\nfoo", "List three primes."),
        ("List three primes.\nList three primes.\nList three primes.", "List three primes."),
    ],
)
def test_parse_rewrite_strips_wrappers(raw, expected):
    assert parse_rewrite(raw) == expected


def test_quotes_inside_text_are_kept():
    raw = 'Translate "bonjour" and "merci" into English.'
    assert parse_rewrite(raw) == raw


def test_budget_trims_to_last_sentence_within_budget():
    text = "Explain photosynthesis simply. Use two sentences. " + "Add more detail " * 20
    trimmed = enforce_budget(text, 10)
    assert trimmed == "Explain photosynthesis simply. Use two sentences."


def test_budget_leaves_unsplittable_text_for_the_guard():
    text = "word " * 50
    assert enforce_budget(text.strip(), 10) == text.strip()
    assert parse_rewrite("", 10) == ""
