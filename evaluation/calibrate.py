"""``fipo calibrate-verifier``: choose ``FIPOOptimizer.verifier_margin`` from judged runs.

A judged run (``fipo eval-judge`` of one optimizer against ``naive``) says, per dev prompt,
whether the rewrite won, tied or lost. A verifier with margin ``t`` serves the rewrite only when
``score(rewrite) - score(naive) > t``, and the naive prompt (a tie by definition) otherwise, so
the served outcome of every ``t`` can be read off the judged verdicts with no new judging:

- the margin is the one whose served losses stay at or under ``--max-loss`` (share of all
  prompts) with the most wins net of losses (then fewest losses, then most served), so a run
  with no net gain to offer serves nothing;
- the figure that can be quoted is the cross-validated one: the prompts are split in ``--folds``
  seeded folds, each fold's margin chosen on the others and its outcomes counted on it.

The verdicts combine two judges as ``fipo eval-judge`` does (they disagree -> tie). Files in
``--output``: ``calibration.json`` (margin, per-run curve, cross-validated outcomes) and
``calibration.md``.
"""

from __future__ import annotations

import json
import math
import random
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evaluation.judge import (
    combine,
    file_source,
    import_verdicts,
    load_prompts,
    make_pairs,
    outcomes,
    wilson,
)
from fipo_middleware.errors import DataFormatError
from fipo_middleware.jsonl import iter_jsonl


def judged_rows(prompts_path: str | Path, texts_path: str | Path,
                verdict_paths: Sequence[str | Path], *, seed: int = 0,
                first_try_only: bool = False) -> list[dict[str, Any]]:
    """One row per dev prompt: ``naive``, ``candidate`` (the judged run's text), ``outcome`` of
    the candidate against the naive prompt (judges combined), ``task_changed``, ``category``.

    The pairs are rebuilt with ``make_pairs(seed)`` exactly as ``fipo eval-judge`` exported
    them, so verdict files written against that export line up without the key.

    ``first_try_only``: the run as ``retries=0`` would have served it: a text that took more
    than one try (``attempts`` > 1 in the texts file) becomes the naive prompt (a tie)."""
    if not verdict_paths:
        raise DataFormatError(f"{texts_path}: a judged run needs at least one verdicts file")
    prompts = load_prompts(prompts_path)
    get = file_source(texts_path)
    first = {p.id: get(p) for p in prompts}
    second = {p.id: {"text": p.prompt} for p in prompts}
    _, key = make_pairs(prompts, first, second, seed)
    per_judge = [outcomes(key, import_verdicts(v, key)) for v in verdict_paths]
    naive = {p.id: p.prompt for p in prompts}
    attempts = {str(row.get("id")): row.get("attempts") for _, row in
                iter_jsonl(texts_path, "source texts")}
    rows = []
    for r in combine(per_judge):
        row = {"id": r["id"], "category": r["category"], "naive": naive[r["id"]],
               "candidate": first[r["id"]]["text"], "outcome": r["outcome"],
               "task_changed": bool(r["task_changed"]), "identical": bool(r.get("identical"))}
        if first_try_only and (attempts.get(r["id"]) or 1) > 1 and not row["identical"]:
            row.update(candidate=naive[r["id"]], outcome="tie", task_changed=False,
                       identical=True)
        rows.append(row)
    return rows


def score_margins(verifier: Any, rows: Sequence[dict[str, Any]]) -> list[float]:
    """``score(candidate) - score(naive)`` per row; ``-inf`` where the run served the naive
    prompt (nothing to verify)."""
    out: list[float] = []
    for r in rows:
        if r["identical"]:
            out.append(-math.inf)
            continue
        s_naive, s_cand = verifier.score(r["naive"], [r["naive"], r["candidate"]])
        out.append(s_cand - s_naive)
    return out


def served(rows: Sequence[dict[str, Any]], margins: Sequence[float], t: float) -> Counter[str]:
    """Outcome counts when rewrites with margin > t are served and the rest pass naive."""
    c: Counter[str] = Counter()
    for r, m in zip(rows, margins, strict=True):
        if m > t and r["outcome"] != "skip":
            c[r["outcome"]] += 1
            c["served"] += 1
            c["task_changed"] += r["task_changed"]
        else:
            c["tie"] += 1
    c["n"] = len(rows)
    return c


def choose_margin(rows: Sequence[dict[str, Any]], margins: Sequence[float],
                  max_loss: float) -> float:
    """The threshold with losses <= max_loss * n and the most wins net of losses; then the
    fewest losses, then the most served. A rewrite set with no net gain serves nothing: a
    verifier must not spend the loss budget on rewrites that are no better."""
    finite = sorted({m for m in margins if math.isfinite(m)})
    # Thresholds between observed margins are equivalent to the margin just below; try each
    # observed margin (serve everything above it) and one below all of them (serve all).
    grid = [finite[0] - 1.0, *finite] if finite else [0.0]
    best: tuple[int, int, int, float] | None = None
    for t in grid:
        c = served(rows, margins, t)
        if c["lose"] > max_loss * len(rows):
            continue
        cand = (c["win"] - c["lose"], -c["lose"], c["served"], -t)
        if best is None or cand > best:
            best = cand
    # Serving nothing (t = the largest margin) always meets any max_loss >= 0.
    return -best[3] if best is not None else (finite[-1] if finite else 0.0)


