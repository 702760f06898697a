"""Append mode: keep the user's words verbatim and add only complementary guidance (as PAS does).

A full rewrite can drop pasted input or change the task; an appended complement cannot, since
the naive prompt survives byte for byte. The complement is taken from the optimizer's own
rewrite: the sentences that add something (most of their content words are new to the naive
prompt) and that the guard's per-sentence rules do not flag (an answer-length cap or an answer
format the user did not ask for, invented input). Pure: guard functions only.
"""

from __future__ import annotations

import re

from fipo_middleware.guard import added_formats, added_length_cap, content_words

# A line break ends a sentence too: a request without final punctuation, copied and followed
# by guidance on its own paragraph, must not be taken (with the copy) as one new sentence.
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\s*\n\s*")
_ENDED = re.compile(r"[.!?:)\"'`\u3002\uff1f\uff01]$")
COMPLEMENT_VERSION = 2
"""Bumped when the extraction changes what append mode serves (part of evaluation cache keys).
2: a line break ends a sentence; a verbatim copy of the naive prompt is not guidance; an
unfinished last sentence and a lowercase continuation are dropped."""
NEW_WORD_SHARE = 0.5
"""A sentence is complementary when at least this share of its content words is new: below
it, the sentence restates the request instead of adding to it."""


def _stem(word: str) -> str:
    return word[:5]


def complement(naive_prompt: str, rewrite: str) -> str:
    """The guidance sentences of ``rewrite`` that add to ``naive_prompt`` ("" when none do)."""
    known = {_stem(w) for w in content_words(naive_prompt)}
    kept: list[str] = []
    rewrite = rewrite.strip()
    head = naive_prompt.strip()
    if head and rewrite.startswith(head):  # the verbatim copy append-form training teaches
        rewrite = rewrite[len(head):]
    pieces = [p.strip() for p in _SENTENCE.split(rewrite.strip()) if p.strip()]
    if pieces and not _ENDED.search(pieces[-1]):
        pieces.pop()  # cut off at the token limit: half a sentence damages the prompt
    for sentence in pieces:
        words = content_words(sentence)
        if len(words) < 2 or sentence.lower() in naive_prompt.lower():
            continue
        if sentence[0].islower():
            continue  # the tail of the user's own sentence, reworded: not guidance of its own
        new = sum(_stem(w) not in known for w in words) / len(words)
        if new < NEW_WORD_SHARE:
            continue
        if added_length_cap(naive_prompt, sentence) or added_formats(naive_prompt, sentence):
            continue
        kept.append(sentence)
        known |= {_stem(w) for w in words}  # two sentences that say the same thing: keep one
    return " ".join(kept)


def append_complement(naive_prompt: str, rewrite: str) -> str:
    """``naive_prompt`` followed by the complement of ``rewrite`` (the naive prompt itself when
    there is nothing to add)."""
    return join_guidance(naive_prompt, complement(naive_prompt, rewrite))


def join_guidance(naive_prompt: str, guidance: str) -> str:
    """``naive_prompt`` verbatim with ``guidance`` after it: the one layout append mode serves
    and append-form training data is written in."""
    guidance = guidance.strip()
    if not guidance:
        return naive_prompt
    body = naive_prompt.rstrip()
    # A one-line request that ends a sentence takes the guidance on the same line; pasted
    # material (several lines) or an unfinished line gets it as its own paragraph.
    sep = " " if "\n" not in body and body[-1:] in ".?!" else "\n\n"
    return body + sep + guidance
