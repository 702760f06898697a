"""Diversification: POP records -> SFT, DPO and IPL datasets, the FIPO paper's scheme
(reimplemented after LuJunru/FIPO_Project ``codes/generate_new_data.py``).

For each record, with one seeded ``random.Random`` (same seed, same records -> same output):

1. With probability ``mc_rate`` (0.5) and when both responses exist, the item becomes a
   two-option multiple choice: the naive prompt gets ``A: ...``/``B: ...`` options (silver and
   golden response in random order) and ``Answer:``; the golden response becomes its letter and
   the silver response the other letter, except that with probability ``label_noise`` (0.2) the
   silver letter is set to the golden one (the paper's label noise).
2. One of four case types: naive prompt only, + silver response, + golden response, + both
   (``CaseType`` NAIVE_ONLY, SILVER_MC/SILVER_GEN, GOLDEN, BOTH_MC/BOTH_GEN). A missing response
   degrades the case (the case type always says what the prompt really contains).
3. The word budget ``G_N`` is the word count of the chosen optimized prompt (as in the paper).
4. One extra IPL item: direct answering (ANSWER_MC/ANSWER_GEN: answer the naive prompt within
   the golden response's word count; chosen = golden, rejected = silver) or discrimination
   (DISCRIMINATE: the FIPO discriminator prompt with chosen/rejected as prompts A/B in random
   order; chosen = the letter of the chosen prompt).

Dataset rows (JSONL; ``prompt`` in the selected dialect):

* SFT: ``id``, ``case_type``, ``prompt``, ``completion``.
* DPO: ``id``, ``case_type``, ``prompt``, ``chosen``, ``rejected`` (records without a rejected
  prompt are SFT only).
* IPL: the DPO fields plus ``source_id`` (the POP record), ``naive_prompt`` (with options when
  multiple choice), ``raw_prompt`` (the original naive prompt), ``silver_response``,
  ``golden_response`` (letters when multiple choice), ``post_options`` (the appended options
  text) and ``item`` (``optimize``, ``answer`` or ``discriminate``).

Dialects: ``chat`` -> ``prompt`` is a list of chat messages built by ``build_chat_messages``
(extra IPL items: one user message with the Tulu markers removed) and completions are
``[{"role": "assistant", "content": ...}]`` (TRL's conversational format); ``fipo-original`` ->
``prompt`` is the Tulu-wrapped FIPO text and completions are plain strings (TRL's standard
format).
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.template import (
    TULU_ASSISTANT,
    TULU_USER,
    CaseType,
    Dialect,
    MetaPromptInput,
    build_answer_prompt,
    build_chat_messages,
    build_discriminator,
    build_fipo_original,
)
from training.pop import POPRecord, write_jsonl_atomic

Prompt = str | list[dict[str, str]]

# The two draws of the paper's script (``generate_new_data.py`` numbers them 0-3 and 4/5). They
# are *not* ``CaseType`` values (there 4/5 are BOTH_MC/BOTH_GEN): the first says which responses
# the optimizer is shown, and the case type is then derived from what the prompt really
# contains; the second picks the extra IPL item. ``rng.choice`` draws an index, so the values do
# not change the random stream.
SHOW_NAIVE_ONLY, SHOW_SILVER, SHOW_GOLDEN, SHOW_BOTH = 0, 1, 2, 3
RESPONSE_DRAWS = (SHOW_NAIVE_ONLY, SHOW_SILVER, SHOW_GOLDEN, SHOW_BOTH)
EXTRA_ANSWER, EXTRA_DISCRIMINATE = 4, 5
EXTRA_DRAWS = (EXTRA_ANSWER, EXTRA_DISCRIMINATE)


@dataclass
class Datasets:
    """The three datasets plus the case-type counts of each."""

    sft: list[dict[str, Any]] = field(default_factory=list)
    dpo: list[dict[str, Any]] = field(default_factory=list)
    ipl: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for name in ("sft", "dpo", "ipl"):
            c = Counter(CaseType(r["case_type"]).name for r in getattr(self, name))
            out[name] = {ct.name: c[ct.name] for ct in CaseType if c[ct.name]}
        if self.skipped:
            out["skipped"] = dict(self.skipped)
        return out


def _tulu_to_chat(text: str) -> list[dict[str, str]]:
    body = text.removeprefix(TULU_USER).removesuffix(TULU_ASSISTANT)
    return [{"role": "user", "content": body}]


def _completion(text: str, dialect: Dialect) -> Prompt:
    if dialect is Dialect.CHAT:
        return [{"role": "assistant", "content": text}]
    return text


def _optimizer_prompt(inp: MetaPromptInput, dialect: Dialect) -> Prompt:
    if dialect is Dialect.CHAT:
        return build_chat_messages(inp)
    return build_fipo_original(inp)


def _extra_prompt(tulu_text: str, dialect: Dialect) -> Prompt:
    return _tulu_to_chat(tulu_text) if dialect is Dialect.CHAT else tulu_text


def diversify(
    records: Iterable[POPRecord],
    *,
    seed: int = 2024,
    dialect: Dialect | str = Dialect.CHAT,
    mc_rate: float = 0.5,
    label_noise: float = 0.2,
) -> Datasets:
    """Build the SFT/DPO/IPL datasets from POP records; deterministic for a fixed ``seed``."""
    d = Dialect.parse(dialect)
    rng = random.Random(seed)
    out = Datasets()
    for rec in records:
        naive = rec.naive_prompt
        silver = rec.silver_response or None
        golden = rec.golden_response or None
        post_options = ""
        is_mc = False
        # 1. multiple choice between the silver and the golden response
        if rng.random() <= mc_rate and silver and golden:
            is_mc = True
            if rng.random() <= 0.5:
                post_options = f"\nA: {silver}\nB: {golden}\nAnswer:"
                golden, silver = "B", "A"
                if rng.random() <= label_noise:
                    silver = "B"
            else:
                post_options = f"\nA: {golden}\nB: {silver}\nAnswer:"
                golden, silver = "A", "B"
                if rng.random() <= label_noise:
                    silver = "A"
            naive = naive + post_options
        # 2. case type: which optional responses the optimizer sees
        shown = rng.choice(RESPONSE_DRAWS)
        use_silver = silver if shown in (SHOW_SILVER, SHOW_BOTH) else None
        use_golden = golden if shown in (SHOW_GOLDEN, SHOW_BOTH) else None
        budget = max(1, len(rec.chosen.split()))
        inp = MetaPromptInput(naive, use_silver, use_golden, max_words=budget)
        case = inp.case_type
        if is_mc and case is CaseType.SILVER_GEN:
            case = CaseType.SILVER_MC
        elif is_mc and case is CaseType.BOTH_GEN:
            case = CaseType.BOTH_MC
        prompt = _optimizer_prompt(inp, d)
        out.sft.append({"id": rec.id, "case_type": int(case), "prompt": prompt,
                        "completion": _completion(rec.chosen, d)})
        ipl_common = {
            "source_id": rec.id,
            "naive_prompt": naive,
            "raw_prompt": rec.naive_prompt,
            "silver_response": silver,
            "golden_response": golden,
            "post_options": post_options,
        }
        if rec.rejected:
            pair = {"id": rec.id, "case_type": int(case), "prompt": prompt,
                    "chosen": _completion(rec.chosen, d),
                    "rejected": _completion(rec.rejected, d)}
            out.dpo.append(pair)
            out.ipl.append({**pair, **ipl_common, "item": "optimize"})
        else:
            out.skipped["dpo_no_rejected"] += 1
        # 4. the extra IPL item: direct answering or discrimination
        extra = rng.choice(EXTRA_DRAWS)
        if extra == EXTRA_ANSWER:
            if not (golden and silver):
                out.skipped["answer_no_responses"] += 1
                continue
            text = build_answer_prompt(naive, max(1, len(golden.split())))
            out.ipl.append({
                "id": f"{rec.id}#answer",
                "case_type": int(CaseType.ANSWER_MC if is_mc else CaseType.ANSWER_GEN),
                "prompt": _extra_prompt(text, d),
                "chosen": _completion(golden, d),
                "rejected": _completion(silver, d),
                **ipl_common,
                "item": "answer",
            })
        else:
            if not rec.rejected:
                out.skipped["discriminate_no_rejected"] += 1
                continue
            if rng.random() <= 0.5:
                a, b, good, bad = rec.rejected, rec.chosen, "B", "A"
            else:
                a, b, good, bad = rec.chosen, rec.rejected, "A", "B"
            text = build_discriminator(naive, a, b, golden or "")
            out.ipl.append({
                "id": f"{rec.id}#judge",
                "case_type": int(CaseType.DISCRIMINATE),
                "prompt": _extra_prompt(text, d),
                "chosen": _completion(good, d),
                "rejected": _completion(bad, d),
                **ipl_common,
                "item": "discriminate",
            })
    return out


def write_datasets(data: Datasets, out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """``sft.jsonl``, ``dpo.jsonl``, ``ipl.jsonl`` and ``counts.json`` in ``out_dir``."""
    import json

    base = Path(out_dir)
    base.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in ("sft", "dpo", "ipl"):
        paths[name] = base / f"{name}.jsonl"
        write_jsonl_atomic(paths[name], getattr(data, name))
    paths["counts"] = base / "counts.json"
    paths["counts"].write_text(json.dumps(data.counts(), indent=2) + "\n", encoding="utf-8")
    return paths


def format_counts(counts: dict[str, dict[str, int]], splits: Sequence[str] = ("sft", "dpo", "ipl"))\
        -> str:
    """A small text table: one row per case type, one column per dataset."""
    names = [ct.name for ct in CaseType]
    lines = [f"{'case type':<14}" + "".join(f"{s:>7}" for s in splits)]
    for n in names:
        row = [counts.get(s, {}).get(n, 0) for s in splits]
        if any(row):
            lines.append(f"{n:<14}" + "".join(f"{v:>7}" for v in row))
    lines.append(f"{'total':<14}" + "".join(
        f"{sum(counts.get(s, {}).values()):>7}" for s in splits))
    return "\n".join(lines)
