"""Optimizers compared in one run: ``naive`` (identity), ``base`` (the untuned SmolLM2,
``FIPOOptimizer.default(use_adapter=False, verify=False)``), ``fipo`` (the shipped default,
``FIPOOptimizer.default()``: verified, one greedy try; ``fipo,verify=off`` is the raw rewriter
with its resamples), ``gguf:PATH[+LORA]`` (any GGUF via ``from_gguf``; ``gguf:+LORA`` for
a LoRA on the bundled SmolLM2) and ``lc:module:attr``
(any LangChain model via ``from_llm``). Each spec may be ``NAME=SPEC`` and take options after
commas: ``fipo,mode=append,verifier=DIR,margin=0.5``, ``fipo,verify=off``.

Optimizers load lazily; the cache key is known up front so a resumed run loads none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fipo_middleware.errors import FIPOError
from fipo_middleware.guard import GUARD_VERSION
from fipo_middleware.models import file_digest

NAIVE = "naive"
COMPILE_OPTIMIZER = "fipo,verify=off"
"""``fipo compile``'s proposer: the shipped adapter without its verifier, because the compile's
own gate (measured accuracy on the dev set) decides what is served."""


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


def _file_id(path: Path | None) -> str:
    """Content fingerprint: a retrained adapter has the same size as the old one, and must not
    be served the old one's cached rewrites."""
    if path is None:
        return "none"
    if not path.is_file():
        return str(path)
    return f"{path.name}:{file_digest(path)}"


def _settings_key(decoding: Any, max_words: int | None, retries: int = 0,
                  retry_temperature: float = 0.7) -> str:
    key = f"dec={decoding.key()!r}:mw={max_words}"
    # Appended only when set, so caches written before retries existed stay valid.
    return key + (f":retries={retries}@{retry_temperature}" if retries else "")


def optimizer_key(opt: Any) -> str:
    """Cache key of a constructed ``FIPOOptimizer``: model, dialect, decoding, guard."""
    key = (
        f"{opt.backend.identity}:{opt.dialect.value}:"
        f"{_settings_key(opt.decoding, opt.max_words, opt.retries, opt.retry_temperature)}"
        f":guard={GUARD_VERSION if opt.use_guard else False}"
    )
    # Same spelling as the spec options, so `fipo,mode=append` and the instance share a cache.
    if opt.mode != "rewrite":
        key += _mode_key(opt.mode)
    if opt.languages is not None:
        key += f":lang={'+'.join(opt.languages)}"
    if opt.verifier is not None:
        key += f":verifier={_verifier_id(opt.verifier)}@{float(opt.verifier_margin)}"
    return key


def _mode_key(mode: str) -> str:
    """Append mode's texts depend on how the complement is extracted, not only on the model:
    a changed extraction must not be served the old texts from a cache."""
    from fipo_middleware.complement import COMPLEMENT_VERSION

    return f":mode={mode}" + (f"@{COMPLEMENT_VERSION}" if mode == "append" else "")


def _verifier_id(verifier: Any) -> str:
    """Content fingerprint of a verifier's weights (a feature .json or a reward-model folder)."""
    path = Path(getattr(verifier, "path", ""))
    if path.is_file():
        return _file_id(path)
    weights = sorted(path.glob("*.safetensors")) if path.is_dir() else []
    return "+".join(_file_id(w) for w in weights) or repr(verifier)


OPTION_KEYS = ("mode", "verifier", "margin", "languages", "verify")


def _parse_options(text: str, spec: str) -> dict[str, str]:
    opts: dict[str, str] = {}
    for item in filter(None, text.split(",")):
        k, sep, v = item.partition("=")
        if not sep or k not in OPTION_KEYS or not v:
            raise FIPOError(f"optimizer {spec!r}: bad option {item!r}; options are "
                            + ", ".join(f"{k}=..." for k in OPTION_KEYS))
        opts[k] = v
    if opts.get("mode", "rewrite") not in ("rewrite", "append"):
        raise FIPOError(f"optimizer {spec!r}: mode must be rewrite or append")
    if "margin" in opts:
        try:
            float(opts["margin"])
        except ValueError:
            raise FIPOError(f"optimizer {spec!r}: margin must be a number") from None
    if opts.get("verify", "on") not in ("on", "off"):
        raise FIPOError(f"optimizer {spec!r}: verify must be on or off")
    if opts.get("verify") == "off" and ("verifier" in opts or "margin" in opts):
        raise FIPOError(f"optimizer {spec!r}: verify=off takes no verifier or margin")
    if "verifier" in opts and not Path(opts["verifier"]).exists():
        raise FIPOError(f"optimizer {spec!r}: no verifier at {opts['verifier']}")
    return opts


def _option_kwargs(opts: dict[str, str]) -> tuple[dict[str, Any], str]:
    """``FIPOOptimizer`` keyword arguments for the spec's options, and their cache-key part."""
    kw: dict[str, Any] = {}
    key = ""
    if opts.get("mode", "rewrite") != "rewrite":
        kw["mode"] = opts["mode"]
        key += _mode_key(opts["mode"])
    if "languages" in opts:
        langs = opts["languages"]
        kw["languages"] = None if langs == "any" else tuple(langs.split("+"))
        key += f":lang={langs}"
    if "verifier" in opts:
        from fipo_middleware.verifier import load_verifier

        kw["verifier"] = load_verifier(opts["verifier"])
        kw["verifier_margin"] = float(opts.get("margin", getattr(kw["verifier"], "margin", 0.0)))
        key += f":verifier={_verifier_id(kw['verifier'])}@{kw['verifier_margin']}"
    return kw, key


