"""Downstream models: what answers the (naive or optimized) prompts.

- :class:`LlamaCppDownstream`: a GGUF model through llama.cpp (default: the SmolLM2 GGUF).
  Generation and log-likelihoods (one context pass, then each option's tokens on top of the
  cached context).
- :class:`HFDownstream`: a transformers causal LM; generation and log-likelihoods from logits.
- :class:`LangChainDownstream`: any LangChain LLM or chat model; generation only (so the letter
  scorer for multiple choice).

Models load lazily on the first call, so a fully cached rerun loads nothing. ``calls`` counts
real model calls (tests use it to prove a resumed run does no new generation).

Spec strings for the CLI (:func:`parse_downstream`), each optionally ``NAME=SPEC``:
``smollm2`` | ``gguf:PATH`` | ``hf:MODEL_ID_OR_PATH`` | ``lc:module:attribute`` (an LLM/chat
model object, or a zero-argument factory returning one) | ``provider:model``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from fipo_middleware.errors import BackendError, FIPOError


@runtime_checkable
class Downstream(Protocol):
    name: str
    calls: int

    @property
    def key(self) -> str:
        """Stable cache key, known without loading the model."""
        ...

    @property
    def supports_loglik(self) -> bool: ...

    def generate(self, prompt: str, max_tokens: int) -> str: ...

    def loglik(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        """(summed log-prob, token count) of each continuation after the prompt."""
        ...


def _user_turn(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


class LlamaCppDownstream:
    """A GGUF model via llama.cpp. ``chat=True`` wraps the prompt in the model's chat template
    (a user turn; options are scored as the start of the assistant turn)."""

    supports_loglik = True

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        chat: bool = True,
    ) -> None:
        if model_path is None:
            from fipo_middleware.models import smollm2_gguf_path

            model_path = smollm2_gguf_path()
        self.model_path = Path(model_path)
        self.name = name or self.model_path.stem
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_gpu_layers = n_gpu_layers
        self.chat = chat
        self.calls = 0
        self._backend: Any = None

    @property
    def key(self) -> str:
        from fipo_middleware.models import file_digest

        digest = file_digest(self.model_path) if self.model_path.is_file() else "missing"
        return f"llama.cpp:{self.model_path.name}:{digest}:chat={self.chat}"

    @property
    def backend(self) -> Any:
        if self._backend is None:
            from fipo_middleware.backends.llamacpp import LlamaCppBackend

            # logits_all: llama.cpp keeps every position's logits, which the loglik scorer reads.
            self._backend = LlamaCppBackend(
                self.model_path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                n_gpu_layers=self.n_gpu_layers, logits_all=True,
            )
        return self._backend

    def _context(self, prompt: str) -> str:
        if self.chat and self.backend.llama.metadata.get("tokenizer.chat_template"):
            return self.backend.render(_user_turn(prompt))
        return prompt

    def generate(self, prompt: str, max_tokens: int) -> str:
        from fipo_middleware.backends.base import DecodingParams

        self.calls += 1
        params = DecodingParams(max_tokens=max_tokens, repeat_penalty=1.0)
        return self.backend.generate(self._context(prompt), params)

    def loglik(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        import numpy as np

        self.calls += 1
        llama = self.backend.llama
        ctx_text = self._context(prompt)
        ctx = llama.tokenize(ctx_text.encode("utf-8"), add_bos=True, special=True)
        conts: list[list[int]] = []
        for c in continuations:
            # Tokenize context+continuation together so merges across the boundary match what
            # the model would see; fall back to separate tokens if the context's tokens change.
            full = llama.tokenize((ctx_text + c).encode("utf-8"), add_bos=True, special=True)
            tail = full[len(ctx):] if full[: len(ctx)] == ctx else llama.tokenize(
                c.encode("utf-8"), add_bos=False, special=False
            )
            conts.append(tail or llama.tokenize(c.encode("utf-8"), add_bos=False, special=False))
        longest = max(len(t) for t in conts)
        if len(ctx) + longest > llama.n_ctx():
            raise BackendError(
                f"{self.name}: prompt of {len(ctx)} tokens + option of {longest} exceeds "
                f"n_ctx={llama.n_ctx()}; raise n_ctx"
            )
        with self.backend.exclusive():
            # Reuse the longest cached prefix (options of one prompt share its context).
            cached = llama.input_ids[: llama.n_tokens].tolist()
            keep = 0
            for a, b in zip(cached, ctx, strict=False):
                if a != b:
                    break
                keep += 1
            keep = min(keep, len(ctx) - 1)  # re-evaluate >= 1 token: its logits are needed
            llama.n_tokens = keep
            llama.eval(ctx[keep:])
            out: list[tuple[float, int]] = []
            last = np.array(llama.scores[len(ctx) - 1], dtype=np.float64)
            for toks in conts:
                llama.n_tokens = len(ctx)
                llama.eval(toks)
                rows = np.vstack([last, np.asarray(llama.scores[len(ctx): len(ctx) + len(toks) - 1],
                                                   dtype=np.float64)])
                logz = np.logaddexp.reduce(rows, axis=1)
                total = float(sum(rows[i, t] - logz[i] for i, t in enumerate(toks)))
                out.append((total, len(toks)))
            llama.n_tokens = len(ctx)
        return out


class HFDownstream:
    """A transformers causal LM (CPU or GPU). Greedy generation; log-likelihoods from logits."""

    supports_loglik = True

    def __init__(
        self,
        model: Any,
        *,
        tokenizer: Any = None,
        name: str | None = None,
        device: str | None = None,
        dtype: Any = "auto",
        gguf_file: str | None = None,
        chat: bool = True,
    ) -> None:
        self._model_arg = model
        self._tokenizer = tokenizer
        self.name = name or (str(model).rstrip("/").split("/")[-1] if isinstance(model, str | Path)
                             else type(model).__name__)
        self.device = device
        self.dtype = dtype
        self.gguf_file = gguf_file
        self.chat = chat
        self.calls = 0
        self._model: Any = None if isinstance(model, str | Path) else model

    @property
    def key(self) -> str:
        ident = (str(self._model_arg) if isinstance(self._model_arg, str | Path)
                 else getattr(getattr(self._model_arg, "config", None), "_name_or_path", "model"))
        return f"hf:{ident}:{self.gguf_file or ''}:chat={self.chat}"

    def _load(self) -> tuple[Any, Any]:
        if self._model is None or self._tokenizer is None:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            src = str(self._model_arg) if isinstance(self._model_arg, str | Path) else None
            kw = {"gguf_file": self.gguf_file} if self.gguf_file else {}
            if self._tokenizer is None:
                if src is None:
                    raise FIPOError("HFDownstream with a loaded model needs tokenizer=")
                self._tokenizer = AutoTokenizer.from_pretrained(src, **kw)
            if self._model is None:
                dtype = self.dtype
                if dtype == "auto" and self.gguf_file:
                    dtype = torch.float32
                self._model = AutoModelForCausalLM.from_pretrained(src, dtype=dtype, **kw)
            from fipo_middleware.models import hf_device

            device = hf_device(self.device)
            self._model.to(device).eval()
        return self._model, self._tokenizer

    def _context(self, tok: Any, prompt: str) -> str:
        if self.chat and getattr(tok, "chat_template", None):
            return tok.apply_chat_template(_user_turn(prompt), tokenize=False,
                                           add_generation_prompt=True)
        return prompt

    def generate(self, prompt: str, max_tokens: int) -> str:
        import torch

        self.calls += 1
        model, tok = self._load()
        enc = tok(self._context(tok, prompt), return_tensors="pt", add_special_tokens=False)
        enc = {k: v.to(model.device) for k, v in enc.items()}
        with torch.no_grad():
            out = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False,
                                 pad_token_id=tok.pad_token_id or tok.eos_token_id)
        return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)

    def loglik(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        import torch

        self.calls += 1
        model, tok = self._load()
        ctx_text = self._context(tok, prompt)
        ctx = tok(ctx_text, add_special_tokens=False)["input_ids"]
        out: list[tuple[float, int]] = []
        for c in continuations:
            full = tok(ctx_text + c, add_special_tokens=False)["input_ids"]
            cont = full[len(ctx):] if full[: len(ctx)] == ctx else tok(
                c, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([ctx + cont], device=model.device)
            with torch.no_grad():
                logits = model(ids).logits[0, len(ctx) - 1: len(ctx) + len(cont) - 1].float()
            logp = torch.log_softmax(logits, dim=-1)
            total = float(logp[torch.arange(len(cont)), torch.tensor(cont)].sum())
            out.append((total, len(cont)))
        return out


class LangChainDownstream:
    """Any LangChain ``BaseLanguageModel``: a chat model gets one human message, an LLM the
    prompt string. Decoding (temperature, max tokens) is the model's own configuration."""

    supports_loglik = False
    accepts_prompt_value = True
    """``generate`` also takes a LangChain ``PromptValue`` (``fipo compile`` of a chat template
    sends its messages as they are)."""

    def __init__(self, model: Any, *, name: str | None = None) -> None:
        from langchain_core.language_models import BaseLanguageModel

        if not isinstance(model, BaseLanguageModel):
            raise TypeError(
                f"LangChainDownstream expects a LangChain LLM or chat model, "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.name = name or type(model).__name__
        self.calls = 0

    @property
    def key(self) -> str:
        try:
            params = sorted(dict(self.model._identifying_params).items())
        except Exception:  # some models compute these lazily; the class still identifies
            params = []
        return f"langchain:{type(self.model).__name__}:{params!r}"

    def generate(self, prompt: Any, max_tokens: int) -> str:
        from langchain_core.language_models import BaseChatModel
        from langchain_core.messages import BaseMessage, HumanMessage

        self.calls += 1
        inp: Any = [HumanMessage(content=prompt)] if isinstance(
            self.model, BaseChatModel) and isinstance(prompt, str) else prompt
        try:
            result = self.model.invoke(inp)
        except Exception as e:
            raise BackendError(f"downstream {self.name} failed: {e}") from e
        if isinstance(result, BaseMessage):
            text = result.text
            return text if isinstance(text, str) else text()
        return str(result)

    def loglik(self, prompt: str, continuations: Sequence[str]) -> list[tuple[float, int]]:
        raise BackendError(f"{self.name}: LangChain models give no log-likelihoods")


def parse_downstream(spec: str, *, n_ctx: int = 2048, n_threads: int | None = None) -> Downstream:
    """``[NAME=]SPEC`` in the one model grammar (``fipo_middleware.specs``)."""
    from fipo_middleware.specs import load_langchain, parse_model_spec

    name, sep, body = spec.partition("=")
    if not sep:
        name, body = "", spec
    m = parse_model_spec(body, what="downstream").require(
        "smollm2", "gguf", "hf", "lc", "provider", what="downstream", lora=False)
    if m.kind == "smollm2" or (m.kind == "gguf" and m.path is None):
        return LlamaCppDownstream(name=name or "smollm2", n_ctx=n_ctx, n_threads=n_threads)
    if m.kind == "gguf":
        return LlamaCppDownstream(m.path, name=name or None, n_ctx=n_ctx, n_threads=n_threads)
    if m.kind == "hf":
        return HFDownstream(m.target, name=name or None)
    model = load_langchain(m, temperature=0)
    return LangChainDownstream(model, name=name or (m.target if m.kind == "provider" else None))


def as_downstream(model: Any, name: str | None = None) -> Downstream:
    """Python API: a Downstream, a LangChain model, a spec string or a GGUF path."""
    if isinstance(model, str):
        return parse_downstream(model if name is None else f"{name}={model}")
    if isinstance(model, Path):
        return LlamaCppDownstream(model, name=name)
    if isinstance(model, Downstream):
        return model
    return LangChainDownstream(model, name=name)
