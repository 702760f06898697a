"""llama.cpp backend (llama-cpp-python): GGUF model + optional GGUF LoRA, CPU by default."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import struct
import threading
from pathlib import Path
from typing import Any

from fipo_middleware.backends.base import DecodingParams, MetaPrompt
from fipo_middleware.errors import BackendError, ModelLoadError

GGUF_MAGIC = b"GGUF"


def check_gguf_file(path: str | os.PathLike[str], what: str = "model") -> Path:
    """Fail early, with the path in the message, on a missing or non-GGUF file: llama.cpp's
    own failure for these is a bare ``ValueError`` or, for some corrupt files, a crash."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelLoadError(f"{what} file not found: {p}")
    if not p.is_file():
        raise ModelLoadError(f"{what} path is not a file: {p}")
    try:
        with p.open("rb") as f:
            head = f.read(24)
    except OSError as e:
        raise ModelLoadError(f"cannot read {what} file {p}: {e}") from e
    if len(head) < 24 or head[:4] != GGUF_MAGIC:
        raise ModelLoadError(f"{what} file is not a GGUF file (bad magic/truncated): {p}")
    version, n_tensors, n_kv = struct.unpack("<IQQ", head[4:24])
    if version not in (1, 2, 3) or n_tensors > 10_000_000 or n_kv > 1_000_000:
        raise ModelLoadError(f"{what} file has a corrupt GGUF header: {p}")
    return p


class LlamaCppBackend:
    """Serves a GGUF model through llama-cpp-python.

    One ``Llama`` object is not safe under concurrent calls, so generation holds a lock;
    ``batch`` with ``max_concurrency`` > 1 therefore queues here instead of corrupting the KV
    cache. Use several optimizers for true parallelism.
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        lora_path: str | os.PathLike[str] | None = None,
        lora_scale: float = 1.0,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        n_batch: int = 512,
        verbose: bool = False,
        **llama_kwargs: Any,
    ) -> None:
        self.model_path = check_gguf_file(model_path, "model")
        self.lora_path = check_gguf_file(lora_path, "LoRA adapter") if lora_path else None
        self.lora_scale = lora_scale
        self.n_ctx = n_ctx
        self._lock = threading.RLock()
        try:
            from llama_cpp import Llama
        except ImportError as e:  # pragma: no cover - core dependency
            raise ModelLoadError("llama-cpp-python is not installed") from e
        kwargs: dict[str, Any] = dict(
            model_path=str(self.model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            n_batch=n_batch,
            verbose=verbose,
            **llama_kwargs,
        )
        if self.lora_path is not None:
            kwargs["lora_path"] = str(self.lora_path)
            kwargs["lora_scale"] = lora_scale
        # llama.cpp prints loader chatter on stderr even with verbose=False for some builds.
        sink = io.StringIO()
        try:
            with contextlib.redirect_stderr(sink):
                self.llama = Llama(**kwargs)
        except Exception as e:
            what = f"{self.model_path}" + (f" with LoRA {self.lora_path}" if self.lora_path else "")
            raise ModelLoadError(f"llama.cpp could not load {what}: {e}") from e

    def exclusive(self) -> threading.RLock:
        """Hold the model for direct ``self.llama`` use (log-likelihood scoring evaluates
        tokens itself); generation takes the same lock, so the KV cache is never shared."""
        return self._lock

    @property
    def identity(self) -> str:
        # Content fingerprints: the identity keys caches, and a retrained file keeps its name.
        from fipo_middleware.models import file_digest

        lora = (f"+{self.lora_path.name}:{file_digest(self.lora_path)}@{self.lora_scale}"
                if self.lora_path else "")
        return f"llama.cpp:{self.model_path.name}:{file_digest(self.model_path)}{lora}"

    @property
    def context_length(self) -> int:
        return self.llama.n_ctx()

    @functools.cached_property
    def _formatter(self) -> Any:
        # Compiling the Jinja template costs more than rendering it, and one prompt renders up
        # to 1 + retries times (plus the length check): build it once per backend.
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        template = self.llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise BackendError(f"{self.model_path.name} has no chat template; use fipo-original")
        eos = self.llama.detokenize([self.llama.token_eos()]).decode("utf-8", "ignore")
        bos = self.llama.detokenize([self.llama.token_bos()]).decode("utf-8", "ignore")
        return Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)

    def _render(self, prompt: MetaPrompt) -> str:
        if isinstance(prompt, str):
            return prompt
        return self._formatter(messages=prompt).prompt

    def count_tokens(self, prompt: MetaPrompt) -> int:
        text = self._render(prompt)
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def render(self, prompt: MetaPrompt) -> str:
        """The exact completion text the model sees (chat template applied)."""
        return self._render(prompt)

    def generate(self, prompt: MetaPrompt, params: DecodingParams) -> str:
        return self.complete(self._render(prompt), params)

    def complete(self, prompt: str | list[int], params: DecodingParams) -> str:
        """A raw completion of rendered text or of token ids (export verification feeds the
        ids HF tokenized, so both runtimes see the same tokens)."""
        with self._lock:
            try:
                out = self.llama.create_completion(
                    prompt,
                    max_tokens=params.max_tokens,
                    temperature=params.temperature,
                    top_p=params.top_p,
                    top_k=params.top_k if params.top_k > 0 else 40,
                    repeat_penalty=params.repeat_penalty,
                    seed=params.seed,
                    stop=list(params.stop),
                )
            except Exception as e:
                raise BackendError(f"llama.cpp generation failed: {e}") from e
        return out["choices"][0]["text"]

    def close(self) -> None:
        """Free the model now instead of at garbage collection."""
        with self._lock:
            self.llama.close()
