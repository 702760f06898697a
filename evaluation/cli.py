"""``fipo eval`` (downstream accuracy) and ``fipo eval-prompts`` (intrinsic metrics on prompt
pairs), wired into ``fipo`` by ``fipo_middleware.cli``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from evaluation.optimizers import COMPILE_OPTIMIZER
from fipo_middleware.errors import FIPOError


def _split_specs(values: list[str] | None, default: list[str]) -> list[str]:
    """Comma-separated specs; a ``KEY=VALUE`` piece whose key is an optimizer option belongs to
    the spec before it (``naive,fipo,verify=off`` is two specs)."""
    from evaluation.optimizers import OPTION_KEYS

    if not values:
        return default
    out: list[str] = []
    for piece in (s.strip() for v in values for s in v.split(",")):
        if not piece:
            continue
        if out and piece.partition("=")[0] in OPTION_KEYS and "=" in piece:
            out[-1] += "," + piece
        else:
            out.append(piece)
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    from evaluation.downstream import parse_downstream
    from evaluation.optimizers import parse_optimizer
    from evaluation.runner import run_eval

    optimizers = [
        parse_optimizer(s, n_threads=args.n_threads, max_tokens=args.optimizer_max_tokens,
                        max_words=args.max_words, retries=args.retries)
        for s in _split_specs(args.optimizer, ["naive", "base"])
    ]
    downstream = [
        parse_downstream(s, n_ctx=args.n_ctx, n_threads=args.n_threads)
        for s in _split_specs(args.downstream, ["smollm2"])
    ]
    scorers = _split_specs(args.mc_scorer, []) or None
    res = run_eval(
        args.tasks, optimizers, downstream,
        output=args.output, limit=args.limit, seed=args.seed, mc_scorers=scorers,
        max_new_tokens=args.max_new_tokens, letter_max_tokens=args.letter_max_tokens,
        instruction_source=args.instruction_source, n_resamples=args.bootstrap,
        chart=not args.no_chart, progress=not args.quiet,
    )
    tm = res.summary["timing"]
    return _finish(args, res.files["markdown"],
                   f"fipo eval: {tm['rows']} rows in {tm['wall_s']} s ({tm['rows_per_s']} rows/s); "
                   f"reports in {res.output}/ ({', '.join(p.name for p in res.files.values())})")


def _finish(args: argparse.Namespace, markdown: Any, line: str) -> int:
    """Print the report (unless --quiet) and the one-line summary on stderr."""
    if not args.quiet:
        print(markdown.read_text(encoding="utf-8"))
    print(line, file=sys.stderr)
    return 0


def cmd_eval_prompts(args: argparse.Namespace) -> int:
    from evaluation.intrinsic import render_prompt_markdown, run_prompt_eval
    from evaluation.optimizers import parse_optimizer

    specs = [
        parse_optimizer(s, n_threads=args.n_threads, max_tokens=args.optimizer_max_tokens,
                        max_words=args.max_words, retries=args.retries)
        for s in _split_specs(args.optimizer, ["naive", "base"])
    ]
    summary = run_prompt_eval(args.pairs, specs, output=args.output, limit=args.limit,
                              progress=not args.quiet)
    summary.pop("rows")
    print(json.dumps(summary, indent=2) if args.json else render_prompt_markdown(summary))
    return 0


def cmd_compile(args: argparse.Namespace) -> int:
    from evaluation.compile import compile_task
    from evaluation.downstream import parse_downstream

    optimizer = parse_optimizer_spec(args)
    downstream = parse_downstream(args.downstream, n_ctx=args.n_ctx, n_threads=args.n_threads)
    report = compile_task(
        args.task, instruction=args.instruction, dev_limit=args.dev_limit, seed=args.seed,
        candidates=args.candidates, downstream=downstream, optimizer=optimizer,
        metric=args.metric, output=args.output, max_words=args.max_words,
        max_new_tokens=args.max_new_tokens, n_resamples=args.bootstrap,
        confidence=args.confidence, chart=not args.no_chart, progress=not args.quiet,
        forms=tuple(filter(None, args.forms.split(","))),
    )
    cost = report.summary["cost"]
    return _finish(args, report.files["markdown"],
                   f"fipo compile: {report.chosen_reason}; {cost['wall_s']} s, "
                   f"{cost['downstream_calls']} downstream calls; {args.output}/compiled.json")


def parse_optimizer_spec(args: argparse.Namespace) -> Any:
    from evaluation.optimizers import parse_optimizer

    return parse_optimizer(args.optimizer, n_threads=args.n_threads,
                           max_tokens=args.optimizer_max_tokens, max_words=args.max_words,
                           retries=args.retries)


def _add_compile(subparsers: Any) -> None:
    c = subparsers.add_parser(
        "compile", help="choose a task's instruction by measured downstream accuracy",
        description="Propose rewrites of the task's instruction with the optimizer, score each "
                    "(and the naive one) on a seeded dev sample with the downstream model, keep "
                    "the best whose paired-bootstrap lower bound of gain over naive is above 0 "
                    "(else naive). Rerunning with the same --output resumes from its cache.",
    )
    c.add_argument("task", metavar="TASK_FILE", help="BIG-bench task.json or fipo eval JSONL")
    c.add_argument("--instruction", default=None,
                   help="the naive instruction (default: the task's own)")
    c.add_argument("--dev-limit", type=int, default=40, help="dev examples (seeded sample)")
    c.add_argument("--seed", type=int, default=0, help="dev sample, option order, bootstrap")
    c.add_argument("--candidates", type=int, default=8, help="K rewrites besides naive")
    c.add_argument("--forms", default="rewrite,append",
                   help="candidate forms: rewrite (as the optimizer wrote it), append (the naive "
                        "instruction verbatim + the rewrite's added guidance); comma-separated")
    c.add_argument("--downstream", default="smollm2", metavar="SPEC",
                   help="smollm2 | gguf:PATH | hf:MODEL | lc:module:attr (default: smollm2)")
    c.add_argument("--optimizer", default=COMPILE_OPTIMIZER, metavar="SPEC",
                   help="the proposer: fipo,verify=off | base | gguf:PATH | lc:module:attr "
                        "(default: the shipped adapter unverified; the dev set is the gate)")
    c.add_argument("--metric", default=None,
                   help="loglik | loglik_avg | letter | exact | normalized | numeric "
                        "(default: the task's primary metric)")
    c.add_argument("--output", default="runs/compile", help="output folder (resumable cache)")
    c.add_argument("--n-threads", type=int, default=None, help="llama.cpp threads")
    c.add_argument("--n-ctx", type=int, default=2048, help="llama.cpp downstream context")
    c.add_argument("--optimizer-max-tokens", type=int, default=128)
    c.add_argument("--max-words", type=int, default=None, help="optimized instruction budget")
    c.add_argument("--retries", type=int, default=None,
                   help="the optimizer's retry setting (its key; candidates are drawn anyway)")
    c.add_argument("--max-new-tokens", type=int, default=64, help="generation tasks")
    c.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    c.add_argument("--confidence", type=float, default=0.95, help="of the gain's interval")
    c.add_argument("--no-chart", action="store_true")
    c.add_argument("--quiet", action="store_true", help="no progress bars or report")
    c.set_defaults(func=cmd_compile)


def judge_model(spec: str) -> Any:
    """A judge in the model grammar: ``lc:module:attr`` or ``provider:model``. The older bare
    ``module:attr`` still loads when ``module`` imports and has ``attr`` (deprecated)."""
    import importlib
    import warnings

    from fipo_middleware.specs import ModelSpec, load_langchain, parse_model_spec

    m = parse_model_spec(spec, what="judge").require("lc", "provider", what="judge")
    if m.kind == "provider":
        module, _, attr = m.target.partition(":")
        try:
            legacy = hasattr(importlib.import_module(module), attr.split(".")[0])
        except ImportError:
            legacy = False
        if legacy:
            warnings.warn(f"--judge {spec}: a bare module:attr is deprecated; write lc:{spec}",
                          DeprecationWarning, stacklevel=2)
            m = ModelSpec("lc", m.target, text=spec)
    return load_langchain(m, temperature=0)


def cmd_eval_judge(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evaluation.judge import (
        ANSWER_JUDGE_INSTRUCTIONS,
        JUDGE_INSTRUCTIONS,
        build_report,
        import_verdicts,
        judge_with_model,
        prepare,
        prepare_answers,
        write_report,
    )

    if args.optimizer:
        raise FIPOError("eval-judge compares --first and --second; it takes no --optimizer")
    if args.import_answer_verdicts and not args.answer_with:
        raise FIPOError("--import-answer-verdicts needs --answer-with SPEC (the model that "
                        "answered the pairs)")
    if args.answer_max_tokens < 1:
        raise FIPOError(f"--answer-max-tokens must be at least 1, got {args.answer_max_tokens}")
    out = Path(args.output)
    sources, blind, key = prepare(
        args.prompts, args.first, args.second, out, limit=args.limit, seed=args.seed,
        progress=not args.quiet, n_threads=args.n_threads,
        max_tokens=args.optimizer_max_tokens, max_words=args.max_words, retries=args.retries,
    )
    models = {}
    for ref in args.judge or []:
        name, sep, body = ref.partition("=")
        name, body = (name, body) if sep else (ref.split(":")[-1], ref)
        models[name] = judge_model(body)

    def stage(folder: Path, blind: list, key: list, imports: list[str] | None,
              instructions: str, flag: str, answered_by: str | None = None) -> Any:
        judges: dict[str, Any] = {
            name: judge_with_model(m, blind, folder / f"verdicts-{name}.jsonl", not args.quiet,
                                   instructions)
            for name, m in models.items()}
        for path in imports or []:
            judges[Path(path).stem] = import_verdicts(path, key)
        if not judges:
            print(f"fipo eval-judge: {len(blind)} blind pairs in {folder / 'pairs.jsonl'} "
                  f"(instructions in {folder / 'JUDGE.md'}; the key stays in "
                  f"{folder / 'key.jsonl'}); judge them and rerun with {flag} FILE",
                  file=sys.stderr)
            return None
        report = build_report(sources, key, judges)
        if answered_by:
            report["answered_by"] = answered_by
        files = write_report(report, folder, chart=not args.no_chart)
        return files["markdown"]

    markdown = stage(out, blind, key, args.import_verdicts, JUDGE_INSTRUCTIONS,
                     "--import-verdicts")
    if args.answer_with:
        from evaluation.downstream import parse_downstream

        ds = parse_downstream(args.answer_with, n_threads=args.n_threads)
        blind2, key2 = prepare_answers(args.prompts, sources, out, ds, limit=args.limit,
                                       seed=args.seed, max_tokens=args.answer_max_tokens,
                                       progress=not args.quiet)
        answers_md = stage(out / "answers", blind2, key2, args.import_answer_verdicts,
                           ANSWER_JUDGE_INSTRUCTIONS, "--import-answer-verdicts", ds.name)
        if answers_md is not None and markdown is None:
            markdown = answers_md
        elif answers_md is not None and not args.quiet:
            print(answers_md.read_text(encoding="utf-8"))
    if markdown is None:
        return 0
    return _finish(args, markdown, f"fipo eval-judge: reports in {out}/")


def cmd_calibrate_verifier(args: argparse.Namespace) -> int:
    from evaluation.calibrate import calibrate, load_runs, render_markdown, write_report
    from fipo_middleware.verifier import load_verifier

    if not 0.0 <= args.max_loss <= 1.0:
        raise FIPOError(f"--max-loss must be between 0 and 1, got {args.max_loss}")
    if args.folds < 2:
        raise FIPOError(f"--folds must be at least 2, got {args.folds}")
    runs = load_runs(args.prompts, args.run, seed=args.seed, first_try_only=args.first_try_only)
    report = calibrate(runs, load_verifier(args.verifier), max_loss=args.max_loss,
                       folds=args.folds, seed=args.seed)
    files = write_report(report, args.output)
    if args.write_margin:
        from pathlib import Path

        from fipo_middleware.jsonl import write_text_atomic

        path = Path(args.verifier)
        if not (path.is_file() and path.suffix == ".json"):
            raise FIPOError("--write-margin needs a feature verifier .json as --verifier")
        data = json.loads(path.read_text(encoding="utf-8"))
        data["margin"] = report["verifier_margin"]
        data["calibration"] = {"prompts": args.prompts, "runs": list(report["runs"]),
                               "max_loss": args.max_loss}
        write_text_atomic(path, json.dumps(data, indent=1) + "\n")
        print(f"fipo calibrate-verifier: margin {data['margin']:+.4f} written to {path}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_markdown(report))
    print(f"fipo calibrate-verifier: {files['json']}", file=sys.stderr)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--optimizer", action="append", metavar="SPEC",
                   help="naive | base | fipo | gguf:PATH | lc:module:attr, optionally NAME=SPEC; "
                        "repeat or comma-separate (default: naive,base; naive is always added)")
    p.add_argument("--limit", type=int, default=None, help="examples (pairs) per task file")
    p.add_argument("--output", default=None, help="output folder (holds the resumable cache)")
    p.add_argument("--n-threads", type=int, default=None, help="llama.cpp threads")
    p.add_argument("--optimizer-max-tokens", type=int, default=128)
    p.add_argument("--max-words", type=int, default=None, help="optimized instruction budget")
    p.add_argument("--retries", type=int, default=None,
                   help="guarded resamples per prompt (default: the optimizer's own; "
                        "0 = one greedy try)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or tables")


def add_subcommands(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "eval", help="downstream accuracy of naive vs optimized prompts on task files",
        description="Evaluate prompt optimizers by the accuracy of downstream models on tasks "
                    "(BIG-bench task.json or JSONL with instruction/input/options/target). "
                    "Rerunning with the same --output resumes from its cache.",
    )
    p.add_argument("tasks", nargs="+", metavar="TASK_FILE")
    _common(p)
    p.set_defaults(output="runs/eval")
    p.add_argument("--seed", type=int, default=0, help="example sampling, option order, bootstrap")
    p.add_argument("--downstream", action="append", metavar="SPEC",
                   help="smollm2 | gguf:PATH | hf:MODEL | lc:module:attr, optionally NAME=SPEC; "
                        "repeat or comma-separate (default: smollm2)")
    p.add_argument("--mc-scorer", action="append", metavar="NAME",
                   help="loglik and/or letter (default: both where supported)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="generation tasks")
    p.add_argument("--letter-max-tokens", type=int, default=8, help="letter scorer")
    p.add_argument("--n-ctx", type=int, default=2048, help="llama.cpp downstream context")
    p.add_argument("--instruction-source", choices=["generic", "description"], default="generic",
                   help="instruction for BIG-bench tasks without task_prefix")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--no-chart", action="store_true")
    p.set_defaults(func=cmd_eval)

    q = subparsers.add_parser(
        "eval-prompts", help="intrinsic optimizer metrics on prompt pairs (BPO format)",
        description="Usable-rewrite rate (the guard), faithfulness (numbers, quotes, options "
                    "kept) and ROUGE-L to the reference rewrite, vs the identity baseline.",
    )
    q.add_argument("pairs", metavar="PAIRS.json")
    _common(q)
    q.add_argument("--json", action="store_true", help="print the summary as JSON")
    q.set_defaults(func=cmd_eval_prompts)
    _add_compile(subparsers)

    j = subparsers.add_parser(
        "eval-judge", help="blind pairwise judging of two prompt sources (e.g. fipo vs naive)",
        description="Texts from two sources for every prompt, shown to a judge as A/B in random "
                    "order with the key kept apart; win/tie/lose of the first source with 95 %% "
                    "intervals, per category, per judge and combined. Without --judge or "
                    "--import-verdicts it only exports the blind pairs. Resumable.",
    )
    j.add_argument("prompts", metavar="PROMPTS.jsonl", help="id, prompt, optional category")
    j.add_argument("--first", default="fipo", metavar="SPEC",
                   help="source scored: an --optimizer spec or file:PATH (default: fipo)")
    j.add_argument("--second", default="naive", metavar="SPEC",
                   help="source compared against (default: naive)")
    j.add_argument("--judge", action="append", metavar="[NAME=]lc:module:attr|provider:model",
                   help="a LangChain chat model as judge; repeat for two judges")
    j.add_argument("--import-verdicts", action="append", metavar="FILE",
                   help="verdicts JSONL (pair_id, verdict A/B/tie, task_changed) from an "
                        "external judge; repeat for two judges")
    j.add_argument("--answer-with", metavar="SPEC",
                   help="second stage, as BPO evaluates: answer both texts with this "
                        "downstream model (smollm2, gguf:PATH, hf:MODEL, lc:module:attr, "
                        "provider:model) and judge the answers against the user's request "
                        "(DIR/answers/)")
    j.add_argument("--answer-max-tokens", type=int, default=256, metavar="N",
                   help="longest answer the downstream writes (default 256)")
    j.add_argument("--import-answer-verdicts", action="append", metavar="FILE",
                   help="verdicts on DIR/answers/pairs.jsonl from an external judge; repeat")
    j.add_argument("--seed", type=int, default=0, help="A/B order and pair ids")
    j.add_argument("--no-chart", action="store_true")
    _common(j)
    j.set_defaults(output="runs/judge", func=cmd_eval_judge)

    v = subparsers.add_parser(
        "calibrate-verifier",
        help="choose FIPOOptimizer.verifier_margin from judged runs (served losses <= target)",
        description="Scores each judged run's rewrites against the naive prompt with a reward "
                    "model and picks the margin whose served losses stay at or under "
                    "--max-loss with the most wins; reports in-sample and cross-validated "
                    "outcomes. No new judging: a rewrite below the margin is the naive prompt.",
    )
    v.add_argument("prompts", metavar="PROMPTS.jsonl", help="the dev prompts the runs judged")
    v.add_argument("--verifier", required=True, metavar="PATH",
                   help="a feature verifier .json or a reward-model folder (fipo train-verifier)")
    v.add_argument("--run", action="append", required=True,
                   metavar="NAME=TEXTS.jsonl:VERDICTS.jsonl[:VERDICTS.jsonl]",
                   help="a judged run (eval-judge --first file:TEXTS vs naive) and its "
                        "judges' verdicts; repeat per run")
    v.add_argument("--max-loss", type=float, default=0.10,
                   help="largest share of prompts served a judged loss (default 0.10)")
    v.add_argument("--folds", type=int, default=2, help="cross-validation folds (default 2)")
    v.add_argument("--seed", type=int, default=0, help="the eval-judge seed of the runs")
    v.add_argument("--output", default="runs/calibrate", metavar="DIR")
    v.add_argument("--first-try-only", action="store_true",
                   help="score the runs as retries=0 serves them: a text that took more than "
                        "one try counts as the naive prompt")
    v.add_argument("--write-margin", action="store_true",
                   help="store the chosen margin in the feature verifier's .json (what "
                        "FIPOOptimizer.default(verify=True) serves with)")
    v.add_argument("--json", action="store_true", help="print the report as JSON")
    v.set_defaults(func=cmd_calibrate_verifier)
