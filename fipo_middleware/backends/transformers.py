"""HF transformers backend: a model id or local path, on a GPU when present.

torch and transformers are imported here only (the ``hf`` extra)."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from fipo_middleware.backends.base import DecodingParams, MetaPrompt
from fipo_middleware.errors import BackendError, ModelLoadError


def _looks_like_path(name: str) -> bool:
    """A hub id is ``org/name``: one slash, no leading ``/``, ``~`` or ``.``."""
    return (name.startswith(("/", "~", ".")) or name.count("/") > 1
            or (os.sep != "/" and os.sep in name))


def _import_hf() -> tuple[Any, Any]:
    try:
        import torch
        import transformers
    except ImportError as e:
        raise ModelLoadError(
            "the transformers backend needs the 'hf' extra: pip install 'fipo[hf]'"
        ) from e
    return torch, transformers


def resolve_device(device: str | None) -> str:
    _import_hf()  # a clear error when the hf extra is missing
    from fipo_middleware.models import hf_device

    return hf_device(device)


class TransformersBackend:
    """Serves an HF causal LM. ``model`` may be an id, a directory, or an already-loaded
    ``PreTrainedModel`` (with ``tokenizer``); ``gguf_file`` loads a GGUF through transformers."""

    def __init__(
        self,
        model: str | os.PathLike[str] | Any,
        *,
        tokenizer: Any = None,
        device: str | None = None,
        dtype: str | Any = "auto",
        gguf_file: str | None = None,
        adapter_path: str | os.PathLike[str] | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        # Bad paths are named before torch is imported: that import alone takes seconds and
        # fails with its own error on a machine without the hf extra.
        if isinstance(model, (str, os.PathLike)):
            name = str(model)
            if not Path(name).expanduser().exists() and _looks_like_path(name):
                raise ModelLoadError(f"model path not found: {name}")
        if adapter_path and not Path(adapter_path).expanduser().exists():
            raise ModelLoadError(f"adapter path not found: {adapter_path}")
        _, transformers = _import_hf()
        self.device = resolve_device(device)
        self._lock = threading.Lock()
        if isinstance(model, (str, os.PathLike)):
            from fipo_middleware.models import hf_dtype

            dtype = hf_dtype(self.device, dtype)
            kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
            if gguf_file:
                kwargs["gguf_file"] = gguf_file
            try:
                self.tokenizer = tokenizer or transformers.AutoTokenizer.from_pretrained(
                    name, **kwargs
                )
                self.model = transformers.AutoModelForCausalLM.from_pretrained(
                    name, dtype=dtype, **kwargs
                )
            except Exception as e:
                raise ModelLoadError(f"transformers could not load {name}: {e}") from e
            self.name = name + (f"::{gguf_file}" if gguf_file else "")
        else:
            if tokenizer is None:
                raise ModelLoadError("pass tokenizer= with an already-loaded model")
            self.model, self.tokenizer = model, tokenizer
            self.name = (
                getattr(getattr(model, "config", None), "_name_or_path", "") or type(model).__name__
            )
        if adapter_path:
            try:
                from peft import PeftModel
            except ImportError as e:
                raise ModelLoadError("loading a LoRA adapter needs peft: pip install peft") from e
            self.model = PeftModel.from_pretrained(self.model, str(adapter_path))
            self.name += f"+{Path(adapter_path).name}"
        self.model.to(self.device)
        self.model.eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    @property
    def identity(self) -> str:
        return f"transformers:{self.name}"

    @property
    def context_length(self) -> int | None:
        return getattr(self.model.config, "max_position_embeddings", None)

    def render(self, prompt: MetaPrompt) -> str:
        if isinstance(prompt, str):
            return prompt
        if not getattr(self.tokenizer, "chat_template", None):
            raise BackendError(f"{self.name} has no chat template; use the fipo-original dialect")
        return self.tokenizer.apply_chat_template(
            prompt, tokenize=False, add_generation_prompt=True
        )

    def count_tokens(self, prompt: MetaPrompt) -> int:
        return len(self.tokenizer(self.render(prompt), add_special_tokens=False)["input_ids"])

    def generate(self, prompt: MetaPrompt, params: DecodingParams) -> str:
        torch, _ = _import_hf()
        text = self.render(prompt)
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(self.device)
        gen: dict[str, Any] = {
            "max_new_tokens": params.max_tokens,
            "repetition_penalty": params.repeat_penalty,
            "pad_token_id": self.tokenizer.pad_token_id,
        }
        if params.greedy:
            gen["do_sample"] = False
        else:
            gen.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            if params.top_k > 0:
                gen["top_k"] = params.top_k
            torch.manual_seed(params.seed)
        with self._lock:
            try:
                with torch.no_grad():
                    out = self.model.generate(**enc, **gen)
            except Exception as e:
                raise BackendError(f"transformers generation failed: {e}") from e
        completion = self.tokenizer.decode(
            out[0, enc["input_ids"].shape[1] :], skip_special_tokens=False
        )
        for stop in (*params.stop, self.tokenizer.eos_token or ""):
            if stop and stop in completion:
                completion = completion[: completion.index(stop)]
        return completion
