"""How far can any instruction move the downstream? (issue 12's ceiling, measured.)

``fipo compile`` can only gain what the downstream model's answers give it to gain. This
benchmark puts three instructions in front of the same held-out examples, SmolLM2 downstream
(llama.cpp), the task's own metric, paired bootstrap against the naive instruction:

- ``naive``: the task's own instruction (what ``fipo compile`` starts from);
- ``none``: no instruction at all, only the example's input and options;
- ``demos``: the naive instruction plus three solved dev examples (inputs, options and golden
  answers) — more task information than any rewrite of the instruction can carry.

If neither removing the instruction nor adding solved examples moves accuracy, a rewritten
instruction has nothing to move either, and the compile gate rightly keeps the naive one.

    .venv/bin/python benchmarks/bench_instruction_sensitivity.py [--held-out 100] \\
        [--tasks navigate ...] [--output runs/sensitivity]

The dev sample and held-out examples are ``fipo compile``'s (``--dev-limit 40 --seed 0``);
answers are cached in ``DIR/cache`` (a rerun resumes); ``DIR/sensitivity.{json,md}`` are
rewritten after every task.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIGBENCH = REPO.parent / "shared" / "data" / "bigbench"
CONDITIONS = ("none", "demos")


def demonstrations(naive: str, dev_examples: list) -> str:
    """The naive instruction followed by solved dev examples, then the question's own input."""
    shots = []
    for ex in dev_examples:
        answer = ex.options[ex.correct[0]] if ex.is_mc else ex.targets[0]
        shots.append(f"{ex.fixed_part().strip()}\nAnswer: {answer}")
    return naive + "\n\nExamples:\n\n" + "\n\n".join(shots) + "\n\nNow the question:"


def render(rows: list[dict]) -> str:
    lines = ["| task | metric | n | naive | no instruction (Δ [95% CI]) | "
             "naive + 3 solved examples (Δ [95% CI]) |", "|---|---|---|---|---|---|"]
    for r in rows:
        cells = []
        for c in CONDITIONS:
            d = r[c]
            cells.append(f"{100 * d['value']:.1f} ({100 * d['diff']:+.1f} "
                         f"[{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}])")
        lines.append(f"| {r['task']} | {r['metric']} | {r['n']} | "
                     f"{100 * r['naive']:.1f} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    from evaluation.cache import JsonlCache
    from evaluation.compile import (
        Item,
        Scorer,
        _render_task,
        _scores,
        default_metric,
        held_out,
        score_instruction,
        split_dev,
        task_instruction,
    )
    from evaluation.downstream import LlamaCppDownstream
    from evaluation.stats import paired_bootstrap
    from evaluation.tasks import load_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--held-out", type=int, default=100)
    ap.add_argument("--dev-limit", type=int, default=40)
    ap.add_argument("--shots", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--output", default="runs/sensitivity")
    ap.add_argument("--n-threads", type=int, default=2)
    a = ap.parse_args()

    out = Path(a.output)
    out.mkdir(parents=True, exist_ok=True)
    ds = LlamaCppDownstream(name="smollm2", n_threads=a.n_threads)
    cache = JsonlCache(out / "cache" / "responses.jsonl")
    paths = sorted(BIGBENCH.glob("*.json"))
    if a.tasks:
        paths = [p for p in paths if p.stem in a.tasks]
    rows: list[dict] = []
    for path in paths:
        task = load_task(path, seed=a.seed)
        naive = task_instruction(task, None)
        dev = split_dev(task, a.dev_limit, a.seed)
        rest = held_out(task, dev, a.held_out, a.seed)
        metric = default_metric(task, ds)
        scorer = Scorer(ds, metric, cache)
        items = [Item(ex) for ex in rest.examples]
        t0, calls0 = time.perf_counter(), ds.calls
        base = _scores(score_instruction(scorer, naive, items, _render_task))
        row: dict = {"task": task.name, "metric": metric, "n": len(items),
                     "naive": sum(base) / len(base)}
        # No instruction: the fixed part starts with a blank line, which would lead the prompt.
        none = [scorer.score(it.example.fixed_part().lstrip("\n"), it) for it in items]
        shots = demonstrations(naive, list(dev.examples[: a.shots]))
        demo = score_instruction(scorer, shots, items, _render_task)
        for name, scored in (("none", _scores(none)), ("demos", _scores(demo))):
            row[name] = paired_bootstrap(base, scored, seed=a.seed).to_dict()
        row |= {"wall_s": round(time.perf_counter() - t0, 1), "calls": ds.calls - calls0,
                "demos_instruction": shots}
        rows.append(row)
        tmp = out / "sensitivity.json.tmp"
        tmp.write_text(json.dumps(rows, indent=2), encoding="utf-8")
        tmp.replace(out / "sensitivity.json")
        (out / "sensitivity.md").write_text(render(rows), encoding="utf-8")
        print(render(rows[-1:]).splitlines()[-1], f"({row['wall_s']} s)", flush=True)


if __name__ == "__main__":
    main()
