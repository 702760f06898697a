"""``fipo pop build``: seed naive prompts + a weak and a strong (teacher) LangChain model ->
POP records.

Per naive prompt:

1. silver response = the weak model's answer; golden response = the seed's reference answer
   when it has one, else the teacher's answer;
2. chosen = the teacher's optimized prompt (meta-prompt with naive prompt + silver + golden);
   rejected = the weak model's optimized prompt (meta-prompt with naive prompt + silver), the
   realistic failure; an empty weak rewrite falls back to the naive prompt itself;
3. analytic filters: the chosen prompt must pass the guard (``fipo_middleware.guard``: does
   not answer the task, keeps numbers/quotes/options, within the word budget, no template
   text, same language); rejected must not be a near-duplicate of chosen; the naive prompt
   must not be a near-duplicate of one already kept;
4. cross-validation with the FIPO discriminator (the teacher by default): the pair is judged
   in both A/B orders and kept only when both verdicts agree; when both prefer the weak
   rewrite (and it passes the guard) the pair is swapped, otherwise it is dropped.

Both rewrites are made as the middleware makes candidates (``FIPOOptimizer.candidates``: the
meta-prompt, parsing, the guard), one try each.

Runs on a thread pool with a tqdm bar. Output is append-only JSONL (one POP record per line,
flushed); filtered or failed prompts go to ``<output>.rejects.jsonl`` with the reason and are
logged. A rerun skips ids already in the output and ids filtered before (errors are retried).

Models: any LangChain chat model or LLM. ``local_chat_model()`` gives a llama.cpp chat model
over a GGUF (default: the bundled SmolLM2); an API teacher is one constructor argument, e.g.
``POPBuilder(weak=local_chat_model(), teacher=ChatOpenAI(model="gpt-4o"))``. llama.cpp models
are not safe under concurrent calls, so calls to them are serialized (API models run in
parallel).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.backends.base import DecodingParams, MetaPrompt
from fipo_middleware.backends.langchain import LangChainBackend
from fipo_middleware.guard import check_rewrite
from fipo_middleware.optimizer import Candidate, FIPOOptimizer
from fipo_middleware.template import Dialect, MetaPromptInput, build_discriminator
from training.pop import POPRecord, SeedPrompt, append_jsonl, done_ids

logger = logging.getLogger("training.build")


def local_chat_model(
    gguf_path: str | os.PathLike[str] | None = None,
    *,
    lora_path: str | os.PathLike[str] | None = None,
    max_tokens: int = 256,
    temperature: float = 0.0,
    n_ctx: int = 2048,
    n_threads: int | None = None,
) -> Any:
    """A LangChain chat model over llama.cpp (``ChatLlamaCpp``); default: bundled SmolLM2."""
    from langchain_community.chat_models import ChatLlamaCpp

    from fipo_middleware.models import smollm2_gguf_path

    kwargs: dict[str, Any] = dict(
        model_path=str(gguf_path or smollm2_gguf_path()), n_ctx=n_ctx, max_tokens=max_tokens,
        temperature=temperature, n_threads=n_threads, verbose=False,
    )
    if lora_path:
        kwargs["lora_path"] = str(lora_path)
    return ChatLlamaCpp(**kwargs)


def model_from_spec(spec: str, *, max_tokens: int = 256) -> Any:
    """A chat model from the one model grammar (``fipo_middleware.specs``): ``smollm2`` or a
    GGUF (llama.cpp), ``lc:module:attr``, or ``provider:model`` (any LangChain chat model via
    ``init_chat_model``, e.g. ``openai:gpt-4o``; credentials from the provider's usual
    environment variables)."""
    from fipo_middleware.specs import load_langchain, parse_model_spec

    m = parse_model_spec(spec).require("smollm2", "gguf", "lc", "provider", lora=False)
    if m.kind in ("smollm2", "gguf"):
        return local_chat_model(m.path, max_tokens=max_tokens)
    return load_langchain(m, temperature=0)


_LOCKS: dict[int, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(model: Any) -> threading.Lock:
    """One lock per llama.cpp model object, shared by every role it plays (weak, teacher and
    judge may be the same object: concurrent calls into one ``Llama`` crash it)."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(id(model), threading.Lock())


