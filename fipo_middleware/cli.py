"""``fipo`` command line. ``fipo optimize`` lives here; every other subcommand comes from a
plugin: an ``add_subcommands(subparsers)`` function registered under the ``fipo.cli`` entry-point
group (this project's ``training`` and ``evaluation`` packages register theirs in
pyproject.toml), which sets ``func`` on its parsers. The core imports none of them by name."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from fipo_middleware.errors import FIPOError

PLUGIN_GROUP = "fipo.cli"


def _build_optimizer(args: argparse.Namespace) -> Any:
    from fipo_middleware.backends.base import DecodingParams
    from fipo_middleware.optimizer import FIPOOptimizer

    common: dict[str, Any] = {
        "decoding": DecodingParams(max_tokens=args.max_tokens),
        "on_failure": "raise" if args.strict else "naive",
    }
    if args.max_words:
        common["max_words"] = args.max_words
    if args.retries is not None:
        common["retries"] = args.retries
    if args.mode != "rewrite":
        common["mode"] = args.mode
    if args.model:
        if args.verify:
            raise SystemExit("fipo optimize: --verify checks the bundled default; with --model "
                             "use the Python API (FIPOOptimizer(verifier=...))")
        return FIPOOptimizer.from_gguf(
            args.model, lora_path=args.lora, dialect=args.dialect, n_ctx=args.n_ctx, **common
        )
    # The verifier's margin is calibrated on the adapter's rewrites; the untuned base is the
    # unverified baseline, as the eval spec ``base`` is.
    verify = not args.no_adapter if args.verify is None else args.verify
    return FIPOOptimizer.default(use_adapter=not args.no_adapter, verify=verify,
                                 n_ctx=args.n_ctx, **common)


def _read_jsonl_inputs(path: Path) -> list[dict[str, Any]]:
    from fipo_middleware.errors import DataFormatError
    from fipo_middleware.jsonl import iter_jsonl

    rows = []
    for lineno, row in iter_jsonl(path, "input"):
        prompt = row.get("prompt", row.get("naive_prompt"))
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataFormatError(f"{path}:{lineno}: field 'prompt' missing or empty")
        row.setdefault("id", str(lineno))
        row["id"] = str(row["id"])
        rows.append(row)
    return rows


def cmd_optimize(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from fipo_middleware.jsonl import append_jsonl, done_ids

    if args.text is None and args.input is None:
        raise SystemExit("fipo optimize: give TEXT or --input FILE.jsonl")
    if args.input is not None and args.output is None:
        raise SystemExit("fipo optimize: --input needs --output FILE.jsonl")
    if args.text is not None:
        text = sys.stdin.read() if args.text == "-" else args.text
        if not text.strip():  # before loading any model: nothing to optimize
            from fipo_middleware.errors import InvalidPromptError

            raise InvalidPromptError("the naive prompt is empty")
        opt = _build_optimizer(args)
        result = opt.optimize(text)
        if args.json:
            print(json.dumps(result.to_dict(), ensure_ascii=False))
        else:
            if result.used_fallback:
                print(
                    f"fipo: fell back to the naive prompt ({result.fallback_reason})",
                    file=sys.stderr,
                )
                if result.fallback_reason.startswith("verifier:"):
                    print("fipo: --no-verify shows the unverified rewrite", file=sys.stderr)
            print(result.optimized_prompt)
        return 0
    rows = _read_jsonl_inputs(Path(args.input))
    done = done_ids(args.output)
    todo = [r for r in rows if r["id"] not in done]
    if done:
        print(
            f"fipo: resuming, {len(rows) - len(todo)} of {len(rows)} already in {args.output}",
            file=sys.stderr,
        )
    opt = _build_optimizer(args) if todo else None
    fallbacks = 0
    for row in tqdm(todo, desc="optimizing", unit="prompt", disable=args.quiet):
        result = opt.optimize(
            row.get("prompt", row.get("naive_prompt")),
            row.get("silver_response"),
            row.get("golden_response"),
            row.get("max_words"),
        )
        fallbacks += result.used_fallback
        append_jsonl(args.output, {"id": row["id"], **result.to_dict()})
    print(
        f"fipo: wrote {len(todo)} prompt(s) to {args.output} ({fallbacks} fell back)",
        file=sys.stderr,
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fipo", description="Local FIPO prompt optimization")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("optimize", help="optimize a prompt or a JSONL file of prompts")
    p.add_argument("text", nargs="?", help="the naive prompt ('-' reads stdin)")
    p.add_argument(
        "--input",
        help="JSONL with 'prompt' (optional id, silver_response, golden_response, max_words)",
    )
    p.add_argument("--output", help="JSONL to append results to (resumable)")
    p.add_argument("--model", help="GGUF optimizer model (default: SmolLM2 + FIPO adapter)")
    p.add_argument("--lora", help="GGUF LoRA adapter for --model")
    p.add_argument("--dialect", default="chat", choices=["chat", "fipo-original"])
    p.add_argument("--no-adapter", action="store_true",
                   help="serve the untuned base model (unverified unless --verify)")
    p.add_argument("--max-words", type=int, default=None)
    p.add_argument("--retries", type=int, default=None,
                   help="guarded resamples after a rejected rewrite (default: 0 for the "
                        "verified embedded model, 4 with --no-verify, 0 with --model)")
    p.add_argument("--max-tokens", type=int, default=256)
    p.add_argument("--n-ctx", type=int, default=2048)
    p.add_argument("--strict", action="store_true", help="fail instead of falling back")
    p.add_argument("--mode", default="rewrite", choices=["rewrite", "append"],
                   help="rewrite: the full rewrite; append: the naive prompt verbatim plus the "
                        "rewrite's complementary guidance")
    p.add_argument("--verify", action=argparse.BooleanOptionalAction, default=None,
                   help="serve a rewrite only when the bundled verifier scores it above the "
                        "naive prompt (the default for the embedded adapter); --no-verify: the "
                        "raw rewriter, guard only, 4 resamples")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_optimize)

    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            add_subcommands = ep.load()
        except ImportError as e:  # an extra that is not installed: its subcommands are absent
            logging.getLogger("fipo_middleware").debug("fipo plugin %s not loaded: %s", ep.name, e)
            continue
        add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except FIPOError as e:
        print(f"fipo {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"fipo {args.command}: interrupted; rerun the same command to resume", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
