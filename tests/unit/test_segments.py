"""Instruction-oriented splitting: fixed parts pass through byte for byte."""

from __future__ import annotations

import pytest

from fipo_middleware.errors import InvalidPromptError
from fipo_middleware.segments import split_prompt

MC = "Which planet is largest?\nA) Mars\nB) Jupiter\nC) Venus\n"


def test_option_lines_are_fixed():
    split = split_prompt(MC)
    assert split.instruction == "Which planet is largest?"
    out = split.rebuild("Choose the largest planet. Answer with the letter.")
    assert (
        out == "Choose the largest planet. Answer with the letter.\nA) Mars\nB) Jupiter\nC) Venus\n"
    )


def test_code_fences_and_tags_are_fixed():
    text = "fix this\n```python\ndef f( x ):\n  return x+1\n```\n<fixed>keep  me\texactly</fixed>"
    split = split_prompt(text)
    assert split.instruction == "fix this"
    out = split.rebuild("Fix the bug in this Python function.")
    assert "```python\ndef f( x ):\n  return x+1\n```" in out
    assert "keep  me\texactly" in out and "<fixed>" not in out
    assert out.startswith("Fix the bug in this Python function.\n")


def test_protection_can_be_turned_off():
    split = split_prompt(MC, protect_options=False)
    assert "B) Jupiter" in split.instruction
    assert not split.has_fixed


def test_all_fixed_is_an_error():
    with pytest.raises(InvalidPromptError, match="no instruction"):
        split_prompt("<fixed>only context</fixed>")
    with pytest.raises(InvalidPromptError):
        split_prompt("   \n ")


def test_a_numbered_list_past_nine_items_stays_one_fixed_block():
    # Item 10 of pasted feedback used to be left in the instruction the optimizer rewrites.
    items = "".join(f'{i}. "comment {i}"\n' for i in range(1, 13))
    split = split_prompt("Summarize the feedback below.\n\n" + items)
    assert split.instruction == "Summarize the feedback below."
    assert split.rebuild("Group the feedback below by complaint.").endswith(items)
