"""Intrinsic optimizer metrics on prompt pairs (BPO format: ``prompt`` = naive prompt,
``optimized_prompt`` = the reference rewrite, ``reference_rewrite`` in the rows;
``good_res``/``bad_res`` are ignored). Not a seed prompt's ``reference``
(``training.pop.SeedPrompt``: a reference *answer*, used as the golden response): this is a
rewrite of the prompt, the target of ROUGE-L.

For each optimizer, every naive prompt is optimized and the optimizer's own rewrite (its parsed
output, before any fallback to the naive prompt) is measured:

- ``usable``: ``fipo_middleware.guard.check_rewrite`` passes (the one usable-rewrite
  definition); a backend failure or refused prompt counts as not usable;
- ``served``: the share the optimizer actually served (no fallback): a verified optimizer
  writes usable rewrites and still serves the naive prompt when the verifier does not back them;
- faithfulness: the share of the naive prompt's numbers (``numbers_in``), quoted strings
  (``quoted_in``) and option labels (``option_labels_in``) the rewrite keeps, each over the
  pairs that have any, and ``faithful`` = all of them kept;
- ``rouge_l``: ROUGE-L F1 against the reference rewrite (``rouge-score``);
- ``embedding_cosine`` (optional, ``similarity=`` callable): e.g. MiniLM embeddings.

The identity baseline (the naive prompt unchanged) is always reported too.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evaluation.cache import JsonlCache, content_key
from evaluation.optimizers import NAIVE, OptimizerSpec
from fipo_middleware.errors import DataFormatError
from fipo_middleware.guard import check_rewrite, numbers_in, option_labels_in, quoted_in
from fipo_middleware.jsonl import write_jsonl_atomic
from fipo_middleware.template import MetaPromptInput


def load_pairs(path: str | os.PathLike[str], limit: int | None = None) -> list[dict[str, str]]:
    """A BPO-style JSON list (or JSONL) of ``{prompt, optimized_prompt, ...}``, or POP JSONL
    (``naive_prompt``, ``chosen``), as ``{id, prompt, reference_rewrite}``."""
    p = Path(path)
    if not p.is_file():
        raise DataFormatError(f"{p}: pairs file not found")
    text = p.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if p.suffix != ".jsonl" else [
            json.loads(ln) for ln in text.splitlines() if ln.strip()]
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{p}:{e.lineno}: invalid JSON ({e.msg})") from None
    if not isinstance(rows, list):
        raise DataFormatError(f"{p}: expected a JSON list of objects")
    out = []
    for i, row in enumerate(rows):
        where = f"{p}: item {i}"
        if not isinstance(row, dict):
            raise DataFormatError(f"{where}: expected an object")
        # POP records (naive_prompt / chosen) work too, e.g. the seed dev split.
        if "prompt" not in row and "naive_prompt" in row:
            row = {**row, "prompt": row["naive_prompt"], "optimized_prompt": row.get("chosen")}
        for fld in ("prompt", "optimized_prompt"):
            if not isinstance(row.get(fld), str) or not row[fld].strip():
                raise DataFormatError(f"{where}: field {fld!r} is missing or empty")
        out.append({"id": str(row.get("id", i)), "prompt": row["prompt"],
                    "reference_rewrite": row["optimized_prompt"]})
    return out[:limit] if limit else out


def _kept(naive_items: Sequence[str] | set[str], rewrite_items: Sequence[str] | set[str]
          ) -> float | None:
    items = set(naive_items)
    if not items:
        return None
    return len(items & set(rewrite_items)) / len(items)


def faithfulness(naive: str, rewrite: str) -> dict[str, float | None]:
    nums = _kept(numbers_in(naive), numbers_in(rewrite))
    quotes = None
    q = quoted_in(naive)
    if q:
        quotes = sum(1 for s in set(q) if s in rewrite) / len(set(q))
    labels = _kept(option_labels_in(naive), option_labels_in(rewrite))
    present = [x for x in (nums, quotes, labels) if x is not None]
    return {
        "numbers_kept": nums,
        "quotes_kept": quotes,
        "options_kept": labels,
        "faithful": 1.0 if all(x == 1.0 for x in present) else 0.0,
    }


def _rouge() -> Callable[[str, str], float]:
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    return lambda reference_rewrite, rewrite: float(
        scorer.score(reference_rewrite, rewrite)["rougeL"].fmeasure) if rewrite.strip() else 0.0


def _rewrite_of(opt: Any, naive: str) -> tuple[str, dict[str, Any]]:
    """The optimizer's own rewrite, even when the guard or the verifier turned it down (then
    the middleware serves the naive prompt; here we measure what the optimizer wrote)."""
    result = opt.optimize(naive)
    budget = MetaPromptInput(naive, None, None, opt.max_words).budget
    info = {**result.to_dict(), "budget": budget}
    if not result.used_fallback:
        return result.optimized_prompt, info
    if result.rejected_rewrite is not None:
        return result.rejected_rewrite, info
    return "", info  # backend failure / refused prompt: nothing written


def run_prompt_eval(
    pairs_path: str | os.PathLike[str],
    optimizers: Sequence[OptimizerSpec],
    *,
    output: str | os.PathLike[str] | None = None,
    limit: int | None = None,
    similarity: Callable[[str, str], float] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Intrinsic metrics per optimizer (the identity baseline ``naive`` always included)."""
    from tqdm import tqdm

    started = time.perf_counter()
    pairs = load_pairs(pairs_path, limit)
    specs = list(optimizers)
    if not any(s.is_naive for s in specs):
        specs.insert(0, OptimizerSpec(NAIVE, NAIVE))
    rouge = _rouge()
    out_dir = Path(output) if output else None
    cache = JsonlCache(out_dir / "cache" / "rewrites.jsonl") if out_dir else None
    rows: list[dict[str, Any]] = []
    for spec in specs:
        for pair in tqdm(pairs, desc=f"rewriting ({spec.name})", unit="prompt",
                         disable=not progress):
            naive = pair["prompt"]
            if spec.is_naive:
                rewrite, info = naive, {"used_fallback": False, "fallback_reason": None}
            else:
                key = content_key("rewrite", spec.key, naive)
                hit = cache.get(key) if cache is not None else None
                if hit is None:
                    rewrite, info = _rewrite_of(spec.get(), naive)
                    if cache is not None:
                        cache.put(key, {"rewrite": rewrite, "info": info})
                else:
                    rewrite, info = hit["rewrite"], hit["info"]
            budget = None if spec.is_naive else info.get("budget")
            guard = check_rewrite(naive, rewrite, budget) if rewrite.strip() else None
            row = {
                "id": pair["id"], "optimizer": spec.name, "naive_prompt": naive,
                "reference_rewrite": pair["reference_rewrite"], "rewrite": rewrite,
                "usable": 1.0 if guard is not None and guard.usable else 0.0,
                "guard_reasons": list(guard.reasons) if guard is not None else ["empty"],
                "fallback_reason": info.get("fallback_reason"),
                # What reaches the downstream model: the rewrite, or (a fallback) the prompt.
                "served": None if spec.is_naive else float(not info.get("used_fallback")),
                "rouge_l": rouge(pair["reference_rewrite"], rewrite),
                **faithfulness(naive, rewrite),
            }
            if similarity is not None:
                row["embedding_cosine"] = float(similarity(pair["reference_rewrite"], rewrite))
            rows.append(row)
    metrics = ["usable", "served", "faithful", "numbers_kept", "quotes_kept", "options_kept",
               "rouge_l"]
    if similarity is not None:
        metrics.append("embedding_cosine")
    summary: dict[str, Any] = {"pairs": str(pairs_path), "n": len(pairs), "optimizers": []}
    for spec in specs:
        mine = [r for r in rows if r["optimizer"] == spec.name]
        entry: dict[str, Any] = {"name": spec.name, "key": spec.key}
        for m in metrics:
            vals = [r[m] for r in mine if r[m] is not None]
            entry[m] = round(sum(vals) / len(vals), 4) if vals else None
            entry[f"{m}_n"] = len(vals)
        entry["guard_reasons"] = dict(Counter(x for r in mine for x in r["guard_reasons"]))
        summary["optimizers"].append(entry)
    summary["wall_s"] = round(time.perf_counter() - started, 3)
    if out_dir:
        write_jsonl_atomic(out_dir / "prompt_examples.jsonl", rows)
        (out_dir / "prompt_summary.json").write_text(
            json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (out_dir / "prompt_report.md").write_text(render_prompt_markdown(summary),
                                                  encoding="utf-8")
    summary["rows"] = rows
    return summary


def render_prompt_markdown(summary: dict[str, Any]) -> str:
    cols = ["usable", "served", "faithful", "numbers_kept", "quotes_kept", "options_kept",
            "rouge_l"]
    if any("embedding_cosine" in e for e in summary["optimizers"]):
        cols.append("embedding_cosine")
    lines = [f"# Intrinsic optimizer metrics ({summary['n']} pairs from {summary['pairs']})", "",
             "| optimizer | " + " | ".join(cols) + " | top guard reasons |",
             "|---|" + "---|" * (len(cols) + 1)]
    for e in summary["optimizers"]:
        cells = ["–" if e[c] is None else f"{e[c]:.3f} (n={e[c + '_n']})" for c in cols]
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(
            e["guard_reasons"].items(), key=lambda kv: -kv[1])[:3]) or "–"
        lines.append(f"| {e['name']} | " + " | ".join(cells) + f" | {reasons} |")
    lines.append("")
    return "\n".join(lines)
