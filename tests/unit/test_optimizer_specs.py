"""Optimizer specs for ``fipo eval*``: lazy, and keyed by what they would load."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.optimizers import parse_optimizer
from fipo_middleware.errors import FIPOError
from fipo_middleware.models import default_adapter_path, default_verifier_path


def test_lora_on_the_bundled_base_shares_the_default_cache_key() -> None:
    adapter = default_adapter_path()
    assert adapter is not None, "the shipped adapter is missing from fipo_middleware/weights/"
    spec = parse_optimizer(f"mine=gguf:+{adapter},languages=en", retries=4)
    assert spec.name == "mine"
    # the same files and settings as `fipo,verify=off`, so the same cached rewrites
    assert spec.key == parse_optimizer("fipo,verify=off").key
    # without the default's retries and language limit it is another optimizer
    assert parse_optimizer(f"gguf:+{adapter}").key != parse_optimizer("fipo,verify=off").key
    # and `fipo` itself is that adapter behind the bundled verifier, one try
    verified = f"gguf:+{adapter},languages=en,verifier={default_verifier_path()}"
    assert parse_optimizer(verified).key == parse_optimizer("fipo").key
    assert parse_optimizer(f"gguf:+{adapter}").name == Path(adapter).stem


def test_a_different_adapter_gets_a_different_key(tmp_path: Path) -> None:
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    a.write_bytes(b"one")
    b.write_bytes(b"two")
    assert parse_optimizer(f"gguf:+{a}").key != parse_optimizer(f"gguf:+{b}").key
    assert "+none:" in parse_optimizer(f"gguf:{a}").key


def test_unknown_spec_names_the_grammar() -> None:
    with pytest.raises(FIPOError, match=r"gguf:PATH\[\+LORA\]"):
        parse_optimizer("llama3")
    # provider:model goes to init_chat_model; its integration package is not installed here
    with pytest.raises(FIPOError, match=r"cannot load 'ollama:llama3': "):
        parse_optimizer("ollama:llama3")


def test_options_change_the_key_and_are_checked(tmp_path: Path) -> None:
    plain = parse_optimizer("fipo").key
    append = parse_optimizer("fipo,mode=append")
    assert append.name == "fipo" and append.key != plain and ":mode=append" in append.key
    assert parse_optimizer("v=fipo,languages=any").name == "v"
    assert parse_optimizer("fipo,languages=any").key != plain
    with pytest.raises(FIPOError, match="mode must be rewrite or append"):
        parse_optimizer("fipo,mode=paraphrase")
    with pytest.raises(FIPOError, match="bad option"):
        parse_optimizer("fipo,temperature=2")
    with pytest.raises(FIPOError, match="no verifier at"):
        parse_optimizer(f"fipo,verifier={tmp_path / 'missing'}")
    with pytest.raises(FIPOError, match="naive takes no options"):
        parse_optimizer("naive,mode=append")


def test_fipo_spec_is_the_verified_default_and_verify_off_the_raw_rewriter():
    verified = parse_optimizer("fipo")
    raw = parse_optimizer("fipo,verify=off")
    assert ":verifier=" in verified.key and ":retries=" not in verified.key
    assert ":verifier=" not in raw.key and ":retries=4@" in raw.key
    assert parse_optimizer(f"fipo,verifier={default_verifier_path()}").key == verified.key
    assert ":verifier=" not in parse_optimizer("base").key  # the untuned baseline stays raw
    assert ":verifier=" in parse_optimizer("base,verify=on").key


@pytest.mark.parametrize("spec, match", [
    ("fipo,verify=maybe", "verify must be on or off"),
    ("fipo,verify=off,margin=1", "verify=off takes no verifier or margin"),
    ("naive,verify=off", "naive takes no options"),
    ("gguf:+x.gguf,verify=on", "verify= is for fipo and base"),
])
def test_bad_verify_options_are_named(spec, match):
    with pytest.raises(FIPOError, match=match):
        parse_optimizer(spec)


def test_comma_lists_keep_each_specs_options() -> None:
    from evaluation.cli import _split_specs

    assert _split_specs(["naive,fipo,verify=off", "v=fipo,mode=append,languages=any"], []) == [
        "naive", "fipo,verify=off", "v=fipo,mode=append,languages=any"]
    assert _split_specs(None, ["naive", "base"]) == ["naive", "base"]
