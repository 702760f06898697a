"""Scorers, one per metric. Pure functions over strings and numbers.

Multiple choice:

- ``loglik``: the option with the highest summed log-likelihood as the continuation of the
  prompt (BIG-bench's ``multiple_choice_grade``); ``loglik_avg`` divides by the option's token
  count (less bias toward short options). Both come from one forward pass per option.
- ``letter``: the paper's metric; options are labelled A, B, ... and the prediction is the first
  letter the model generates (after optional "Answer:"/"The answer is" and brackets), which
  must be a standalone label ("A", "(A)", "A)", "A.", "A:"), not the article in "A person ...".

Generation (every metric is 1.0 if any accepted target matches):

- ``exact``: the stripped output equals a target;
- ``normalized``: lowercase, punctuation and articles dropped, whitespace collapsed; compared on
  the whole output and on its first non-empty line;
- ``numeric``: the first number in the output (digits or English number words) equals a
  numeric target; ``None`` (not applicable) when no target is a number.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Sequence

_ANSWER_LEAD = re.compile(
    r"^\s*(?:\*\*)?(?:the\s+)?(?:correct\s+|final\s+)?(?:answer|option|choice)"
    r"(?:\s+is)?\s*[:\-]?\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
_LETTER = re.compile(r"^[\s\"'*`]*[(\[]?([A-Za-z])(?:[)\].:,*`\"']|\s|$)")
# "A person ...": the article, unless the next word says it is the answer ("A is correct").
_ARTICLE_A = re.compile(r"^A\s+(?!(?:is|because|since|as|would|seems)\b)[a-z]")


def letter_prediction(output: str, labels: Sequence[str]) -> str | None:
    """The label the model answered with, or None when its output does not start with one."""
    text = _ANSWER_LEAD.sub("", output, count=1)
    m = _LETTER.match(text)
    if not m:
        return None
    letter = m.group(1)
    if _ARTICLE_A.match(text[m.start(1):]):
        return None
    # A lowercase "a" is the article far more often than an answer.
    if letter.islower():
        return None
    return letter if letter in labels else None


def score_letter(output: str, labels: Sequence[str], correct: Sequence[int]) -> dict:
    pred = letter_prediction(output, labels)
    ok = pred is not None and labels.index(pred) in correct
    return {"output": output, "pred": pred, "score": 1.0 if ok else 0.0}


def score_loglik(
    logliks: Sequence[float], n_tokens: Sequence[int], correct: Sequence[int]
) -> dict:
    """Scores for both loglik metrics from per-option summed log-probs and token counts."""
    best = max(range(len(logliks)), key=lambda i: logliks[i])
    avg = [ll / max(n, 1) for ll, n in zip(logliks, n_tokens, strict=True)]
    best_avg = max(range(len(avg)), key=lambda i: avg[i])
    return {
        "logliks": [round(x, 4) for x in logliks],
        "n_tokens": list(n_tokens),
        "pred": best,
        "pred_avg": best_avg,
        "loglik": 1.0 if best in correct else 0.0,
        "loglik_avg": 1.0 if best_avg in correct else 0.0,
    }


_ARTICLES = re.compile(r"\b(?:a|an|the)\b")
_PUNCT = str.maketrans({c: " " for c in string.punctuation})


def normalize(text: str) -> str:
    text = text.lower().translate(_PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split()
)}
_TENS = {w: 10 * i for i, w in enumerate(
    "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
_NUM_TOKEN = re.compile(
    r"[-+]?\d[\d,]*(?:\.\d+)?|[a-z]+(?:-[a-z]+)?", re.IGNORECASE
)


def parse_number(text: str) -> float | None:
    """A whole string as a number ("3", "3.0", "1,000", "three", "twenty-one"), else None."""
    t = text.strip().lower().rstrip(".")
    if not t:
        return None
    try:
        return float(t.replace(",", ""))
    except ValueError:
        pass
    return _word_number(t)


def _word_number(t: str) -> float | None:
    if t in _UNITS:
        return float(_UNITS[t])
    if t in _TENS:
        return float(_TENS[t])
    parts = t.split("-")
    if len(parts) == 2 and parts[0] in _TENS and parts[1] in _UNITS and 0 < _UNITS[parts[1]] < 10:
        return float(_TENS[parts[0]] + _UNITS[parts[1]])
    return None


def first_number(text: str) -> float | None:
    """The first number in free text, digits or English number words."""
    for m in _NUM_TOKEN.finditer(text):
        tok = m.group(0)
        if tok[0].isdigit() or tok[0] in "+-":
            try:
                return float(tok.replace(",", ""))
            except ValueError:
                continue
        value = _word_number(tok.lower())
        if value is not None:
            return value
    return None


def _first_line(text: str) -> str:
    return next((ln for ln in text.splitlines() if ln.strip()), "")


def exact_match(output: str, targets: Sequence[str]) -> float:
    out = output.strip()
    return 1.0 if any(out == t.strip() for t in targets) else 0.0


def normalized_match(output: str, targets: Sequence[str]) -> float:
    cands = {normalize(output), normalize(_first_line(output))}
    cands.discard("")
    return 1.0 if any(normalize(t) in cands for t in targets) else 0.0


def numeric_match(output: str, targets: Sequence[str]) -> float | None:
    nums = [n for n in (parse_number(t) for t in targets) if n is not None]
    if not nums:
        return None
    got = first_number(output)
    if got is None:
        return 0.0
    return 1.0 if any(math.isclose(got, n, rel_tol=1e-9, abs_tol=1e-9) for n in nums) else 0.0


def score_generation(output: str, targets: Sequence[str]) -> dict:
    return {
        "output": output,
        "exact": exact_match(output, targets),
        "normalized": normalized_match(output, targets),
        "numeric": numeric_match(output, targets),
    }


MC_METRICS = ("loglik", "loglik_avg", "letter")
GEN_METRICS = ("exact", "normalized", "numeric")


def primary_metric(kind: str, available: Sequence[str], numeric_applicable: bool) -> str:
    """The metric shown in the table and chart: loglik for MC when the downstream model gives
    log-probs (else letter); numeric for generation when every target is a number, else
    normalized."""
    if kind == "multiple_choice":
        return "loglik" if "loglik" in available else "letter"
    return "numeric" if numeric_applicable else "normalized"
