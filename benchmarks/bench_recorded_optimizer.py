"""A chat model you cannot run here, as fipo's optimizer: record its requests, replay its replies.

``FIPOOptimizer.from_llm`` takes any LangChain chat model. To measure one that this machine
cannot run (a larger local model, or a strong model standing in for one), this script runs the
real optimizer as ``fipo eval-judge`` calls it (``rewrite``: code fences and option lines kept
byte for byte, meta-prompt, injection check, parsing, guard, append extraction, verifier) over a
prompt file twice:

    # 1. the exact messages the optimizer sends, one request per line ({key, messages})
    .venv/bin/python benchmarks/bench_recorded_optimizer.py export evaluation/data/judge_dev.jsonl \
        --requests runs/strong/requests.jsonl
    # 2. someone answers them: {key, reply} per line (the model, a person, another tool)
    # 3. the replies served through the same optimizer; texts for `fipo eval-judge file:`
    .venv/bin/python benchmarks/bench_recorded_optimizer.py serve evaluation/data/judge_dev.jsonl \
        --replies runs/strong/replies.jsonl --output runs/strong  # texts-{rewrite,append}.jsonl

A request without a recorded reply gets an empty reply, which the optimizer rejects and serves
the naive prompt for (``serve`` counts them and says so). One reply per request: a LangChain
model's sampling is fixed at construction, so retries would resend the same messages.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import Field

from fipo_middleware.jsonl import iter_jsonl, write_jsonl_atomic

MODES = ("rewrite", "append")


def request_key(messages: list[BaseMessage]) -> str:
    blob = json.dumps([[m.type, m.content] for m in messages], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]


class RecordedChatModel(BaseChatModel):
    """Answers from a recorded {key: reply} table; records every request it was sent."""

    replies: dict[str, str] = Field(default_factory=dict)
    requests: dict[str, list[dict[str, str]]] = Field(default_factory=dict)
    missing: set[str] = Field(default_factory=set)

    @property
    def _llm_type(self) -> str:
        return "recorded"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        digest = hashlib.sha256(json.dumps(self.replies, sort_keys=True).encode()).hexdigest()
        return {"replies": digest[:16]}

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: Any = None, **kwargs: Any) -> ChatResult:
        key = request_key(messages)
        self.requests[key] = [{"role": m.type, "content": str(m.content)} for m in messages]
        reply = self.replies.get(key)
        if reply is None:
            self.missing.add(key)
            reply = ""
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=reply))])


def _rows(path: Path) -> list[dict[str, Any]]:
    return [row for _, row in iter_jsonl(path)]


def _optimizer(model: RecordedChatModel, mode: str, verifier: str | None) -> Any:
    from fipo_middleware.optimizer import FIPOOptimizer

    kw: dict[str, Any] = {"mode": mode, "retries": 0, "cache_size": 0}
    if verifier:
        from fipo_middleware.verifier import FeatureVerifier

        v = FeatureVerifier(verifier)
        kw |= {"verifier": v, "verifier_margin": v.margin}
    return FIPOOptimizer.from_llm(model, **kw)


def export(prompts: Path, requests: Path) -> None:
    model = RecordedChatModel()
    opt = _optimizer(model, "rewrite", None)
    for r in _rows(prompts):
        opt.rewrite(r["prompt"])
    requests.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl_atomic(requests, [{"key": k, "messages": m} for k, m in model.requests.items()])
    print(f"{len(model.requests)} requests for {len(_rows(prompts))} prompts -> {requests}")


def serve(prompts: Path, replies: Path, output: Path, verifier: str | None) -> None:
    table = {r["key"]: r["reply"] for r in _rows(replies)}
    output.mkdir(parents=True, exist_ok=True)
    for mode in MODES:
        model = RecordedChatModel(replies=table)
        opt = _optimizer(model, mode, verifier)
        out = []
        for r in _rows(prompts):
            t0 = time.perf_counter()
            text, res = opt.rewrite(r["prompt"])
            out.append({"id": r["id"], "text": text,
                        "fallback_reason": res.fallback_reason,
                        "latency_ms": round(1000 * (time.perf_counter() - t0), 1),
                        "attempts": 1, "verifier_margin": None})
        name = f"texts-{mode}{'-verified' if verifier else ''}.jsonl"
        write_jsonl_atomic(output / name, out)
        kept = sum(o["fallback_reason"] is not None for o in out)
        print(f"{mode}: {len(out)} prompts, naive served for {kept} "
              f"({len(model.missing)} requests had no reply) -> {output / name}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("prompts", type=Path)
    e.add_argument("--requests", type=Path, required=True)
    s = sub.add_parser("serve")
    s.add_argument("prompts", type=Path)
    s.add_argument("--replies", type=Path, required=True)
    s.add_argument("--output", type=Path, required=True)
    s.add_argument("--verifier", default=None,
                   help="a verifier JSON (at its calibrated margin); default: guard only")
    a = ap.parse_args(argv)
    for p in [a.prompts] + ([a.replies] if a.cmd == "serve" else []):
        if not p.is_file():
            sys.exit(f"error: no such file: {p}")
    if a.cmd == "export":
        export(a.prompts, a.requests)
    else:
        serve(a.prompts, a.replies, a.output, a.verifier)


if __name__ == "__main__":
    main()
