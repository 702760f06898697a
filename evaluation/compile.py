"""``fipo compile``: choose a task's instruction by measured downstream accuracy.

The naive instruction and K rewrites the optimizer proposes (across the meta-prompt's cases:
naive only, + silver, + golden, + both; greedy and sampled; de-duplicated, guard-passing) are
each scored on a seeded dev sample with the task's scorer (the same scorers as ``fipo eval``),
paired against naive. The winner is the best candidate whose paired-bootstrap lower bound of the
gain over naive is above zero; otherwise the naive instruction is kept, so a compile is never
knowingly worse than naive on the dev sample.

Resumable: every downstream answer is appended (fsynced) to ``DIR/cache/responses.jsonl`` and
every optimizer proposal to ``DIR/cache/proposals.jsonl`` before it is used, so a rerun after a
crash or a failing downstream redoes nothing already answered. Scores are recomputed from the
cached answers on every run (cheap), so a changed metric never serves stale scores. The final
files (``compiled.json``, ``scores.jsonl``, ``report.md``, ``chart.png``) are written
atomically at the end.

Python API: :func:`compile_task` (task files / :class:`~evaluation.tasks.Task`) and
:func:`compile_prompt` (a string, ``PromptTemplate`` or ``ChatPromptTemplate`` plus examples).
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluation.cache import JsonlCache, content_key
from evaluation.downstream import Downstream, as_downstream
from evaluation.optimizers import COMPILE_OPTIMIZER, OptimizerSpec, as_optimizer, parse_optimizer
from evaluation.report import _write_text_atomic, write_run_files
from evaluation.scorers import (
    GEN_METRICS,
    MC_METRICS,
    primary_metric,
    score_generation,
    score_letter,
    score_loglik,
)
from evaluation.stats import paired_bootstrap
from evaluation.tasks import LETTER_SUFFIX, Example, Task, load_task, sample
from fipo_middleware.errors import FIPOError

NAIVE_CASE = "naive"
MAX_SILVER_CHARS = 400
"""Silver/golden responses are examples of what the model said, not the whole transcript; a
long one would crowd the instruction out of the optimizer's small context."""

Metric = Callable[[str, Any], float | bool | None]
"""A custom metric: ``metric(output, example) -> score in [0, 1]`` (``None``: not applicable).
``example`` is the :class:`~evaluation.tasks.Example` (task files) or the caller's dict."""


class CompileError(FIPOError, ValueError):
    """Bad compile input (no examples, no targets, a dev sample larger than the file, a metric
    that raises) or a downstream that failed mid-run (rerun to resume)."""


# --------------------------------------------------------------------------- dev items
@dataclass(frozen=True)
class Item:
    """One example as the compiler sees it: the task example (options, targets) and, for
    LangChain templates, the input variables and the original dict."""

    example: Example
    variables: Mapping[str, Any] | None = None
    raw: Any = None

    @property
    def id(self) -> str:
        return self.example.id


Render = Callable[[str, Item], Any]
"""instruction, item -> the downstream prompt (a str, or a LangChain ``PromptValue``)."""


def _render_task(instruction: str, item: Item) -> str:
    return item.example.prompt(instruction)


def _prompt_text(prompt: Any) -> str:
    return prompt if isinstance(prompt, str) else prompt.to_string()


def _prompt_key(prompt: Any) -> Any:
    if isinstance(prompt, str):
        return prompt
    # Chat prompts: the message roles matter to the downstream, not only the text.
    return [[m.type, m.content] for m in prompt.to_messages()]


