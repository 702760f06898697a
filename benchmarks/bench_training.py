"""CPU training throughput (tokens/s) and peak memory (RSS) of LoRA SFT and DPO on SmolLM2.

Run (prints a Markdown table and writes benchmarks/results/bench_training.json):

    flock /tmp/fipo-cpu.lock .venv/bin/python benchmarks/bench_training.py --steps 8

Each method runs in its own subprocess so its peak RSS (``ru_maxrss`` of the child) is its
own. Tokens counted are the tokens TRL reports as fed forward (its ``num_tokens`` log field; for
DPO, chosen + rejected sequences), timed over steps 2..N of the training loop (model loading,
tokenization, the warm-up step and the final save excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _rows(n: int) -> tuple[list[dict], list[dict]]:
    from training.diversify import diversify
    from training.pop import load_pop

    recs = load_pop(REPO / "tests" / "fixtures" / "pop_small.jsonl")
    recs = [r.model_copy(update={"id": f"{r.id}-{i}"}) for i in range(n) for r in recs]
    data = diversify(recs, seed=0)
    sft = [{"prompt": r["prompt"], "completion": r["completion"]} for r in data.sft]
    dpo = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in data.dpo]
    return sft, dpo


def run_one(method: str, steps: int, batch: int, max_length: int, out: Path) -> dict:
    from transformers import TrainerCallback

    from training.config import TrainConfig
    from training.train import train

    sft, dpo = _rows(4)
    rows = sft if method == "sft" else dpo
    data = out / f"{method}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    class Clock(TrainerCallback):
        """Times steps 2..N; token counts come from TRL's ``num_tokens`` log field."""

        def __init__(self) -> None:
            self.t0 = 0.0
            self.tok0 = 0.0
            self.tok_end = 0.0
            self.t_last = 0.0

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "num_tokens" in logs:
                if state.global_step == 1:  # warm-up step excluded
                    self.t0 = time.perf_counter()
                    self.tok0 = float(logs["num_tokens"])
                self.tok_end = float(logs["num_tokens"])
                self.t_last = time.perf_counter()

    clock = Clock()
    cfg = TrainConfig(method=method, data=str(data), output_dir=str(out / method),
                      max_steps=steps, per_device_train_batch_size=batch,
                      max_length=max_length, logging_steps=1, save_steps=10_000,
                      resume="never")
    res = train(cfg, callbacks=[clock])
    # the final save is outside the timed window: measure up to the last logged step
    elapsed = clock.t_last - clock.t0
    tokens = clock.tok_end - clock.tok0
    return {
        "method": method,
        "steps_timed": steps - 1,
        "batch": batch,
        "max_length": max_length,
        "seconds": round(elapsed, 2),
        "s_per_step": round(elapsed / (steps - 1), 2),
        "tokens": tokens,
        "tokens_per_s": round(tokens / elapsed, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "last_loss": res.losses[-1] if res.losses else None,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--methods", default="sft,dpo")
    p.add_argument("--child", default=None)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_training.json"))
    a = p.parse_args()
    if a.child:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_one(a.child, a.steps, a.batch, a.max_length, Path(tmp))))
        return 0
    results = []
    for method in a.methods.split(","):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", method, "--steps", str(a.steps),
             "--batch", str(a.batch), "--max-length", str(a.max_length)],
            capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"},
        )
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return proc.returncode
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    meta = {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        import torch

        meta["torch"] = torch.__version__
        meta["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print("| method | batch | max_length | s/step | tokens/s | peak RSS (MiB) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['method']} (LoRA r=16) | {r['batch']} | {r['max_length']} | "
              f"{r['s_per_step']} | {r['tokens_per_s']} | {r['peak_rss_mib']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
