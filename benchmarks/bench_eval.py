"""Benchmark of ``fipo eval``: every BIG-bench task in ../shared/data/bigbench, naive vs the
untuned base optimizer, SmolLM2 (llama.cpp) downstream, loglik + letter scorers for multiple
choice.

    flock /tmp/fipo-cpu.lock .venv/bin/python -m pytest benchmarks/bench_eval.py --benchmark-only
    flock /tmp/fipo-cpu.lock .venv/bin/python benchmarks/bench_eval.py [--limit 50] [--output DIR]

The script form also copies the chart to docs/img/eval_bigbench.png and prints the numbers
recorded in docs/EVALUATION.md. ``FIPO_BENCH_LIMIT`` sets the examples per task (default 50).
A fresh output folder is used each time: the cache would otherwise turn it into a no-op.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIGBENCH = REPO.parent / "shared" / "data" / "bigbench"


def run(limit: int, output: Path, n_threads: int | None = 2):
    from evaluation import LlamaCppDownstream, parse_optimizer, run_eval

    tasks = sorted(BIGBENCH.glob("*.json"))
    if not tasks:
        raise SystemExit(f"no BIG-bench tasks in {BIGBENCH}")
    return run_eval(
        tasks,
        [parse_optimizer("naive"), parse_optimizer("base", n_threads=n_threads)],
        [LlamaCppDownstream(name="smollm2", n_threads=n_threads)],
        output=output, limit=limit, seed=0, progress=sys.stderr.isatty(),
    )


def test_bench_eval_bigbench(benchmark) -> None:
    limit = int(os.environ.get("FIPO_BENCH_LIMIT", "50"))
    out = Path(tempfile.mkdtemp(prefix="fipo-bench-eval-"))
    try:
        res = benchmark.pedantic(run, args=(limit, out), rounds=1, iterations=1)
        tm = res.summary["timing"]
        benchmark.extra_info.update(
            rows=tm["rows"], rows_per_s=tm["rows_per_s"], wall_s=tm["wall_s"],
            model_calls=tm["model_calls"],
        )
        assert tm["rows"] > 0
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=int(os.environ.get("FIPO_BENCH_LIMIT", "50")))
    ap.add_argument("--output", type=Path, default=None)
    ap.add_argument("--n-threads", type=int, default=2)
    args = ap.parse_args()
    out = args.output or Path(tempfile.mkdtemp(prefix="fipo-bench-eval-"))
    started = time.perf_counter()
    res = run(args.limit, out, args.n_threads)
    wall = time.perf_counter() - started
    img = REPO / "docs" / "img" / "eval_bigbench.png"
    img.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(res.files["chart"], img)
    tm = res.summary["timing"]
    n_examples = sum(t["n"] for t in res.summary["config"]["tasks"])
    print(res.files["markdown"].read_text(encoding="utf-8"))
    print(f"wall {wall:.1f} s; {n_examples} examples x {len(res.summary['config']['optimizers'])}"
          f" optimizers = {tm['rows']} rows, {tm['rows'] / wall:.2f} rows/s, "
          f"{n_examples / wall:.2f} examples/s; model calls {tm['model_calls']}; "
          f"timing {tm}; output {out}; chart copied to {img}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