class _Model:
    """A LangChain model as an ``OptimizerBackend``; serialized when it is llama.cpp."""

    def __init__(self, model: Any, params: DecodingParams) -> None:
        self.backend = LangChainBackend(model)
        self.params = params
        name = type(model).__name__.lower()
        self.lock: threading.Lock | None = _lock_for(model) if "llamacpp" in name else None
        self.name = type(model).__name__

    @property
    def identity(self) -> str:
        return self.backend.identity

    @property
    def context_length(self) -> int | None:
        return self.backend.context_length

    def count_tokens(self, prompt: MetaPrompt) -> int:
        return self.backend.count_tokens(prompt)

    def generate(self, prompt: MetaPrompt, params: DecodingParams) -> str:
        if self.lock is None:
            return self.backend.generate(prompt, params)
        with self.lock:
            return self.backend.generate(prompt, params)

    def __call__(self, prompt: MetaPrompt) -> str:
        return self.generate(prompt, self.params)

    def optimizer(self, dialect: Dialect) -> FIPOOptimizer:
        """This model as the optimizer: one greedy try, parsed and guarded, no cache. Seed
        prompts are data here, so one that looks like an injection is still rewritten."""
        return FIPOOptimizer(backend=self, dialect=dialect, decoding=self.params,
                             cache_size=0, reject_injection=False)


class Filtered(Exception):
    """A seed prompt dropped by a filter (not an error: not retried on resume)."""

    def __init__(self, reason: str, detail: Any = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


_SPACE = re.compile(r"\s+")
_PUNCT = re.compile(r"[^\w\s]")


def normalize(text: str) -> str:
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


def similarity(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, normalize(a), normalize(b), autojunk=False).ratio()


def parse_verdict(text: str) -> str | None:
    m = re.search(r"\b([AB])\b", text.strip())
    return m.group(1) if m else None


@dataclass
class BuildStats:
    kept: int = 0
    skipped_done: int = 0
    filtered: Counter[str] = field(default_factory=Counter)
    errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"kept": self.kept, "skipped_done": self.skipped_done,
                "filtered": dict(self.filtered), "errors": self.errors}