# --------------------------------------------------------------------------- scoring
@dataclass
class Scorer:
    """Answers prompts with one downstream model and scores them with one metric; every
    answer goes through the append-only response cache first."""

    downstream: Downstream
    metric: str
    cache: JsonlCache
    custom: Metric | None = None
    max_new_tokens: int = 64
    letter_max_tokens: int = 8

    @property
    def metric_name(self) -> str:
        if self.custom is not None:
            return getattr(self.custom, "__name__", type(self.custom).__name__)
        return self.metric

    def _respond(self, kind: str, prompt: Any, payload: Any) -> dict[str, Any]:
        ds = self.downstream
        key = content_key("resp", ds.key, kind, _prompt_key(prompt), payload)
        row = self.cache.get(key)
        if row is not None:
            return row
        if kind == "loglik":
            res = ds.loglik(_prompt_text(prompt), list(payload))
            value: dict[str, Any] = {"logliks": [r[0] for r in res],
                                     "n_tokens": [r[1] for r in res]}
        else:
            # LangChain models take a PromptValue as it is (chat messages stay messages).
            text_in = prompt if getattr(ds, "accepts_prompt_value", False) else _prompt_text(
                prompt)
            value = {"text": ds.generate(text_in, int(payload))}
        return self.cache.put(key, {"downstream": ds.name, "kind": kind, **value})

    def score(self, prompt: Any, item: Item) -> dict[str, Any]:
        """{score, answer (the silver response), output/pred}; raises what the model raises."""
        ex = item.example
        if self.custom is None and self.metric in ("loglik", "loglik_avg"):
            r = self._respond("loglik", prompt, ex.options)
            s = score_loglik(r["logliks"], r["n_tokens"], ex.correct)
            pred = s["pred" if self.metric == "loglik" else "pred_avg"]
            return {"score": s[self.metric], "answer": ex.options[pred],
                    "pred": ex.labels[pred]}
        if self.custom is None and self.metric == "letter":
            r = self._respond("generate", _prompt_text(prompt) + LETTER_SUFFIX,
                              self.letter_max_tokens)
            s = score_letter(r["text"], ex.labels, ex.correct)
            return {"score": s["score"], "answer": r["text"], "pred": s["pred"]}
        r = self._respond("generate", prompt, self.max_new_tokens)
        output = r["text"]
        if self.custom is None:
            value = score_generation(output, ex.targets)[self.metric]
        else:
            try:
                value = self.custom(output, item.raw if item.raw is not None else ex)
            except Exception as e:
                raise CompileError(
                    f"metric {self.metric_name!r} raised {type(e).__name__} on example "
                    f"{ex.id!r}: {e}"
                ) from e
        if value is not None and not isinstance(value, int | float):
            raise CompileError(
                f"metric {self.metric_name!r} returned {type(value).__name__} on example "
                f"{ex.id!r}; expected a number in [0, 1] (or None)"
            )
        return {"score": None if value is None else float(value), "answer": output,
                "output": output}


def default_metric(task: Task, downstream: Downstream) -> str:
    """The task's primary metric, as ``fipo eval`` reports it."""
    if task.kind == "multiple_choice":
        return primary_metric(task.kind, ["loglik"] if downstream.supports_loglik else [], False)
    numeric = all(score_generation("", ex.targets)["numeric"] is not None for ex in task.examples)
    return primary_metric(task.kind, [], numeric)


# --------------------------------------------------------------------------- proposing
def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _exemplars(items: Sequence[Item], naive_rows: Sequence[dict[str, Any]]
               ) -> list[tuple[str, str]]:
    """(silver, golden) pairs from dev examples, the ones naive got wrong first (the
    meta-prompt learns most from a wrong answer next to the expected one)."""
    wrong, right = [], []
    for item, row in zip(items, naive_rows, strict=True):
        ex = item.example
        golden = (ex.options[ex.correct[0]] if ex.is_mc and ex.correct
                  else (ex.targets[0] if ex.targets else None))
        silver = (row.get("answer") or "").strip()
        if not golden or not silver:
            continue
        pair = (silver[:MAX_SILVER_CHARS], str(golden)[:MAX_SILVER_CHARS])
        (wrong if not row.get("score") else right).append(pair)
    seen: list[tuple[str, str]] = []
    for p in wrong + right:
        if p not in seen:
            seen.append(p)
    return seen


FORMS = ("rewrite", "append")
"""Candidate forms ``fipo compile`` proposes (see :func:`propose`)."""


def _proposal_plan(exemplars: Sequence[tuple[str, str]], k: int
                   ) -> list[tuple[str, str | None, str | None, int]]:
    """(case, silver, golden, n) calls, round-robin over the cases so that even a small K
    draws from each; n=2 is greedy + one seeded resample."""
    plan: list[tuple[str, str | None, str | None, int]] = [("naive_only", None, None, 3)]
    for silver, golden in exemplars[: max(1, math.ceil(k / 2))]:
        plan += [("golden", None, golden, 2), ("silver", silver, None, 2),
                 ("both", silver, golden, 2)]
    return plan


