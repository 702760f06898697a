"""Reports of an evaluation run: ``examples.jsonl`` (every example's prompt, output and scores),
``summary.json``, ``report.md`` (tables) and ``chart.png`` (accuracy per task x optimizer x
downstream model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fipo_middleware.jsonl import write_jsonl_atomic, write_text_atomic


def _write_text_atomic(path: Path, text: str) -> None:
    write_text_atomic(path, text)


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _diff(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"{100 * d['diff']:+.1f} [{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}]"


def _names(summary: dict[str, Any], key: str) -> list[str]:
    return [x["name"] for x in summary["config"][key]]


def render_markdown(summary: dict[str, Any]) -> str:
    """Per downstream model: one row per task with its primary metric, each optimizer's accuracy
    (%) and its difference vs naive with a paired-bootstrap 95% CI (percentage points)."""
    optimizers = _names(summary, "optimizers")
    others = [o for o in optimizers if o != "naive"]
    lines: list[str] = ["# Evaluation report", ""]
    cfg = summary["config"]
    lines.append(
        f"Seed {cfg['seed']}, limit {cfg['limit']}, tasks: "
        + ", ".join(f"{t['name']} (n={t['n']})" for t in cfg["tasks"])
        + ". Accuracy in %; Δ = optimizer − naive in points, 95% paired-bootstrap CI."
    )
    lines.append("")
    for ds in _names(summary, "downstream"):
        lines += [f"## Downstream: {ds}", ""]
        head = ["task", "metric", "n", *optimizers, *(f"Δ {o}" for o in others)]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        rows = [r for r in summary["results"] if r["downstream"] == ds and r["primary"]]
        for t in [t["name"] for t in cfg["tasks"]]:
            cells = {r["optimizer"]: r for r in rows if r["task"] == t}
            if not cells:
                continue
            any_row = next(iter(cells.values()))
            line = [t, any_row["metric"], str(any_row["n"])]
            line += [_pct(cells[o]["accuracy"]) if o in cells else "–" for o in optimizers]
            line += [_diff(cells[o]["vs_naive"]) if o in cells else "–" for o in others]
            lines.append("| " + " | ".join(line) + " |")
        ov = {r["optimizer"]: r for r in summary["overall"] if r["downstream"] == ds}
        if ov:
            line = ["**macro avg**", "primary", str(next(iter(ov.values()))["n_tasks"]) + " tasks"]
            line += [_pct(ov[o]["accuracy"]) if o in ov else "–" for o in optimizers]
            line += [_diff(ov[o]["vs_naive"]) if o in ov else "–" for o in others]
            lines.append("| " + " | ".join(line) + " |")
        lines.append("")
        lines += ["All metrics:", ""]
        head2 = ["task", "metric", *optimizers]
        lines.append("| " + " | ".join(head2) + " |")
        lines.append("|" + "---|" * len(head2))
        allrows = [r for r in summary["results"] if r["downstream"] == ds]
        seen: list[tuple[str, str]] = []
        for r in allrows:
            if (r["task"], r["metric"]) not in seen:
                seen.append((r["task"], r["metric"]))
        for t, m in seen:
            cells = {r["optimizer"]: r for r in allrows if r["task"] == t and r["metric"] == m}
            lines.append("| " + " | ".join(
                [t, m, *(_pct(cells[o]["accuracy"]) if o in cells else "–" for o in optimizers)]
            ) + " |")
        lines.append("")
    fb = summary.get("optimized_instructions", [])
    if fb:
        lines += ["## Optimized instructions", "",
                  "| optimizer | naive instruction | optimized instruction | fallback |",
                  "|---|---|---|---|"]
        for r in fb:
            def cell(s: str) -> str:
                s = " ".join(s.split()).replace("|", "\\|")
                return s if len(s) <= 120 else s[:117] + "..."
            lines.append(
                f"| {r['optimizer']} | {cell(r['naive_instruction'])} | "
                f"{cell(r['optimized_instruction'])} | {r['fallback_reason'] or 'no'} |"
            )
        lines.append("")
    tm = summary.get("timing", {})
    if tm:
        lines.append(
            f"Wall time {tm.get('wall_s')} s, {tm.get('rows')} scored rows "
            f"({tm.get('rows_per_s')} rows/s), model calls {tm.get('model_calls')}."
        )
        lines.append("")
    return "\n".join(lines)


def render_chart(summary: dict[str, Any], path: Path) -> None:
    """Grouped bars: one panel per downstream model, tasks (and the macro average) on x, one
    bar per optimizer, the task's primary metric on y."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    optimizers = _names(summary, "optimizers")
    models = _names(summary, "downstream")
    tasks = [t["name"] for t in summary["config"]["tasks"]]
    cols = [*tasks, "macro avg"]
    fig, axes = plt.subplots(
        len(models), 1, figsize=(max(6.0, 1.25 * len(cols) * max(1, len(optimizers)) / 2 + 2),
                                 3.6 * len(models)),
        squeeze=False,
    )
    width = 0.8 / max(1, len(optimizers))
    for ax, ds in zip(axes[:, 0], models, strict=True):
        for j, opt in enumerate(optimizers):
            vals = []
            for t in tasks:
                row = next((r for r in summary["results"] if r["downstream"] == ds
                            and r["optimizer"] == opt and r["task"] == t and r["primary"]), None)
                vals.append(100 * row["accuracy"] if row and row["accuracy"] is not None else 0.0)
            ov = next((r for r in summary["overall"]
                       if r["downstream"] == ds and r["optimizer"] == opt), None)
            vals.append(100 * ov["accuracy"] if ov else 0.0)
            xs = [i + (j - (len(optimizers) - 1) / 2) * width for i in range(len(cols))]
            bars = ax.bar(xs, vals, width, label=opt)
            ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
        ax.set_xticks(range(len(cols)))
        ax.set_xticklabels([c.replace("_", "\n", 1) for c in cols], fontsize=8)
        ax.set_ylim(0, 105)
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"downstream: {ds} (primary metric per task)", fontsize=10)
        ax.legend(fontsize=8, ncols=len(optimizers), loc="upper right")
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_run_files(
    out_dir: Path,
    names: tuple[str, str],
    rows: list[dict[str, Any]],
    summary: dict[str, Any],
    markdown: str,
    chart: Any = None,
) -> dict[str, Path]:
    """Atomically write a run's rows (JSONL), summary (JSON), ``report.md`` and, when
    ``chart(summary, path)`` is given, ``chart.png``. ``names``: (rows key, summary key) of
    the returned file map, also the stems of those files."""
    rows_key, summary_key = names
    files = {
        rows_key: out_dir / f"{rows_key}.jsonl",
        summary_key: out_dir / f"{summary_key}.json",
        "markdown": out_dir / "report.md",
    }
    write_jsonl_atomic(files[rows_key], rows)
    _write_text_atomic(files[summary_key],
                       json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    _write_text_atomic(files["markdown"], markdown)
    if chart is not None:
        files["chart"] = out_dir / "chart.png"
        chart(summary, files["chart"])
    return files


def write_reports(
    out_dir: Path, records: list[dict[str, Any]], summary: dict[str, Any], *, chart: bool = True
) -> dict[str, Path]:
    return write_run_files(out_dir, ("examples", "summary"), records, summary,
                           render_markdown(summary), render_chart if chart else None)
