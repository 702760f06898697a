"""``run_eval``: tasks x optimizers x downstream models -> scored examples and reports.

Stages (each resumable from the caches under ``output/cache``):

1. every distinct instruction is optimized once per optimizer (a task-level instruction once
   per task, per-example instructions per example); the optimized prompt is the optimized
   instruction followed by the example's input and options, byte for byte;
2. every downstream model answers every prompt its scorers need (identical prompts, e.g. when
   an optimizer fell back to the naive one, are answered once);
3. scores, per-task accuracies, paired-bootstrap differences vs naive, and the reports
   (``examples.jsonl``, ``summary.json``, ``report.md``, ``chart.png``).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.cache import JsonlCache, content_key
from evaluation.downstream import Downstream, as_downstream
from evaluation.optimizers import NAIVE, OptimizerSpec, as_optimizer
from evaluation.scorers import (
    GEN_METRICS,
    primary_metric,
    score_generation,
    score_letter,
    score_loglik,
)
from evaluation.stats import paired_bootstrap
from evaluation.tasks import LETTER_SUFFIX, Task, load_task, sample

logger = logging.getLogger("evaluation")


@dataclass
class EvalResults:
    output: Path
    examples: list[dict[str, Any]]
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)

    def accuracy(self, task: str, downstream: str, optimizer: str, metric: str | None = None
                 ) -> float:
        for row in self.summary["results"]:
            if (row["task"], row["downstream"], row["optimizer"]) == (task, downstream, optimizer
                                                                       ) and (
                row["metric"] == metric if metric else row["primary"]
            ):
                return row["accuracy"]
        raise KeyError((task, downstream, optimizer, metric))


def _bar(iterable: Any, **kw: Any) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, **kw)


def _optimizer_specs(optimizers: Any) -> list[OptimizerSpec]:
    if optimizers is None:
        optimizers = [NAIVE, "base"]
    if isinstance(optimizers, Mapping):
        specs = [as_optimizer(n, v) for n, v in optimizers.items()]
    else:
        specs = []
        for v in optimizers:
            if isinstance(v, OptimizerSpec):
                specs.append(v)
            elif isinstance(v, str):
                from evaluation.optimizers import parse_optimizer

                specs.append(parse_optimizer(v))
            else:
                specs.append(as_optimizer(getattr(v, "name", None) or type(v).__name__, v))
    if not any(s.is_naive for s in specs):
        # Every comparison is "vs naive", so the identity baseline is always in the run.
        specs.insert(0, OptimizerSpec(NAIVE, NAIVE))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"optimizer names must be unique, got {names}")
    return specs


def _downstreams(downstream: Any) -> list[Downstream]:
    if downstream is None:
        downstream = ["smollm2"]
    if isinstance(downstream, Mapping):
        models = [as_downstream(v, n) for n, v in downstream.items()]
    elif isinstance(downstream, str | Path) or not isinstance(downstream, Sequence):
        models = [as_downstream(downstream)]
    else:
        models = [as_downstream(m) for m in downstream]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"downstream names must be unique, got {names}; use NAME=SPEC")
    return models


def _optimize_all(
    tasks: list[Task], specs: list[OptimizerSpec], cache: JsonlCache, progress: bool
) -> dict[str, dict[str, dict[str, Any]]]:
    """optimizer name -> naive instruction -> optimization record."""
    instructions: list[str] = []
    for t in tasks:
        for ex in t.examples:
            if ex.instruction not in instructions:
                instructions.append(ex.instruction)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    jobs = [(s, i) for s in specs for i in instructions]
    for spec, instr in _bar(jobs, desc="optimizing instructions", unit="instr",
                            disable=not progress):
        table = out.setdefault(spec.name, {})
        if spec.is_naive:
            table[instr] = {"optimized_prompt": instr, "used_fallback": False,
                            "fallback_reason": None, "cached": False}
            continue
        key = content_key("opt", spec.key, instr)
        row = cache.get(key)
        if row is None:
            result = spec.get().optimize(instr)
            row = cache.put(key, {
                "optimizer": spec.name, "optimizer_key": spec.key, "naive_prompt": instr,
                **result.to_dict(), "raw_output": result.raw_output,
            })
            row = {**row, "cached": False}
        else:
            row = {**row, "cached": True}
        table[instr] = row
    return out


def _mc_scorers(ds: Downstream, requested: Sequence[str] | None) -> list[str]:
    wanted = list(requested) if requested else ["loglik", "letter"]
    out = []
    for s in wanted:
        if s == "loglik" and not ds.supports_loglik:
            logger.warning("%s gives no log-likelihoods; loglik scorer skipped", ds.name)
            continue
        out.append(s)
    return out


def run_eval(
    tasks: Sequence[str | os.PathLike[str] | Task],
    optimizers: Any = None,
    downstream: Any = None,
    *,
    output: str | os.PathLike[str] = "runs/eval",
    limit: int | None = None,
    seed: int = 0,
    mc_scorers: Sequence[str] | None = None,
    max_new_tokens: int = 64,
    letter_max_tokens: int = 8,
    instruction_source: str = "generic",
    n_resamples: int = 2000,
    chart: bool = True,
    progress: bool = True,
) -> EvalResults:
    """Evaluate optimizers on downstream accuracy.

    ``tasks``: task files (BIG-bench ``.json`` or ``.jsonl``) or loaded :class:`Task` objects.
    ``optimizers``: spec strings (``naive``, ``base``, ``fipo``, ``gguf:PATH``, ``lc:mod:attr``),
    or a mapping name -> spec / ``FIPOOptimizer`` / LangChain model / None (naive). The naive
    identity is added when missing. ``downstream``: spec strings (``smollm2``, ``gguf:PATH``,
    ``hf:MODEL``, ``lc:mod:attr``), :class:`~evaluation.downstream.Downstream` objects, LangChain
    models, or a mapping name -> any of those. ``mc_scorers``: subset of ``("loglik",
    "letter")``; default both where the model supports them.
    """
    started = time.perf_counter()
    out_dir = Path(output)
    out_dir.mkdir(parents=True, exist_ok=True)
    loaded = [
        t if isinstance(t, Task) else load_task(t, seed=seed, instruction_source=instruction_source)
        for t in tasks
    ]
    loaded = [sample(t, limit, seed) for t in loaded]
    names = [t.name for t in loaded]
    if len(set(names)) != len(names):
        raise ValueError(f"task names (file stems) must be unique, got {names}")
    specs = _optimizer_specs(optimizers)
    models = _downstreams(downstream)
    opt_cache = JsonlCache(out_dir / "cache" / "optimized.jsonl")
    resp_cache = JsonlCache(out_dir / "cache" / "responses.jsonl")

    t0 = time.perf_counter()
    optimized = _optimize_all(loaded, specs, opt_cache, progress)
    optimize_s = time.perf_counter() - t0

    def respond(ds: Downstream, kind: str, prompt: str, payload: Any) -> dict[str, Any]:
        key = content_key("resp", ds.key, kind, prompt, payload)
        row = resp_cache.get(key)
        if row is not None:
            return row
        if kind == "loglik":
            res = ds.loglik(prompt, list(payload))
            value: dict[str, Any] = {"logliks": [r[0] for r in res],
                                     "n_tokens": [r[1] for r in res]}
        else:
            value = {"text": ds.generate(prompt, int(payload))}
        return resp_cache.put(key, {"downstream": ds.name, "kind": kind, **value})

    records: list[dict[str, Any]] = []
    timing: dict[str, float] = {"optimize_s": round(optimize_s, 3)}
    for ds in models:
        t1 = time.perf_counter()
        scorers = _mc_scorers(ds, mc_scorers)
        jobs = [(t, ex, s) for t in loaded for ex in t.examples for s in specs]
        for task, ex, spec in _bar(jobs, desc=f"answering ({ds.name})", unit="ex",
                                   disable=not progress):
            opt = optimized[spec.name][ex.instruction]
            prompt = ex.prompt(opt["optimized_prompt"])
            rec: dict[str, Any] = {
                "task": task.name, "example_id": ex.id, "downstream": ds.name,
                "optimizer": spec.name, "kind": task.kind,
                "naive_instruction": ex.instruction,
                "optimized_instruction": opt["optimized_prompt"],
                "used_fallback": bool(opt.get("used_fallback")),
                "fallback_reason": opt.get("fallback_reason"),
                "prompt": prompt, "scores": {},
            }
            if ex.is_mc:
                rec["options"] = list(ex.options)
                rec["correct"] = [ex.labels[i] for i in ex.correct]
                if "loglik" in scorers:
                    r = respond(ds, "loglik", prompt, ex.options)
                    s = score_loglik(r["logliks"], r["n_tokens"], ex.correct)
                    rec["loglik"] = {k: s[k] for k in ("logliks", "n_tokens")} | {
                        "pred": ex.labels[s["pred"]], "pred_avg": ex.labels[s["pred_avg"]]}
                    rec["scores"]["loglik"] = s["loglik"]
                    rec["scores"]["loglik_avg"] = s["loglik_avg"]
                if "letter" in scorers:
                    lp = prompt + LETTER_SUFFIX
                    r = respond(ds, "generate", lp, letter_max_tokens)
                    s = score_letter(r["text"], ex.labels, ex.correct)
                    rec["letter"] = {"prompt": lp, "output": s["output"], "pred": s["pred"]}
                    rec["scores"]["letter"] = s["score"]
            else:
                rec["targets"] = list(ex.targets)
                r = respond(ds, "generate", prompt, max_new_tokens)
                s = score_generation(r["text"], ex.targets)
                rec["output"] = s["output"]
                for m in GEN_METRICS:
                    rec["scores"][m] = s[m]
            records.append(rec)
        timing[f"answer_s[{ds.name}]"] = round(time.perf_counter() - t1, 3)

    summary = summarize(records, loaded, specs, models, n_resamples=n_resamples, seed=seed)
    wall = time.perf_counter() - started
    summary["config"] = {
        "tasks": [{"name": t.name, "path": t.path, "kind": t.kind, "n": len(t.examples),
                   "instruction_level": t.instruction_level,
                   "instruction_derived": t.metadata.get("instruction_derived", False)}
                  for t in loaded],
        "optimizers": [{"name": s.name, "key": s.key} for s in specs],
        "downstream": [{"name": m.name, "key": m.key} for m in models],
        "limit": limit, "seed": seed, "mc_scorers": list(mc_scorers or ["loglik", "letter"]),
        "max_new_tokens": max_new_tokens, "letter_max_tokens": letter_max_tokens,
        "instruction_source": instruction_source,
    }
    summary["optimized_instructions"] = [
        {"optimizer": s.name, "naive_instruction": instr,
         "optimized_instruction": row["optimized_prompt"],
         "used_fallback": bool(row.get("used_fallback")),
         "fallback_reason": row.get("fallback_reason")}
        for s in specs if not s.is_naive for instr, row in optimized[s.name].items()
    ]
    summary["timing"] = {
        **timing, "wall_s": round(wall, 3), "rows": len(records),
        "rows_per_s": round(len(records) / wall, 3) if wall > 0 else None,
        "model_calls": {m.name: m.calls for m in models},
    }
    summary["cache"] = {
        "optimized": {"hits": opt_cache.hits, "misses": opt_cache.misses},
        "responses": {"hits": resp_cache.hits, "misses": resp_cache.misses},
    }
    from evaluation.report import write_reports

    files = write_reports(out_dir, records, summary, chart=chart)
    return EvalResults(out_dir, records, summary, files)


def summarize(
    records: list[dict[str, Any]],
    tasks: list[Task],
    specs: list[OptimizerSpec],
    models: list[Downstream],
    *,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Per (task, downstream, optimizer, metric) accuracy with the paired-bootstrap difference
    vs naive, plus a macro average over tasks of each task's primary metric."""
    by: dict[tuple[str, str, str], dict[str, dict[str, float | None]]] = {}
    fallback: dict[tuple[str, str, str], list[bool]] = {}
    for r in records:
        k = (r["task"], r["downstream"], r["optimizer"])
        by.setdefault(k, {})[r["example_id"]] = r["scores"]
        fallback.setdefault(k, []).append(r["used_fallback"])
    results: list[dict[str, Any]] = []
    overall: list[dict[str, Any]] = []
    primaries: dict[tuple[str, str], str] = {}
    for ds in models:
        macro_a: dict[str, list[list[float]]] = {}
        macro_b: dict[str, list[list[float]]] = {}
        for t in tasks:
            base = by.get((t.name, ds.name, NAIVE), {})
            ids = [ex.id for ex in t.examples]
            metrics = sorted({m for s in base.values() for m, v in s.items() if v is not None})
            numeric_ok = bool(base) and all(s.get("numeric") is not None for s in base.values())
            primary = primary_metric(t.kind, metrics, numeric_ok)
            primaries[(t.name, ds.name)] = primary
            for spec in specs:
                scores = by.get((t.name, ds.name, spec.name), {})
                for m in metrics:
                    vals = [scores[i].get(m) for i in ids if i in scores]
                    vals_f = [float(v) for v in vals if v is not None]
                    row: dict[str, Any] = {
                        "task": t.name, "downstream": ds.name, "optimizer": spec.name,
                        "metric": m, "primary": m == primary, "n": len(vals_f),
                        "accuracy": round(sum(vals_f) / len(vals_f), 6) if vals_f else None,
                        "fallback_rate": round(
                            sum(fallback[(t.name, ds.name, spec.name)])
                            / len(fallback[(t.name, ds.name, spec.name)]), 6),
                        "vs_naive": None,
                    }
                    paired = [(base[i].get(m), scores[i].get(m)) for i in ids
                              if i in base and i in scores]
                    paired = [(a, b) for a, b in paired if a is not None and b is not None]
                    if not spec.is_naive and paired:
                        a = [float(x) for x, _ in paired]
                        b = [float(y) for _, y in paired]
                        row["vs_naive"] = paired_bootstrap(
                            a, b, n_resamples=n_resamples, seed=seed).to_dict()
                        if m == primary:
                            macro_a.setdefault(spec.name, []).append(a)
                            macro_b.setdefault(spec.name, []).append(b)
                    if m == primary and spec.is_naive and vals_f:
                        macro_a.setdefault(NAIVE, []).append(vals_f)
                    results.append(row)
        naive_groups = macro_a.get(NAIVE, [])
        if naive_groups:
            overall.append({
                "downstream": ds.name, "optimizer": NAIVE, "metric": "primary (macro avg)",
                "accuracy": round(
                    sum(sum(g) / len(g) for g in naive_groups) / len(naive_groups), 6),
                "n_tasks": len(naive_groups), "vs_naive": None,
            })
        for spec in specs:
            if spec.is_naive or spec.name not in macro_b:
                continue
            d = paired_bootstrap(macro_a[spec.name], macro_b[spec.name],
                                 n_resamples=n_resamples, seed=seed)
            overall.append({
                "downstream": ds.name, "optimizer": spec.name, "metric": "primary (macro avg)",
                "accuracy": round(d.mean_b, 6), "n_tasks": len(macro_b[spec.name]),
                "vs_naive": d.to_dict(),
            })
    return {
        "results": results,
        "overall": overall,
        "primary_metric": {f"{t}|{d}": m for (t, d), m in primaries.items()},
    }