class POPBuilder:
    """Builds POP records from seed naive prompts with a weak and a teacher model."""

    def __init__(
        self,
        weak: Any,
        teacher: Any,
        *,
        discriminator: Any = None,
        dialect: Dialect | str = Dialect.CHAT,
        workers: int = 4,
        max_tokens: int = 256,
        near_duplicate: float = 0.9,
        cross_validate: bool = True,
    ) -> None:
        params = DecodingParams(max_tokens=max_tokens)
        self.weak = _Model(weak, params)
        self.teacher = _Model(teacher, params)
        if discriminator is None or discriminator is teacher:
            self.judge = self.teacher
        else:
            self.judge = _Model(discriminator, params)
        self.dialect = Dialect.parse(dialect)
        self._teacher_optimizer = self.teacher.optimizer(self.dialect)
        self._weak_optimizer = self.weak.optimizer(self.dialect)
        self.workers = max(1, workers)
        self.near_duplicate = near_duplicate
        self.cross_validate = cross_validate
        self._kept_prompts: list[str] = []
        self._kept_lock = threading.Lock()

    # ------------------------------------------------------------------ one record
    def _answer(self, model: _Model, naive: str) -> str:
        return model([{"role": "user", "content": naive}]).strip()

    @staticmethod
    def _rewrite(optimizer: FIPOOptimizer, seed: SeedPrompt, silver: str | None,
                 golden: str | None, budget: int) -> Candidate:
        (candidate,) = optimizer.candidates(seed.prompt, silver, golden, budget, n=1,
                                            options=seed.options)
        return candidate

    def _judge(self, naive: str, a: str, b: str, golden: str) -> str | None:
        return parse_verdict(self.judge(build_discriminator(naive, a, b, golden)))

    def build_one(self, seed: SeedPrompt) -> POPRecord:
        naive = seed.prompt
        with self._kept_lock:
            for kept in self._kept_prompts:
                if similarity(naive, kept) >= self.near_duplicate:
                    raise Filtered("near_duplicate_prompt", kept[:80])
        silver = self._answer(self.weak, naive) or None
        golden = seed.reference or self._answer(self.teacher, naive) or None
        budget = MetaPromptInput(naive).budget
        teacher = self._rewrite(self._teacher_optimizer, seed, silver, golden, budget)
        chosen = teacher.rewrite
        if not teacher.accepted:
            raise Filtered("chosen_" + "+".join(teacher.guard_reasons), chosen[:200])
        weak = self._rewrite(self._weak_optimizer, seed, silver, None, budget)
        rejected, rejected_kind = weak.rewrite, "weak_rewrite"
        if not rejected:
            rejected, rejected_kind = naive, "naive_prompt"
        if similarity(chosen, rejected) >= self.near_duplicate:
            raise Filtered("near_duplicate_pair", rejected[:200])
        rejected_reasons = (weak.guard_reasons if rejected_kind == "weak_rewrite"
                            else check_rewrite(naive, naive, budget, seed.options).reasons)
        verdicts: list[str | None] = []
        swapped = False
        if self.cross_validate:
            g = golden or ""
            v1 = self._judge(naive, chosen, rejected, g)  # chosen is A
            v2 = self._judge(naive, rejected, chosen, g)  # chosen is B
            verdicts = [v1, v2]
            if v1 == "A" and v2 == "B":
                pass  # both orders prefer the teacher's rewrite: keep the pair as built
            elif v1 == "B" and v2 == "A":
                if rejected_reasons:
                    raise Filtered("discriminator_prefers_unusable_rejected", verdicts)
                chosen, rejected, swapped = rejected, chosen, True
            else:
                raise Filtered("discriminator_inconsistent", verdicts)
        with self._kept_lock:
            for kept in self._kept_prompts:  # re-check: another worker may have kept one
                if similarity(naive, kept) >= self.near_duplicate:
                    raise Filtered("near_duplicate_prompt", kept[:80])
            self._kept_prompts.append(naive)
        return POPRecord(
            id=seed.id,
            naive_prompt=naive,
            silver_response=silver,
            golden_response=golden,
            chosen=chosen,
            rejected=rejected,
            task_kind=seed.task_kind,
            options=seed.options,
            source="built",
            metadata={
                "teacher": self.teacher.name,
                "weak": self.weak.name,
                "golden_from": "reference" if seed.reference else "teacher",
                "rejected_kind": "teacher_rewrite" if swapped else rejected_kind,
                "rejected_guard": list(rejected_reasons),
                "discriminator": verdicts,
                "swapped": swapped,
            },
        )

    # ------------------------------------------------------------------ the run
    def run(
        self,
        seeds: list[SeedPrompt],
        output: str | os.PathLike[str],
        *,
        rejects: str | os.PathLike[str] | None = None,
        progress: bool = True,
    ) -> BuildStats:
        from tqdm import tqdm

        out = Path(output)
        rej = Path(rejects) if rejects else rejects_path(out)
        stats = BuildStats()
        done = done_ids(out) | _filtered_ids(rej)
        if out.is_file():
            from training.pop import iter_jsonl

            # Resumed run: earlier records count for near-duplicate detection.
            self._kept_prompts.extend(str(row.get("naive_prompt", ""))
                                      for _, row in iter_jsonl(out))
        todo = [s for s in seeds if s.id not in done]
        stats.skipped_done = len(seeds) - len(todo)
        write_lock = threading.Lock()
        with ThreadPoolExecutor(max_workers=self.workers) as pool, \
                tqdm(total=len(todo), desc="building POP", unit="prompt",
                     disable=not progress) as bar:
            futures = {pool.submit(self.build_one, s): s for s in todo}
            for fut in as_completed(futures):
                seed = futures[fut]
                try:
                    record = fut.result()
                except Filtered as f:
                    logger.warning("%s: filtered (%s)", seed.id, f.reason)
                    with write_lock:
                        append_jsonl(rej, {"id": seed.id, "kind": "filtered",
                                           "reason": f.reason, "detail": f.detail})
                    stats.filtered[f.reason] += 1
                except Exception as e:  # one bad prompt must not stop the run
                    logger.warning("%s: failed (%s: %s)", seed.id, type(e).__name__, e)
                    with write_lock:
                        append_jsonl(rej, {"id": seed.id, "kind": "error",
                                           "reason": f"{type(e).__name__}: {e}"})
                    stats.errors += 1
                else:
                    with write_lock:
                        append_jsonl(out, record.model_dump())
                    stats.kept += 1
                bar.update(1)
                bar.set_postfix(kept=stats.kept, dropped=stats.errors + sum(
                    stats.filtered.values()))
        return stats


def rejects_path(output: Path) -> Path:
    return output.with_name(output.stem + ".rejects.jsonl")


def _filtered_ids(path: Path) -> set[str]:
    """Ids a filter dropped (errors are not included: they are retried)."""
    return done_ids(path, where=lambda row: row.get("kind") == "filtered")
