"""Optimizers compared in one run: ``naive`` (identity), ``base`` (the untuned SmolLM2,
``FIPOOptimizer.default(use_adapter=False)``), ``fipo`` (the trained default,
``FIPOOptimizer.default()``), ``gguf:PATH`` (any GGUF via ``from_gguf``) and ``lc:module:attr``
(any LangChain model via ``from_llm``). Each spec may be ``NAME=SPEC``.

Optimizers load lazily; the cache key is known up front so a resumed run loads none.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fipo_middleware.errors import FIPOError
from fipo_middleware.guard import GUARD_VERSION

NAIVE = "naive"


@dataclass
class OptimizerSpec:
    """A named optimizer; ``factory`` returns a ``FIPOOptimizer`` (None for naive)."""

    name: str
    key: str
    factory: Callable[[], Any] | None = None
    _instance: Any = None

    @property
    def is_naive(self) -> bool:
        return self.factory is None

    def get(self) -> Any:
        if self.factory is None:
            return None
        if self._instance is None:
            self._instance = self.factory()
        return self._instance


@functools.lru_cache(maxsize=32)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _file_id(path: Path | None) -> str:
    """Content fingerprint: a retrained adapter has the same size as the old one, and must not
    be served the old one's cached rewrites."""
    if path is None:
        return "none"
    if not path.is_file():
        return str(path)
    st = path.stat()
    return f"{path.name}:{_digest(str(path), st.st_size, st.st_mtime_ns)}"


def _settings_key(decoding: Any, max_words: int | None, retries: int = 0,
                  retry_temperature: float = 0.7) -> str:
    key = f"dec={decoding.key()!r}:mw={max_words}"
    # Appended only when set, so caches written before retries existed stay valid.
    return key + (f":retries={retries}@{retry_temperature}" if retries else "")


def optimizer_key(opt: Any) -> str:
    """Cache key of a constructed ``FIPOOptimizer``: model, dialect, decoding, guard."""
    return (
        f"{opt.backend.identity}:{opt.dialect.value}:"
        f"{_settings_key(opt.decoding, opt.max_words, opt.retries, opt.retry_temperature)}"
        f":guard={GUARD_VERSION if opt.use_guard else False}"
    )


def parse_optimizer(
    spec: str,
    *,
    n_threads: int | None = None,
    max_tokens: int = 128,
    max_words: int | None = None,
    retries: int | None = None,
) -> OptimizerSpec:
    """``retries=None``: the optimizer's own default (``FIPOOptimizer.default()``'s for
    ``fipo``/``base``, none for the others)."""
    from fipo_middleware.backends.base import DecodingParams
    from fipo_middleware.optimizer import DEFAULT_RETRIES

    name, sep, body = spec.partition("=")
    if not sep:
        name, body = "", spec
    decoding = DecodingParams(max_tokens=max_tokens)
    common: dict[str, Any] = {"decoding": decoding, "n_threads": n_threads}
    if max_words:
        common["max_words"] = max_words
    n_retries = retries if retries is not None else (
        DEFAULT_RETRIES if body in ("base", "fipo") else 0)
    common["retries"] = n_retries
    settings = _settings_key(decoding, max_words, n_retries)
    if body == NAIVE:
        return OptimizerSpec(name or NAIVE, NAIVE)
    if body in ("base", "fipo"):
        from fipo_middleware.models import default_adapter_path, smollm2_gguf_path
        from fipo_middleware.optimizer import FIPOOptimizer

        adapter = default_adapter_path() if body == "fipo" else None
        model = smollm2_gguf_path()
        key = (f"llama.cpp:{_file_id(model)}+{_file_id(adapter)}:chat:{settings}"
               f":guard={GUARD_VERSION}")
        use_adapter = body == "fipo"
        return OptimizerSpec(
            name or body, key,
            lambda: FIPOOptimizer.default(use_adapter=use_adapter, **common),
        )
    kind, _, rest = body.partition(":")
    if kind == "gguf" and rest:
        from fipo_middleware.optimizer import FIPOOptimizer

        path = Path(rest)
        return OptimizerSpec(
            name or path.stem,
            f"llama.cpp:{_file_id(path)}+none:chat:{settings}:guard={GUARD_VERSION}",
            lambda: FIPOOptimizer.from_gguf(path, **common),
        )
    if kind == "lc" and rest:
        from evaluation.downstream import load_langchain_model
        from fipo_middleware.optimizer import FIPOOptimizer

        model = load_langchain_model(rest)
        opt = FIPOOptimizer.from_llm(model, decoding=decoding, max_words=max_words,
                                     retries=n_retries)
        return OptimizerSpec(name or rest.split(":")[-1], optimizer_key(opt), lambda: opt, opt)
    raise FIPOError(
        f"unknown optimizer {spec!r}; use naive, base, fipo, gguf:PATH or lc:module:attr "
        "(optionally NAME=SPEC)"
    )


def as_optimizer(name: str, value: Any) -> OptimizerSpec:
    """Python API: ``None``/"naive" -> identity, a spec string, a ``FIPOOptimizer``, or a
    LangChain model (wrapped with ``FIPOOptimizer.from_llm``)."""
    from fipo_middleware.optimizer import FIPOOptimizer

    if isinstance(value, OptimizerSpec):
        return value
    if value is None or value == NAIVE:
        return OptimizerSpec(name, NAIVE)
    if isinstance(value, str):
        spec = parse_optimizer(value)
        spec.name = name
        return spec
    if isinstance(value, FIPOOptimizer):
        return OptimizerSpec(name, optimizer_key(value), lambda: value, value)
    opt = FIPOOptimizer.from_llm(value)
    return OptimizerSpec(name, optimizer_key(opt), lambda: opt, opt)
