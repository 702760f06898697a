"""``fipo pop build|import|diversify|mine``, ``fipo train sft|dpo|ipo|ipl`` and ``fipo export``,
wired into ``fipo`` by ``fipo_middleware.cli`` through ``add_subcommands``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from training.config import METHODS, add_config_arguments, config_from_args


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2, ensure_ascii=False))


# ---------------------------------------------------------------------------- pop
def cmd_pop_build(args: argparse.Namespace) -> int:
    from training.build import POPBuilder, model_from_spec
    from training.pop import load_seed_prompts

    seeds = load_seed_prompts(args.seeds)
    weak = model_from_spec(args.weak, max_tokens=args.max_tokens)
    teacher = weak if args.teacher == args.weak else model_from_spec(
        args.teacher, max_tokens=args.max_tokens)
    judge = model_from_spec(args.discriminator, max_tokens=8) if args.discriminator else None
    builder = POPBuilder(weak, teacher, discriminator=judge, dialect=args.dialect,
                         workers=args.workers, max_tokens=args.max_tokens,
                         near_duplicate=args.near_duplicate,
                         cross_validate=not args.no_cross_validate)
    stats = builder.run(seeds, args.output, progress=not args.quiet)
    print(f"fipo pop build: {stats.kept} kept, {sum(stats.filtered.values())} filtered, "
          f"{stats.errors} failed, {stats.skipped_done} already done -> {args.output}",
          file=sys.stderr)
    if stats.filtered:
        print("  filtered: " + ", ".join(f"{k}={v}" for k, v in stats.filtered.most_common()),
              file=sys.stderr)
    return 0


def cmd_pop_import(args: argparse.Namespace) -> int:
    from training.importers import import_bpo, import_fipo_pop
    from training.pop import save_pop

    if args.format == "bpo":
        records = import_bpo(args.input, bpo_rejected=args.bpo_rejected)
    else:
        records = import_fipo_pop(args.input)
    n = save_pop(args.output, records)
    with_rejected = sum(r.rejected is not None for r in records)
    print(f"fipo pop import: {n} records ({with_rejected} with a rejected prompt) -> "
          f"{args.output}", file=sys.stderr)
    return 0


def cmd_pop_diversify(args: argparse.Namespace) -> int:
    from training.diversify import diversify, format_counts, write_datasets
    from training.pop import load_pop

    records = load_pop(*args.input)
    if args.chosen_form == "append":
        from training.pop import append_form

        records, left_out = append_form(records)
        print(f"fipo pop diversify: append form: {len(records)} records, left out "
              + (", ".join(f"{k}={v}" for k, v in sorted(left_out.items())) or "none"),
              file=sys.stderr)
        if not records:
            from fipo_middleware.errors import DataFormatError

            raise DataFormatError("--chosen-form append: no record has metadata.edit keep, "
                                  "minimal_fix, or a judged-win append/rewrite with guidance")
    if args.max_chars:
        n = len(records)
        records = [r for r in records if len(r.naive_prompt) + len(r.chosen) <= args.max_chars]
        print(f"fipo pop diversify: {n - len(records)} records over {args.max_chars} characters "
              "left out", file=sys.stderr)
    data = diversify(records, seed=args.seed, dialect=args.dialect, mc_rate=args.mc_rate,
                     label_noise=args.label_noise)
    paths = write_datasets(data, args.output_dir)
    print(format_counts(data.counts()))
    if data.skipped:
        print("skipped: " + ", ".join(f"{k}={v}" for k, v in sorted(data.skipped.items())))
    print(f"fipo pop diversify: wrote {', '.join(str(p) for p in paths.values())}",
          file=sys.stderr)
    return 0


def cmd_pop_mine(args: argparse.Namespace) -> int:
    from fipo_middleware.backends.base import DecodingParams
    from fipo_middleware.models import default_adapter_path, smollm2_gguf_path
    from fipo_middleware.optimizer import FIPOOptimizer
    from training.mine import mine
    from training.pop import load_pop

    records = load_pop(*args.input)
    if args.limit:
        records = records[: args.limit]
    model = args.model or smollm2_gguf_path()
    # No --model and no --adapter: mine the shipped default (base + its adapter).
    adapter = args.adapter if (args.adapter or args.model) else default_adapter_path()
    opt = FIPOOptimizer.from_gguf(model, lora_path=adapter, n_threads=args.n_threads,
                                  decoding=DecodingParams(max_tokens=args.max_tokens))
    stats = mine(opt, records, args.output, samples=args.samples, progress=not args.quiet)
    print(f"fipo pop mine: {stats.mined} rejected rewrites from {stats.prompts} prompts "
          f"({stats.skipped_done} already done) -> {args.output}", file=sys.stderr)
    if stats.reasons:
        print("  guard reasons: " + ", ".join(f"{k}={v}" for k, v in stats.reasons.most_common()),
              file=sys.stderr)
    return 0


def cmd_pop_mine_judged(args: argparse.Namespace) -> int:
    from evaluation.calibrate import judged_rows, parse_run
    from training.mine import judged_records
    from training.pop import load_pop, save_pop

    pop = load_pop(*args.pop)
    records = []
    for spec in args.run:
        name, texts, verdicts = parse_run(spec)
        rows = judged_rows(args.prompts, texts, verdicts, seed=args.seed)
        got, counts = judged_records(rows, pop, run=name, judges=len(verdicts))
        records += got
        print(f"fipo pop mine-judged: {name}: " + ", ".join(
            f"{k}={counts[k]}" for k in ("win", "tie", "lose", "skip")) + f" -> {len(got)} records",
            file=sys.stderr)
    save_pop(args.output, records)
    print(f"fipo pop mine-judged: {len(records)} records -> {args.output}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------- train / export
def cmd_train(args: argparse.Namespace) -> int:
    from training.train import train

    cfg = config_from_args(args.method, args)
    result = train(cfg)
    _print_json({k: v for k, v in result.to_dict().items() if k != "losses"}
                | {"last_loss": result.losses[-1] if result.losses else None})
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from training.export import export

    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    result = export(args.trained, args.output_dir, formats=formats, base=args.base,
                    lora_base_gguf=args.lora_base_gguf, verify=not args.no_verify,
                    max_tokens=args.max_tokens)
    for name, path in result.files.items():
        print(f"{name:>5}: {path}")
    for name, rep in result.verification.items():
        print(f"verify {name}: llama.cpp == HF on {rep['matches']}/{rep['total']} prompts "
              f"(match rate {rep['match_rate']:.2f})")
    return 0


def cmd_train_verifier(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from training.pop import load_pop
    from training.verifier import VerifierConfig, train_verifier

    cfg = VerifierConfig(**{f.name: getattr(args, f.name) for f in fields(VerifierConfig)})
    final = train_verifier(load_pop(*args.data), cfg)
    print(f"fipo train-verifier: {cfg.kind} verifier in {final} (serve it with "
          "FIPOOptimizer(verifier=load_verifier(path), verifier_margin=...); choose the margin "
          "with fipo calibrate-verifier)", file=sys.stderr)
    return 0


def _add_train_verifier(sub: Any) -> None:
    from dataclasses import MISSING, fields

    from training.verifier import VerifierConfig

    v = sub.add_parser("train-verifier",
                       help="verifier that compares a candidate with the naive prompt")
    v.add_argument("--data", nargs="+", required=True, help="POP JSONL file(s)")
    for f in fields(VerifierConfig):
        flag = "--" + f.name.replace("_", "-")
        if f.default is MISSING:
            v.add_argument(flag, dest=f.name, required=True, help=f.metadata["help"])
        else:
            v.add_argument(flag, dest=f.name, type=type(f.default), default=f.default,
                           choices=("features", "reward-model") if f.name == "kind" else None,
                           help=f"{f.metadata['help']} (default: {f.default})")
    v.set_defaults(func=cmd_train_verifier)


def add_subcommands(sub: Any) -> None:
    # fipo pop ...
    pop = sub.add_parser("pop", help="build, import and diversify POP data")
    pop_sub = pop.add_subparsers(dest="pop_command", required=True)

    b = pop_sub.add_parser("build", help="seed prompts + weak/teacher models -> POP JSONL")
    b.add_argument("--seeds", required=True, help="JSONL: id, prompt, optional reference")
    b.add_argument("--output", required=True, help="POP JSONL (append-only, resumable)")
    b.add_argument("--weak", default="smollm2",
                   help="weak model: smollm2, a .gguf path, or provider:model")
    b.add_argument("--teacher", default="smollm2",
                   help="teacher model: smollm2, a .gguf path, or provider:model (e.g. "
                   "openai:gpt-4o)")
    b.add_argument("--discriminator", default=None, help="judge model (default: the teacher)")
    b.add_argument("--dialect", default="chat", choices=["chat", "fipo-original"])
    b.add_argument("--workers", type=int, default=4)
    b.add_argument("--max-tokens", type=int, default=256)
    b.add_argument("--near-duplicate", type=float, default=0.9,
                   help="similarity at which two prompts count as near-duplicates")
    b.add_argument("--no-cross-validate", action="store_true",
                   help="skip the two-order discriminator check")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=cmd_pop_build)

    i = pop_sub.add_parser("import", help="FIPO POP raw data or BPO pairs -> POP JSONL")
    i.add_argument("format", choices=["fipo-pop", "bpo"])
    i.add_argument("input", help="JSON list or JSONL, read in place")
    i.add_argument("--output", required=True)
    i.add_argument("--bpo-rejected", default="naive", choices=["naive", "null"],
                   help="BPO rejected prompt: the naive prompt (default) or none")
    i.set_defaults(func=cmd_pop_import)

    d = pop_sub.add_parser("diversify", help="POP -> SFT/DPO/IPL datasets (paper's scheme)")
    d.add_argument("--input", required=True, nargs="+", help="POP JSONL file(s)")
    d.add_argument("--output-dir", required=True)
    d.add_argument("--seed", type=int, default=2024)
    d.add_argument("--dialect", default="chat", choices=["chat", "fipo-original"])
    d.add_argument("--mc-rate", type=float, default=0.5)
    d.add_argument("--label-noise", type=float, default=0.2)
    d.add_argument("--chosen-form", default="written", choices=["written", "append"],
                   help="written: chosen as the record has it; append: the naive prompt verbatim "
                        "plus the teacher's guidance (keep/minimal_fix -> the naive prompt), the "
                        "form --mode append serves")
    d.add_argument("--max-chars", type=int, default=None,
                   help="leave out records whose naive prompt + chosen exceed this many "
                        "characters (they would be truncated at training's --max-length)")
    d.set_defaults(func=cmd_pop_diversify)

    m = pop_sub.add_parser("mine", help="POP + current optimizer -> its guard-rejected rewrites "
                           "as new POP records (on-policy negatives for DPO/IPO)")
    m.add_argument("--input", required=True, nargs="+", help="POP JSONL file(s)")
    m.add_argument("--output", required=True, help="POP JSONL (append-only, resumable)")
    m.add_argument("--model", default=None, help="GGUF optimizer (default: bundled SmolLM2)")
    m.add_argument("--adapter", default=None,
                   help="GGUF LoRA to mine (default with no --model: the shipped adapter)")
    m.add_argument("--samples", type=int, default=2, help="seeded resamples besides greedy")
    m.add_argument("--max-tokens", type=int, default=128)
    m.add_argument("--n-threads", type=int, default=None)
    m.add_argument("--limit", type=int, default=None)
    m.add_argument("--quiet", action="store_true")
    m.set_defaults(func=cmd_pop_mine)

    j = pop_sub.add_parser("mine-judged",
                           help="judged rewrites of POP prompts (fipo eval-judge vs naive) -> "
                                "POP records: losses as rejected, wins as chosen")
    j.add_argument("prompts", help="the prompts file eval-judge ran on (ids = POP record ids)")
    j.add_argument("--pop", required=True, nargs="+", help="the POP file(s) the prompts came from")
    j.add_argument("--run", required=True, action="append",
                   metavar="NAME=TEXTS.jsonl:VERDICTS.jsonl[:VERDICTS.jsonl]",
                   help="a judged run and its judges' verdicts; repeat per run")
    j.add_argument("--seed", type=int, default=0, help="the eval-judge seed of the runs")
    j.add_argument("--output", required=True, help="POP JSONL (written atomically)")
    j.set_defaults(func=cmd_pop_mine_judged)

    # fipo train METHOD
    t = sub.add_parser("train", help="fine-tune the optimizer (TRL; LoRA or full)")
    methods = t.add_subparsers(dest="method", required=True, metavar="METHOD")
    for method, what in zip(METHODS, ("supervised fine-tuning on (prompt, completion) rows",
                                      "DPO on (prompt, chosen, rejected) rows",
                                      "IPO (DPO with the IPO loss) on the same rows",
                                      "iterative preference learning from a POP file"),
                            strict=True):
        m = methods.add_parser(method, help=what)
        add_config_arguments(m, method)
        m.set_defaults(func=cmd_train)
    _add_train_verifier(sub)

    # fipo export
    e = sub.add_parser("export", help="merged HF, GGUF (f16/q8_0) and GGUF LoRA, verified")
    e.add_argument("trained", help="training output dir (or its final/ adapter)")
    e.add_argument("--output-dir", required=True)
    e.add_argument("--formats", default="hf,f16,q8_0,lora",
                   help="comma list of hf, f16, q8_0, f32, bf16, lora")
    e.add_argument("--base", default=None, help="base model if not the adapter's own")
    e.add_argument("--lora-base-gguf", default=None,
                   help="GGUF base to verify the LoRA on (default: the GGUF trained from)")
    e.add_argument("--no-verify", action="store_true")
    e.add_argument("--max-tokens", type=int, default=16, help="greedy tokens per check")
    e.set_defaults(func=cmd_export)
