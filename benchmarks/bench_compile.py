"""Measurement of ``fipo compile`` (issue 12): every BIG-bench task in ../shared/data/bigbench,
SmolLM2 downstream (llama.cpp), the trained default optimizer, compiled on a seeded dev sample,
then naive vs compiled on held-out examples the compile never saw, with paired intervals.

    .venv/bin/python benchmarks/bench_compile.py [--dev-limit 40] [--candidates 8] \\
        [--held-out 100] [--forms rewrite,append] [--output runs/compile-bigbench]

Each task's compile is exactly ``fipo compile TASK --dev-limit N --candidates K --seed 0
--n-threads 2 --output DIR/TASK``; the held-out answers go to the same cache, so a rerun
resumes. Writes ``DIR/heldout.json`` and ``DIR/heldout.md`` after every task.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIGBENCH = REPO.parent / "shared" / "data" / "bigbench"


def _row_md(r: dict) -> str:
    d = r["vs_naive"]
    return (f"| {r['task']} | {r['metric']} | {r['n']} | {100 * d['baseline']:.1f} | "
            f"{100 * d['value']:.1f} | {100 * d['diff']:+.1f} [{100 * d['ci_low']:+.1f}, "
            f"{100 * d['ci_high']:+.1f}] | {r['dev_gain']} | {r['compile_min']:.2f} | "
            f"{r['compile_calls']} | {r['heldout_calls']} |")


def render(rows: list[dict], macro: dict | None) -> str:
    lines = ["| task | metric | held-out n | naive | compiled | Δ points [95% CI] | "
             "dev gain of the chosen | compile min | compile downstream calls | "
             "held-out calls |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [_row_md(r) for r in rows]
    if macro:
        lines.append(f"| **macro avg** | primary | {len(rows)} tasks | "
                     f"{100 * macro['baseline']:.1f} | {100 * macro['value']:.1f} | "
                     f"{100 * macro['diff']:+.1f} [{100 * macro['ci_low']:+.1f}, "
                     f"{100 * macro['ci_high']:+.1f}] | | | | |")
    lines += ["", "Compiled instructions:", ""]
    lines += [f"- {r['task']} ({r.get('n_candidates')} candidates, {r.get('n_append', 0)} in "
              f"append form; chosen: {r.get('chosen_form')}): {r['chosen_reason']} — "
              f"`{r['compiled_instruction']}`" for r in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    from evaluation.compile import compile_task, evaluate_held_out
    from evaluation.downstream import LlamaCppDownstream
    from evaluation.optimizers import parse_optimizer
    from evaluation.stats import paired_bootstrap

    ap = argparse.ArgumentParser()
    ap.add_argument("--dev-limit", type=int, default=40)
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--held-out", type=int, default=100)
    ap.add_argument("--output", default="runs/compile-bigbench")
    ap.add_argument("--tasks", nargs="*", default=None)
    ap.add_argument("--forms", default="rewrite,append", help="as fipo compile --forms")
    args = ap.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    ds = LlamaCppDownstream(name="smollm2", n_threads=2)
    opt = parse_optimizer("fipo", n_threads=2)
    paths = sorted(BIGBENCH.glob("*.json"))
    if args.tasks:
        # In the order given: cheapest first yields finished rows early on a busy machine.
        paths = [BIGBENCH / f"{t}.json" for t in args.tasks]
    rows: list[dict] = []
    macro = None
    for path in paths:
        t0 = time.perf_counter()
        calls0 = ds.calls
        rep = compile_task(path, dev_limit=args.dev_limit, candidates=args.candidates, seed=0,
                           downstream=ds, optimizer=opt, output=out / path.stem, progress=False,
                           forms=tuple(args.forms.split(",")))
        compile_s = time.perf_counter() - t0
        compile_calls = ds.calls - calls0
        ho = evaluate_held_out(path, rep, downstream=ds, limit=args.held_out, seed=0,
                               output=out / path.stem)
        chosen = next(c for c in rep.candidates if c["chosen"])
        rows.append({**ho, "compiled_instruction": rep.compiled,
                     "chosen_reason": rep.chosen_reason,
                     "dev_gain": "–" if chosen["gain"] is None else
                     f"{100 * chosen['gain']['diff']:+.1f}",
                     "compile_min": compile_s / 60, "compile_calls": compile_calls,
                     "compile_cost": rep.summary["cost"],
                     "heldout_calls": ho["downstream_calls"],
                     "n_candidates": len(rep.candidates) - 1,
                     "n_append": sum(c.get("form") == "append" for c in rep.candidates),
                     "chosen_form": chosen.get("form", "naive")})
        macro = paired_bootstrap([r["naive"] for r in rows], [r["compiled"] for r in rows],
                                 seed=0).to_dict()
        (out / "heldout.json").write_text(json.dumps({"rows": rows, "macro": macro}, indent=1))
        (out / "heldout.md").write_text(render(rows, macro))
        print(f"{path.stem}: compile {compile_s:.0f} s, {compile_calls} calls; held-out "
              f"{ho['vs_naive']}", flush=True)


if __name__ == "__main__":
    main()
