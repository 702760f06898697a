"""Library guidance (the judged baseline): which request shapes get a sentence, which pass
through, and that the naive prompt always survives byte for byte."""

from __future__ import annotations

import pytest

from evaluation.guidance import RULES, guided_prompt, library_guidance

ERROR_PASTE = ("my flask app won't start, what do i do\n\nTraceback (most recent call last):\n"
               "  File \"app.py\", line 3, in <module>\nModuleNotFoundError: No module named "
               "'flask_cors'")


@pytest.mark.parametrize("prompt, rule", [
    (ERROR_PASTE, "debug"),
    ("my node script keeps crashing when the input file is empty", "debug"),
    ("A train leaves at 3 pm going 60 mph and a second one at 4 pm going 80 mph. How long until "
     "the second catches up?", "word_problem"),
    ("what's the difference between TCP and UDP", "compare"),
    ("tabs vs spaces", "compare"),
    ("Write an email to my landlord asking to fix the heating.", "letter"),
    ("write a python function that merges two sorted lists", "code_write"),
    ("how do I replace a bike chain", "howto"),
    ("Plan a long weekend in Porto for two people who like wine.", "itinerary"),
    ("recipe for banana bread please", "recipe"),
    ("summarize this for my team\n\nThe vendor moved the delivery from May 3 to May 17, and the "
     "price rose from $4,200 to $4,650 because of freight costs.", "summary"),
])
def test_each_rule_fires_on_its_request_shape(prompt: str, rule: str) -> None:
    found = library_guidance(prompt)
    assert found is not None and found[0] == rule
    served = guided_prompt(prompt)
    assert served.startswith(prompt.rstrip()) and served.endswith(found[1])


@pytest.mark.parametrize("prompt", [
    "Why is the sky blue?",                                   # no shape the library knows
    "write a poem about the sea",
    "Write a Python function that merges two sorted lists, with an example and comments.",
    "Show step by step: how many minutes are in 3.5 days?",   # already asked for
    "Write an email to [name] about the meeting.",            # placeholders already there
    "Explique la différence entre TCP et UDP.",               # another language
    "Was ist der Unterschied zwischen TCP und UDP?",
    "Summarize the article below.",                           # the input comes later
    "You are a support agent. Compare the two plans the user describes.",
    "summarize this, keep the figures exact\n\nRevenue rose 4 % to $1.2m in Q3 against plan.",
    "Convert this recipe to metric: 2 cups flour, 1 cup sugar",
    "read this and answer: how many people were hurt?\n\nA storm hit 3 towns; 12 were hurt.",
    "",
])
def test_everything_else_passes_through_unchanged(prompt: str) -> None:
    assert library_guidance(prompt) is None
    assert guided_prompt(prompt) == prompt


def test_pasted_material_does_not_trigger_a_rule() -> None:
    # "summary" and "vs" inside the pasted text are data, not the request.
    prompt = "fix the typos\n\nExecutive summary: Q3 revenue vs plan was up 4 %, costs flat."
    assert library_guidance(prompt) is None


def test_layout_follows_append_mode() -> None:
    one_line = "what's the difference between TCP and UDP?"
    assert guided_prompt(one_line) == one_line + " " + library_guidance(one_line)[1]
    multi = ERROR_PASTE
    assert guided_prompt(multi) == multi + "\n\n" + library_guidance(multi)[1]


def test_every_rule_is_reachable() -> None:
    names = {r.name for r in RULES}
    assert names == {"debug", "word_problem", "compare", "letter", "recipe", "code_write",
                     "howto", "itinerary", "summary"}