def cross_validate(rows: Sequence[dict[str, Any]], margins: Sequence[float], max_loss: float,
                   folds: int = 2, seed: int = 0) -> dict[str, Any]:
    """Each fold judged with the margin chosen on the other folds: an out-of-sample figure."""
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    parts = [idx[i::folds] for i in range(folds)]
    total: Counter[str] = Counter()
    chosen = []
    for k, test in enumerate(parts):
        train = [i for j, p in enumerate(parts) if j != k for i in p]
        t = choose_margin([rows[i] for i in train], [margins[i] for i in train], max_loss)
        chosen.append(t)
        total += served([rows[i] for i in test], [margins[i] for i in test], t)
    return {"margins": chosen, **_rates(total)}


def _rates(c: Counter[str]) -> dict[str, Any]:
    n = c["n"]
    out: dict[str, Any] = {"n": n, "served": c["served"]}
    for o in ("win", "tie", "lose", "task_changed"):
        lo, hi = wilson(c[o], n)
        out[o] = {"count": c[o], "rate": round(c[o] / n, 4) if n else None,
                  "ci": [round(lo, 4), round(hi, 4)]}
    return out


def auc(rows: Sequence[dict[str, Any]], margins: Sequence[float]) -> float | None:
    """How well the margin ranks judged non-losses above losses (0.5 = chance)."""
    pos = [m for r, m in zip(rows, margins, strict=True)
           if math.isfinite(m) and r["outcome"] in ("win", "tie")]
    neg = [m for r, m in zip(rows, margins, strict=True)
           if math.isfinite(m) and r["outcome"] == "lose"]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return round(wins / (len(pos) * len(neg)), 4)


def calibrate(runs: dict[str, list[dict[str, Any]]], verifier: Any, *, max_loss: float = 0.10,
              folds: int = 2, seed: int = 0) -> dict[str, Any]:
    """Per run: margins, the in-sample margin and curve, the cross-validated outcomes; then one
    margin for all runs pooled (what ``verifier_margin`` should be set to)."""
    report: dict[str, Any] = {"max_loss": max_loss, "folds": folds, "seed": seed, "runs": {}}
    pooled_rows: list[dict[str, Any]] = []
    pooled_m: list[float] = []
    for name, rows in runs.items():
        m = score_margins(verifier, rows)
        t = choose_margin(rows, m, max_loss)
        report["runs"][name] = {
            "auc_nonloss_vs_loss": auc(rows, m),
            "unverified": _rates(served(rows, m, -math.inf)),
            "in_sample": {"margin": round(t, 4), **_rates(served(rows, m, t))},
            "cross_validated": cross_validate(rows, m, max_loss, folds, seed),
            "margins": [{"id": r["id"], "outcome": r["outcome"],
                         "margin": None if not math.isfinite(x) else round(x, 4)}
                        for r, x in zip(rows, m, strict=True)],
        }
        pooled_rows += rows
        pooled_m += m
    report["verifier_margin"] = round(choose_margin(pooled_rows, pooled_m, max_loss), 4)
    return report


def _cell(t: dict[str, Any]) -> str:
    lo, hi = t["ci"]
    return f"{t['count']} ({100 * t['rate']:.0f} %, {100 * lo:.0f}–{100 * hi:.0f})"


def render_markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Verifier calibration", "",
        f"Target: served losses <= {100 * report['max_loss']:.0f} % of prompts. Margin for "
        f"`verifier_margin` (all runs pooled): **{report['verifier_margin']:+.4f}**.", "",
        "| run | setting | served | win | tie | lose | task changed |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r in report["runs"].items():
        for label, t in (("no verifier", r["unverified"]),
                         (f"in-sample margin {r['in_sample']['margin']:+.3f}", r["in_sample"]),
                         (f"{report['folds']}-fold cross-validated", r["cross_validated"])):
            lines.append(f"| {name} | {label} | {t['served']}/{t['n']} | {_cell(t['win'])} | "
                         f"{_cell(t['tie'])} | {_cell(t['lose'])} | {_cell(t['task_changed'])} |")
    lines += ["", "AUC of the margin, judged non-loss vs loss: "
              + ", ".join(f"{n} {r['auc_nonloss_vs_loss']}" for n, r in report["runs"].items()),
              ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    from evaluation.report import _write_text_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "calibration.json", "markdown": out / "calibration.md"}
    _write_text_atomic(files["json"], json.dumps(report, indent=2) + "\n")
    _write_text_atomic(files["markdown"], render_markdown(report))
    return files


def parse_run(spec: str) -> tuple[str, Path, list[Path]]:
    """``NAME=TEXTS:VERDICTS[:VERDICTS...]`` (a judged run's texts and its judges' files)."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(":") if sep else []
    if not sep or not name or len(parts) < 2:
        raise DataFormatError(f"--run {spec!r}: expected NAME=TEXTS.jsonl:VERDICTS.jsonl[:...]")
    for p in parts:
        if not Path(p).is_file():
            raise DataFormatError(f"--run {name}: no file {p}")
    return name, Path(parts[0]), [Path(p) for p in parts[1:]]


def load_runs(prompts_path: str | Path, specs: Sequence[str], seed: int = 0,
              first_try_only: bool = False) -> dict[str, list[dict[str, Any]]]:
    runs: dict[str, list[dict[str, Any]]] = {}
    for spec in specs:
        name, texts, verdicts = parse_run(spec)
        runs[name] = judged_rows(prompts_path, texts, verdicts, seed=seed,
                                 first_try_only=first_try_only)
    return runs


__all__ = ["auc", "calibrate", "choose_margin", "cross_validate", "judged_rows", "load_runs",
           "render_markdown", "score_margins", "served", "write_report"]