def propose(
    spec: OptimizerSpec,
    naive: str,
    exemplars: Sequence[tuple[str, str]],
    k: int,
    cache: JsonlCache,
    *,
    max_words: int | None = None,
    progress: bool = False,
    forms: Sequence[str] = FORMS,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Up to ``k`` distinct guard-passing candidates for ``naive``: (candidates, per-case
    errors, optimizer generations). Each call's candidates are cached under the optimizer's key.

    ``forms``: ``rewrite`` (the optimizer's rewrite as written) and ``append`` (the naive
    instruction verbatim plus the rewrite's complementary guidance, as ``mode="append"`` serves
    it). Both come from the same generations, so the append form costs no optimizer call; it
    survives where a full rewrite is rejected for dropping a number or changing the task."""
    from tqdm import tqdm

    from fipo_middleware.complement import append_complement
    from fipo_middleware.guard import serving_reasons
    from fipo_middleware.template import MetaPromptInput

    bad = sorted(set(forms) - set(FORMS))
    if bad or not forms:
        raise CompileError(f"forms must be among {', '.join(FORMS)}; got {', '.join(forms)}")
    budget = MetaPromptInput(naive, max_words=max_words).budget

    plan = _proposal_plan(exemplars, k)
    found: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen = {_norm(naive)}
    generations = 0
    bar = tqdm(total=k, desc="proposing candidates", unit="cand", disable=not progress)
    for case, silver, golden, n in plan:
        if len(found) >= k:
            break
        key = content_key("cands", spec.key, naive, silver, golden, max_words, n)
        row = cache.get(key)
        if row is None:
            try:
                # options=[]: the core passes None through to the guard, which iterates it.
                cands = spec.get().candidates(naive, silver, golden, max_words, n=n,
                                              options=[])
            except FIPOError as e:  # one case failing (too long, injection...) is not fatal
                row = cache.put(key, {"case": case, "error": f"{type(e).__name__}: {e}"})
            else:
                row = cache.put(key, {"case": case, "candidates": [c.to_dict() for c in cands]})
        if "error" in row:
            errors.append({"case": case, "silver": silver, "golden": golden,
                           "error": row["error"]})
            continue
        for c in row["candidates"]:
            generations += 1
            texts = []
            if "rewrite" in forms and c["accepted"]:
                texts.append(("rewrite", c["rewrite"].strip()))
            if "append" in forms and c["rewrite"].strip():
                extra = append_complement(naive, c["rewrite"])
                if extra != naive and not serving_reasons(naive, extra, budget):
                    texts.append(("append", extra))
            for form, text in texts:
                if _norm(text) in seen or len(found) >= k:
                    continue
                seen.add(_norm(text))
                found.append({"text": text, "case": case, "form": form,
                              "decoding": "greedy" if not c["temperature"] else "sampled",
                              "temperature": c["temperature"], "seed": c["seed"],
                              "silver": silver, "golden": golden})
                bar.update(1)
    bar.close()
    return found, errors, generations


# --------------------------------------------------------------------------- the gate
def choose(
    naive_scores: Sequence[float],
    candidate_scores: Sequence[Sequence[float]],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[int | None, list[dict[str, Any]], str]:
    """The gate: (index of the winner or None for naive, per-candidate gain with its interval,
    reason). A candidate qualifies when the paired-bootstrap lower bound of its gain over naive
    is above zero; among those the best dev accuracy wins (ties: the higher lower bound, then
    the earlier proposal). A candidate that merely ties naive never qualifies."""
    gains = []
    for scores in candidate_scores:
        d = paired_bootstrap(naive_scores, scores, n_resamples=n_resamples,
                             confidence=confidence, seed=seed)
        gains.append(d.to_dict())
    qualified = [i for i, g in enumerate(gains) if g["ci_low"] > 0]
    pct = round(100 * confidence)
    if not qualified:
        best = max(range(len(gains)), key=lambda i: gains[i]["diff"], default=None)
        if best is None:
            return None, gains, "naive: no candidate passed the guard"
        g = gains[best]
        return None, gains, (
            f"naive: no candidate's {pct}% lower bound of gain is above 0 (best: candidate "
            f"{best + 1}, {100 * g['diff']:+.1f} points [{100 * g['ci_low']:+.1f}, "
            f"{100 * g['ci_high']:+.1f}])")
    win = max(qualified, key=lambda i: (gains[i]["value"], gains[i]["ci_low"], -i))
    g = gains[win]
    return win, gains, (
        f"candidate {win + 1}: {100 * g['diff']:+.1f} points over naive on the dev sample, "
        f"{pct}% lower bound {100 * g['ci_low']:+.1f} > 0")


# --------------------------------------------------------------------------- the compiler
@dataclass
class CompileReport:
    naive: str
    compiled: str
    chosen_reason: str
    metric: str
    candidates: list[dict[str, Any]]
    summary: dict[str, Any]
    output: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def improved(self) -> bool:
        return self.compiled != self.naive


def _bar(iterable: Any, **kw: Any) -> Any:
    from tqdm import tqdm

    return tqdm(iterable, **kw)


def score_instruction(
    scorer: Scorer, instruction: str, items: Sequence[Item], render: Render,
    *, progress: bool = False, desc: str = "scoring",
) -> list[dict[str, Any]]:
    """Score ``instruction`` on every item (cached answers are reused). A failing downstream
    becomes a :class:`CompileError` naming the example; what was answered stays cached."""
    rows = []
    for item in _bar(items, desc=desc, unit="ex", disable=not progress, leave=False):
        try:
            rows.append(scorer.score(render(instruction, item), item))
        except CompileError:
            raise
        except Exception as e:
            raise CompileError(
                f"downstream {scorer.downstream.name!r} failed on example {item.id!r} "
                f"({type(e).__name__}: {e}); answers so far are cached, rerun to resume"
            ) from e
    return rows


def _scores(rows: Sequence[dict[str, Any]]) -> list[float]:
    # Not applicable (None) counts as wrong: every candidate is judged on the same examples.
    return [float(r["score"] or 0.0) for r in rows]


def compile_items(
    naive: str,
    items: Sequence[Item],
    downstream: Downstream,
    optimizer: OptimizerSpec,
    *,
    metric: str,
    render: Render = _render_task,
    custom_metric: Metric | None = None,
    candidates: int = 8,
    seed: int = 0,
    output: str | os.PathLike[str] | None = None,
    max_words: int | None = None,
    max_new_tokens: int = 64,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    chart: bool = True,
    progress: bool = True,
    forms: Sequence[str] = FORMS,
    extra: Mapping[str, Any] | None = None,
) -> CompileReport:
    """The compiler proper, over prepared dev items (see :func:`compile_task` and
    :func:`compile_prompt` for the front ends)."""
    if not items:
        raise CompileError("no dev examples to compile on")
    if candidates < 1:
        raise CompileError(f"--candidates must be at least 1, got {candidates}")
    started = time.perf_counter()
    out_dir = Path(output) if output is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "failed.json").unlink(missing_ok=True)
    cache_dir = out_dir / "cache" if out_dir is not None else None
    resp_cache = JsonlCache(cache_dir / "responses.jsonl") if cache_dir else _MemoryCache()
    prop_cache = JsonlCache(cache_dir / "proposals.jsonl") if cache_dir else _MemoryCache()
    scorer = Scorer(downstream, metric, resp_cache, custom_metric, max_new_tokens)
    calls0 = downstream.calls
    try:
        naive_rows = score_instruction(scorer, naive, items, render, progress=progress,
                                       desc="scoring naive (silver responses)")
        t_prop = time.perf_counter()
        proposals, errors, generations = propose(
            optimizer, naive, _exemplars(items, naive_rows), candidates, prop_cache,
            max_words=max_words, progress=progress, forms=forms)
        propose_s = time.perf_counter() - t_prop
        cand_rows = [
            score_instruction(scorer, p["text"], items, render, progress=progress,
                              desc=f"scoring candidate {i + 1}/{len(proposals)}")
            for i, p in enumerate(_bar(proposals, desc="candidates", unit="cand",
                                       disable=not progress))
        ]
    except CompileError as e:
        if out_dir is not None:
            _write_text_atomic(out_dir / "failed.json", json.dumps(
                {"error": str(e), "answers_cached": len(resp_cache),
                 "downstream_calls": downstream.calls - calls0}, indent=2) + "\n")
        raise
    naive_scores = _scores(naive_rows)
    win, gains, reason = choose(naive_scores, [_scores(r) for r in cand_rows],
                                n_resamples=n_resamples, confidence=confidence, seed=seed)
    compiled = naive if win is None else proposals[win]["text"]
    n = len(items)
    table = [{"index": 0, "text": naive, "case": NAIVE_CASE, "decoding": None,
              "dev_accuracy": round(sum(naive_scores) / n, 6), "gain": None,
              "chosen": win is None}]
    for i, (p, rows, g) in enumerate(zip(proposals, cand_rows, gains, strict=True)):
        table.append({"index": i + 1, **p, "dev_accuracy": round(sum(_scores(rows)) / n, 6),
                      "gain": g, "chosen": win == i})
    wall = time.perf_counter() - started
    summary: dict[str, Any] = {
        "naive": naive, "compiled": compiled, "chosen_reason": reason,
        "metric": scorer.metric_name, "n_dev": n, "dev_ids": [it.id for it in items],
        "candidates": table, "proposal_errors": errors,
        "config": {"downstream": {"name": downstream.name, "key": downstream.key},
                   "optimizer": {"name": optimizer.name, "key": optimizer.key},
                   "candidates_requested": candidates, "forms": list(forms), "seed": seed,
                   "max_words": max_words,
                   "confidence": confidence, "n_resamples": n_resamples,
                   "max_new_tokens": max_new_tokens, **(extra or {})},
        "cost": {"wall_s": round(wall, 3), "propose_s": round(propose_s, 3),
                 "optimizer_generations": generations,
                 "downstream_calls": downstream.calls - calls0,
                 "scored_rows": n * (1 + len(proposals)),
                 "cached_answers_used": resp_cache.hits},
    }
    report = CompileReport(naive, compiled, reason, scorer.metric_name, table, summary, out_dir)
    if out_dir is not None:
        score_rows = [{"candidate": c, "example_id": it.id, **row}
                      for c, rows in enumerate([naive_rows, *cand_rows])
                      for it, row in zip(items, rows, strict=True)]
        report.files = write_compile_reports(out_dir, summary, score_rows, chart=chart)
    return report


class _MemoryCache(JsonlCache):
    """A JsonlCache that never touches disk (the Python API without ``output``)."""

    def __init__(self) -> None:
        self.path = Path(os.devnull)
        self.rows = {}
        self.hits = 0
        self.misses = 0

    def put(self, key: str, row: dict[str, Any]) -> dict[str, Any]:
        row = {"id": key, **row}
        self.rows[key] = row
        return row


# --------------------------------------------------------------------------- task front end
def split_dev(task: Task, dev_limit: int | None, seed: int) -> Task:
    """The seeded dev sample (``tasks.sample``: the same draw as ``fipo eval --limit``)."""
    if not task.examples:
        raise CompileError(f"{task.path}: the task has no examples")
    if dev_limit is not None:
        if dev_limit < 1:
            raise CompileError(f"--dev-limit must be at least 1, got {dev_limit}")
        if dev_limit > len(task.examples):
            raise CompileError(
                f"{task.path}: --dev-limit {dev_limit} is larger than the task's "
                f"{len(task.examples)} examples")
    return sample(task, dev_limit, seed)


def held_out(task: Task, dev: Task, limit: int | None, seed: int) -> Task:
    """Examples the compile never saw: the complement of ``dev``, a seeded sample of
    ``limit`` of them, in file order."""
    dev_ids = {ex.id for ex in dev.examples}
    rest = [ex for ex in task.examples if ex.id not in dev_ids]
    if limit is not None and limit < len(rest):
        rng = random.Random(f"heldout:{seed}:{task.name}")
        keep = set(rng.sample(range(len(rest)), limit))
        rest = [ex for i, ex in enumerate(rest) if i in keep]
    return Task(name=task.name, path=task.path, kind=task.kind, examples=tuple(rest),
                instruction_level=task.instruction_level, metadata=task.metadata)


def task_instruction(task: Task, instruction: str | None) -> str:
    if instruction is not None:
        if not instruction.strip():
            raise CompileError("--instruction is empty")
        return instruction.strip()
    texts = {ex.instruction for ex in task.examples}
    if len(texts) != 1:
        raise CompileError(
            f"{task.path}: the examples have {len(texts)} different instructions; compile "
            "chooses one task-level instruction, so pass --instruction TEXT")
    return texts.pop()


def compile_task(
    task: str | os.PathLike[str] | Task,
    *,
    instruction: str | None = None,
    dev_limit: int | None = 40,
    seed: int = 0,
    candidates: int = 8,
    downstream: Any = "smollm2",
    optimizer: Any = COMPILE_OPTIMIZER,
    metric: str | Metric | None = None,
    output: str | os.PathLike[str] | None = "runs/compile",
    **kw: Any,
) -> CompileReport:
    """Compile a task file (BIG-bench ``task.json`` or ``fipo eval`` JSONL) or a loaded Task.

    ``downstream``: a spec (``smollm2``, ``gguf:PATH``, ``hf:MODEL``, ``lc:mod:attr``), a
    :class:`~evaluation.downstream.Downstream` or any LangChain model. ``optimizer``: a spec
    (``fipo``, ``base``, ``gguf:PATH``, ``lc:mod:attr``) or a ``FIPOOptimizer``. ``metric``: a
    built-in metric name (``loglik``, ``letter``, ``normalized``...) or a callable; default the
    task's primary metric."""
    loaded = task if isinstance(task, Task) else load_task(task, seed=seed)
    naive = task_instruction(loaded, instruction)
    dev = split_dev(loaded, dev_limit, seed)
    ds = as_downstream(downstream)
    spec = _optimizer_spec(optimizer)
    custom = metric if callable(metric) else None
    name = _metric_name(loaded, ds, None if custom else metric)
    items = [Item(ex) for ex in dev.examples]
    return compile_items(
        naive, items, ds, spec, metric=name, custom_metric=custom, candidates=candidates,
        seed=seed, output=output,
        extra={"task": loaded.name, "task_path": loaded.path, "task_kind": loaded.kind,
               "n_examples": len(loaded.examples), "dev_limit": dev_limit}, **kw)


def _optimizer_spec(optimizer: Any) -> OptimizerSpec:
    if isinstance(optimizer, str):
        return parse_optimizer(optimizer)
    return as_optimizer("optimizer", optimizer)


def _metric_name(task: Task, ds: Downstream, metric: str | None) -> str:
    if metric is None:
        return default_metric(task, ds)
    allowed = MC_METRICS if task.kind == "multiple_choice" else GEN_METRICS
    if metric not in allowed:
        raise CompileError(f"metric {metric!r} does not apply to a {task.kind} task; use one of "
                           f"{', '.join(allowed)} or a callable")
    if metric.startswith("loglik") and not ds.supports_loglik:
        raise CompileError(f"downstream {ds.name!r} gives no log-likelihoods; use letter")
    return metric


def evaluate_held_out(
    task: str | os.PathLike[str] | Task,
    report: CompileReport,
    *,
    downstream: Any = "smollm2",
    limit: int | None = 200,
    seed: int = 0,
    n_resamples: int = 2000,
    output: str | os.PathLike[str] | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Naive vs compiled on examples the compile never saw (the complement of its dev ids),
    with the paired-bootstrap interval of the difference. Answers share the compile's cache
    when ``output`` is the compile's folder."""
    loaded = task if isinstance(task, Task) else load_task(task, seed=seed)
    dev_ids = set(report.summary["dev_ids"])
    dev = Task(loaded.name, loaded.path, loaded.kind,
               tuple(ex for ex in loaded.examples if ex.id in dev_ids))
    rest = held_out(loaded, dev, limit, seed)
    if not rest.examples:
        raise CompileError(f"{loaded.path}: no examples left outside the dev sample")
    ds = as_downstream(downstream)
    cache = JsonlCache(Path(output) / "cache" / "responses.jsonl") if output else _MemoryCache()
    scorer = Scorer(ds, report.metric, cache,
                    max_new_tokens=report.summary["config"]["max_new_tokens"])
    items = [Item(ex) for ex in rest.examples]
    calls0 = ds.calls
    started = time.perf_counter()
    naive = _scores(score_instruction(scorer, report.naive, items, _render_task,
                                      progress=progress, desc="held-out naive"))
    compiled = naive if not report.improved else _scores(score_instruction(
        scorer, report.compiled, items, _render_task, progress=progress,
        desc="held-out compiled"))
    d = paired_bootstrap(naive, compiled, n_resamples=n_resamples, seed=seed)
    return {"task": loaded.name, "metric": report.metric, "n": len(items),
            "naive": naive, "compiled": compiled, "vs_naive": d.to_dict(),
            "wall_s": round(time.perf_counter() - started, 3),
            "downstream_calls": ds.calls - calls0}


# --------------------------------------------------------------------------- LangChain front end
_VAR = re.compile(r"(?<!\{)\{[^{}]+\}(?!\})")


def _split_template_text(text: str) -> tuple[str, str]:
    """(instruction, rest) of a template's text: the first paragraph when it has no input
    variable, else the text before the first variable."""
    head, sep, tail = text.partition("\n\n")
    if sep and head.strip() and not _VAR.search(head):
        return head, sep + tail
    m = _VAR.search(text)
    head = text[: m.start()] if m else text
    if not head.strip():
        raise CompileError("the template has no instruction text before its first input "
                           "variable; pass instruction= (the exact text to optimize)")
    return head, text[len(head):]


def _escape(text: str, template_format: str) -> str:
    # The rewrite is literal text: braces must not become input variables of the template.
    return text.replace("{", "{{").replace("}", "}}") if template_format == "f-string" else text


def _unescape(text: str, template_format: str) -> str:
    return text.replace("{{", "{").replace("}}", "}") if template_format == "f-string" else text


def _string_template_instruction(
    tmpl: Any, instruction: str | None
) -> tuple[str, Callable[[str], Any]]:
    fmt = getattr(tmpl, "template_format", "f-string")
    text = tmpl.template
    if instruction is not None:
        raw = _escape(instruction, fmt)
        if raw not in text:
            raise CompileError("instruction= is not part of the template text")
        at = text.index(raw)
        before, rest = text[:at], text[at + len(raw):]
    else:
        raw, rest = _split_template_text(text)
        before = ""
    naive = _unescape(raw, fmt).strip()
    lead = raw[: len(raw) - len(raw.lstrip())]
    trail = raw[len(raw.rstrip()):]

    def rebuild(new: str) -> Any:
        return tmpl.model_copy(update={"template": before + lead + _escape(new, fmt) + trail
                                       + rest})

    return naive, rebuild


def template_instruction(
    prompt: Any, instruction: str | None = None
) -> tuple[str, Callable[[str], Any]]:
    """(naive instruction, rebuild) of a str, ``PromptTemplate`` or ``ChatPromptTemplate``.
    ``rebuild(text)`` returns the same type with only the instruction text replaced: input
    variables, partials and the other messages are the originals. In a chat template the
    instruction is the first system message (else the first human message)."""
    from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
    from langchain_core.prompts import ChatPromptTemplate, StringPromptTemplate
    from langchain_core.prompts.chat import (
        HumanMessagePromptTemplate,
        SystemMessagePromptTemplate,
    )

    if isinstance(prompt, str):
        if not prompt.strip():
            raise CompileError("the prompt is empty")
        return prompt.strip(), lambda new: new
    if isinstance(prompt, StringPromptTemplate) and hasattr(prompt, "template"):
        return _string_template_instruction(prompt, instruction)
    if isinstance(prompt, ChatPromptTemplate):
        msgs = list(prompt.messages)
        for kinds in ((SystemMessagePromptTemplate, SystemMessage),
                      (HumanMessagePromptTemplate, HumanMessage)):
            idx = next((i for i, m in enumerate(msgs) if isinstance(m, kinds)), None)
            if idx is None:
                continue
            msg = msgs[idx]
            if isinstance(msg, BaseMessage):
                if not isinstance(msg.content, str):
                    raise CompileError("the instruction message has non-text content")
                naive = (instruction or msg.content).strip()

                def put(new: str, msg: Any = msg, idx: int = idx, naive: str = naive) -> Any:
                    m = msg.model_copy(update={"content": msg.content.replace(naive, new, 1)})
                    return prompt.model_copy(update={"messages": [*msgs[:idx], m,
                                                                  *msgs[idx + 1:]]})

                return naive, put
            naive, inner = _string_template_instruction(msg.prompt, instruction)

            def put_t(new: str, msg: Any = msg, idx: int = idx,
                      inner: Callable[[str], Any] = inner) -> Any:
                m = msg.model_copy(update={"prompt": inner(new)})
                return prompt.model_copy(update={"messages": [*msgs[:idx], m, *msgs[idx + 1:]]})

            return naive, put_t
        raise CompileError("the chat template has no system or human message to optimize")
    raise CompileError(
        f"compile_prompt accepts a str, PromptTemplate or ChatPromptTemplate, got "
        f"{type(prompt).__name__}")


def _dict_items(examples: Sequence[Any], naive: str, target_key: str, templated: bool
                ) -> list[Item]:
    items = []
    for i, row in enumerate(examples):
        if isinstance(row, Example):
            items.append(Item(row))
            continue
        if not isinstance(row, Mapping):
            raise CompileError(f"examples[{i}]: expected a dict or an Example, got "
                               f"{type(row).__name__}")
        if target_key not in row or row[target_key] in (None, "", []):
            raise CompileError(f"examples[{i}]: no target (field {target_key!r})")
        target = row[target_key]
        targets = tuple(str(t) for t in target) if isinstance(target, list | tuple) else (
            str(target),)
        variables = {k: v for k, v in row.items() if k not in (target_key, "id")}
        text = "" if templated else str(row.get("input", ""))
        ex = Example(id=str(row.get("id", i)), instruction=naive, input=text, targets=targets)
        items.append(Item(ex, variables if templated else None, row))
    return items


def compile_prompt(
    prompt: Any,
    examples: Sequence[Any] | Task,
    llm: Any,
    metric: str | Metric | None = None,
    optimizer: Any = None,
    *,
    instruction: str | None = None,
    target_key: str = "target",
    dev_limit: int | None = None,
    candidates: int = 8,
    seed: int = 0,
    output: str | os.PathLike[str] | None = None,
    progress: bool = False,
    **kw: Any,
) -> tuple[Any, CompileReport]:
    """Compile a prompt's instruction on labelled examples; returns (prompt of the same type,
    report).

    ``prompt``: a str (the instruction; each example's ``input`` follows it after a blank
    line, as in ``fipo eval``), a ``PromptTemplate`` or a ``ChatPromptTemplate`` (only the
    instruction text changes; examples are dicts of its input variables plus ``target_key``).
    A :class:`~evaluation.tasks.Task` or list of ``Example`` keeps its options, so multiple
    choice is scored by log-likelihood where ``llm`` gives it. ``llm``: any LangChain model, a
    Downstream or a spec string. ``metric``: a callable ``(output, example) -> float``, a
    built-in metric name, or None (normalized match; numeric when every target is a number).
    ``optimizer``: a ``FIPOOptimizer`` or spec (default: the shipped adapter without its
    verifier, ``FIPOOptimizer.default(verify=False)``: measured accuracy is the gate here).
    ``output``: a folder for the resumable cache and the reports (None: in memory).
    ``forms=("rewrite",)`` proposes full rewrites only (default: also their append forms)."""
    naive, rebuild = template_instruction(prompt, instruction)
    templated = not isinstance(prompt, str)
    if isinstance(examples, Task):
        examples = list(examples.examples)
    if not examples:
        raise CompileError("no examples to compile on")
    items = _dict_items(list(examples), naive, target_key, templated)
    if dev_limit is not None:
        if dev_limit > len(items):
            raise CompileError(f"dev_limit {dev_limit} is larger than the {len(items)} examples")
        rng = random.Random(f"{seed}:compile_prompt")
        keep = sorted(rng.sample(range(len(items)), dev_limit))
        items = [items[i] for i in keep]
    ds = as_downstream(llm)
    kind = "multiple_choice" if all(it.example.is_mc for it in items) else "generation"
    if kind == "multiple_choice" and templated:
        raise CompileError("multiple-choice examples need a str prompt (options are appended "
                           "to it); with a template, give targets and a metric")
    task = Task("prompt", "<compile_prompt>", kind, tuple(it.example for it in items))
    custom = metric if callable(metric) else None
    name = _metric_name(task, ds, None if custom else metric)

    def render(instr: str, item: Item) -> Any:
        if item.variables is None:
            return item.example.prompt(instr)
        return rebuild(instr).format_prompt(**item.variables)

    spec = _optimizer_spec(optimizer if optimizer is not None else COMPILE_OPTIMIZER)
    report = compile_items(naive, items, ds, spec, metric=name, render=render,
                           custom_metric=custom, candidates=candidates, seed=seed,
                           output=output, progress=progress, chart=output is not None, **kw)
    return (prompt if report.compiled == naive else rebuild(report.compiled)), report


# --------------------------------------------------------------------------- reports
def _pts(g: dict[str, Any] | None) -> str:
    if not g:
        return "–"
    return f"{100 * g['diff']:+.1f} [{100 * g['ci_low']:+.1f}, {100 * g['ci_high']:+.1f}]"


def _cell(text: str | None, width: int = 140) -> str:
    if not text:
        return "–"
    s = " ".join(text.split()).replace("|", "\\|")
    return s if len(s) <= width else s[: width - 3] + "..."


def render_compile_markdown(summary: dict[str, Any]) -> str:
    cfg = summary["config"]
    cost = summary["cost"]
    lines = [
        f"# fipo compile: {cfg.get('task', 'prompt')}", "",
        f"Downstream `{cfg['downstream']['name']}`, optimizer `{cfg['optimizer']['name']}`, "
        f"metric `{summary['metric']}`, {summary['n_dev']} dev examples (seed {cfg['seed']}), "
        f"{len(summary['candidates']) - 1} candidates (requested {cfg['candidates_requested']}).",
        "", f"**Chosen:** {summary['chosen_reason']}.", "",
        f"- naive: {_cell(summary['naive'], 400)}",
        f"- compiled: {_cell(summary['compiled'], 400)}", "",
        "| # | case | decoding | dev acc. | gain over naive, points [95% CI] | chosen | text |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in summary["candidates"]:
        lines.append(
            f"| {c['index']} | {c['case']}{'/' + c['form'] if c.get('form') else ''} | "
            f"{c.get('decoding') or '–'} | "
            f"{100 * c['dev_accuracy']:.1f} | {_pts(c['gain'])} | "
            f"{'**yes**' if c['chosen'] else ''} | {_cell(c['text'])} |")
    lines.append("")
    if summary["proposal_errors"]:
        lines += ["Proposal errors (recorded, not fatal):", ""]
        lines += [f"- {e['case']}: {e['error']}" for e in summary["proposal_errors"]]
        lines.append("")
    lines.append(
        f"Cost: {cost['wall_s']} s wall ({cost['propose_s']} s proposing, "
        f"{cost['optimizer_generations']} optimizer generations), "
        f"{cost['downstream_calls']} downstream calls, {cost['scored_rows']} scored rows "
        f"({cost['cached_answers_used']} answers from the cache).")
    lines.append("")
    return "\n".join(lines)


def render_compile_chart(summary: dict[str, Any], path: Path) -> None:
    """Dev accuracy per candidate with its gain interval as error bars (naive grey, the
    chosen one highlighted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cands = summary["candidates"]
    naive_acc = 100 * cands[0]["dev_accuracy"]
    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(cands) + 2), 3.6))
    xs = list(range(len(cands)))
    vals = [100 * c["dev_accuracy"] for c in cands]
    colors = ["#2a9d8f" if c["chosen"] else ("#9e9e9e" if c["index"] == 0 else "#8ab6d6")
              for c in cands]
    bars = ax.bar(xs, vals, color=colors)
    for x, c in zip(xs, cands, strict=True):
        g = c["gain"]
        if g:
            lo, hi = naive_acc + 100 * g["ci_low"], naive_acc + 100 * g["ci_high"]
            ax.errorbar(x, 100 * c["dev_accuracy"], yerr=[[vals[x] - lo], [hi - vals[x]]],
                        color="black", capsize=3, lw=1)
    ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    ax.axhline(naive_acc, color="#555", ls="--", lw=1, label="naive")
    ax.set_xticks(xs)
    ax.set_xticklabels(["naive"] + [f"{c['index']}\n{c['case']}" for c in cands[1:]],
                       fontsize=7)
    ax.set_ylim(0, 105)
    ax.set_ylabel(f"dev accuracy (%), {summary['metric']}")
    ax.set_title(f"fipo compile: {summary['config'].get('task', 'prompt')} "
                 f"(bars: 95% CI of gain, placed on naive)", fontsize=9)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_compile_reports(
    out_dir: Path, summary: dict[str, Any], score_rows: list[dict[str, Any]], *, chart: bool = True
) -> dict[str, Path]:
    """``scores.jsonl``, ``compiled.json``, ``report.md`` and ``chart.png``, atomically."""
    return write_run_files(out_dir, ("scores", "compiled"), score_rows, summary,
                           render_compile_markdown(summary),
                           render_compile_chart if chart else None)
