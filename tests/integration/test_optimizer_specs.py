"""An optimizer spec and the optimizer it builds share one cache key (real llama.cpp)."""

from __future__ import annotations

from evaluation.optimizers import optimizer_key, parse_optimizer
from fipo_middleware import FIPOOptimizer


def test_spec_key_matches_the_constructed_default() -> None:
    spec = parse_optimizer("fipo,mode=append")
    built = spec.get()
    assert built.mode == "append" and built.languages == ("en",)
    opt = FIPOOptimizer.default(mode="append", decoding=built.decoding)
    assert optimizer_key(opt) == optimizer_key(built)
    assert ":mode=append" in optimizer_key(built) and ":lang=en" in optimizer_key(built)