def parse_optimizer(
    spec: str,
    *,
    n_threads: int | None = None,
    max_tokens: int = 128,
    max_words: int | None = None,
    retries: int | None = None,
) -> OptimizerSpec:
    """``[NAME=]SPEC[,OPTION=VALUE...]``; options: ``mode=append``, ``verifier=PATH`` (a
    feature .json or reward-model folder), ``margin=X`` (its ``verifier_margin``),
    ``languages=en+fr`` or ``any``, ``verify=on|off`` (the bundled verifier; fipo: on, base:
    off). ``retries=None``: the optimizer's own default (``DEFAULT_RETRIES`` for unverified
    ``fipo``/``base``, none for the others and for any verified optimizer)."""
    from fipo_middleware.backends.base import DecodingParams
    from fipo_middleware.optimizer import DEFAULT_LANGUAGES, DEFAULT_RETRIES

    name, sep, body = spec.partition("=")
    if not sep or ("," in name):
        name, body = "", spec
    body, _, opt_text = body.partition(",")
    opts = _parse_options(opt_text, spec)
    decoding = DecodingParams(max_tokens=max_tokens)
    common: dict[str, Any] = {"decoding": decoding, "n_threads": n_threads}
    if max_words:
        common["max_words"] = max_words
    if body == NAIVE:
        if opts:
            raise FIPOError(f"optimizer {spec!r}: naive takes no options")
        return OptimizerSpec(name or NAIVE, NAIVE)
    if "verify" in opts and body not in ("base", "fipo"):
        raise FIPOError(f"optimizer {spec!r}: verify= is for fipo and base; give another "
                        "optimizer a verifier=PATH")
    # fipo is FIPOOptimizer.default(): verified, one greedy try. base is the untuned baseline,
    # unverified unless asked.
    verified = body in ("base", "fipo") and "verifier" not in opts and opts.get(
        "verify", "on" if body == "fipo" else "off") == "on"
    if verified:
        from fipo_middleware.models import default_verifier_path

        bundled = default_verifier_path()
        if bundled is None:
            raise FIPOError(f"optimizer {spec!r}: no verifier is bundled in this build; "
                            "add ,verify=off")
        opts["verifier"] = str(bundled)
    opts.pop("verify", None)
    if body in ("base", "fipo"):
        opts.setdefault("languages", "+".join(DEFAULT_LANGUAGES))
    n_retries = retries if retries is not None else (
        DEFAULT_RETRIES if body in ("base", "fipo") and "verifier" not in opts else 0)
    common["retries"] = n_retries
    settings = _settings_key(decoding, max_words, n_retries)
    extra, extra_key = _option_kwargs(opts)
    common.update(extra)
    if body in ("base", "fipo"):
        from fipo_middleware.models import default_adapter_path, smollm2_gguf_path
        from fipo_middleware.optimizer import FIPOOptimizer

        adapter = default_adapter_path() if body == "fipo" else None
        model = smollm2_gguf_path()
        key = (f"llama.cpp:{_file_id(model)}+{_file_id(adapter)}:chat:{settings}"
               f":guard={GUARD_VERSION}{extra_key}")
        use_adapter = body == "fipo"
        return OptimizerSpec(
            name or body, key,
            lambda: FIPOOptimizer.default(use_adapter=use_adapter, verify=False, **common),
        )
    from fipo_middleware.optimizer import FIPOOptimizer
    from fipo_middleware.specs import load_langchain, parse_model_spec

    m = parse_model_spec(body, what="optimizer", grammar=(
        "naive, base, fipo, smollm2, gguf:PATH[+LORA], lc:module:attr or provider:model "
        "(optionally NAME=SPEC, then ,mode=append ,verifier=DIR ,margin=X ,languages=en)"))
    m.require("smollm2", "gguf", "lc", "provider", what="optimizer")
    if m.kind in ("smollm2", "gguf"):
        from fipo_middleware.models import smollm2_gguf_path

        # gguf:MODEL, gguf:MODEL+LORA, or gguf:+LORA (a LoRA on the bundled SmolLM2)
        path = m.path or smollm2_gguf_path()
        lora = Path(m.lora).expanduser() if m.lora else None
        return OptimizerSpec(
            name or (lora or path).stem,
            f"llama.cpp:{_file_id(path)}+{_file_id(lora)}:chat:{settings}:guard={GUARD_VERSION}"
            f"{extra_key}",
            lambda: FIPOOptimizer.from_gguf(path, lora_path=lora, **common),
        )
    model = load_langchain(m, temperature=0)
    opt = FIPOOptimizer.from_llm(model, decoding=decoding, max_words=max_words,
                                 retries=n_retries, **extra)
    return OptimizerSpec(name or m.target.split(":")[-1], optimizer_key(opt), lambda: opt, opt)


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
