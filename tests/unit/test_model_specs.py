"""The one model grammar (``fipo_middleware.specs``) and the verbs that read it."""

from __future__ import annotations

from pathlib import Path

import pytest

from evaluation.downstream import parse_downstream
from evaluation.optimizers import parse_optimizer
from fipo_middleware.specs import ModelSpec, ModelSpecError, load_langchain, parse_model_spec
from training.build import model_from_spec


@pytest.mark.parametrize("text, kind, target, lora", [
    ("smollm2", "smollm2", "", None),
    ("default", "smollm2", "", None),
    ("gguf:/m/a.gguf", "gguf", "/m/a.gguf", None),
    ("gguf:/m/a.gguf+/m/l.gguf", "gguf", "/m/a.gguf", "/m/l.gguf"),
    ("gguf:+/m/l.gguf", "gguf", "", "/m/l.gguf"),
    ("/m/a.gguf", "gguf", "/m/a.gguf", None),
    ("a.gguf+l.gguf", "gguf", "a.gguf", "l.gguf"),
    ("hf:HuggingFaceTB/SmolLM2-135M-Instruct", "hf", "HuggingFaceTB/SmolLM2-135M-Instruct", None),
    ("lc:tests.fakes:make_model", "lc", "tests.fakes:make_model", None),
    ("openai:gpt-4o", "provider", "openai:gpt-4o", None),
    ("ollama:llama3.1:8b", "provider", "ollama:llama3.1:8b", None),
])
def test_grammar(text, kind, target, lora):
    m = parse_model_spec(text)
    assert (m.kind, m.target, m.lora) == (kind, target, lora)


@pytest.mark.parametrize("text, match", [
    ("llama3", "unknown model 'llama3'"),
    ("gguf:", "gguf: needs a path"),
    ("gguf:a.gguf+", "'\\+' must be followed by a LoRA"),
    ("hf:", "hf: needs a model id"),
    ("lc:module_only", "expected lc:module:attribute"),
    ("./dir/x:y", "unknown model"),
])
def test_bad_specs_are_named(text, match):
    with pytest.raises(ModelSpecError, match=match):
        parse_model_spec(text)


def test_each_verb_says_which_kinds_it_takes():
    with pytest.raises(ModelSpecError, match="is a hf spec; this takes smollm2, gguf, lc"):
        parse_optimizer("hf:some/model")
    with pytest.raises(ModelSpecError, match="a \\+LORA is not supported"):
        parse_downstream("gguf:a.gguf+l.gguf")
    with pytest.raises(ModelSpecError, match="is a hf spec"):
        model_from_spec("hf:some/model")


def test_optimizer_gguf_spec_is_the_same_grammar(tmp_path: Path):
    model, lora = tmp_path / "m.gguf", tmp_path / "l.gguf"
    model.write_bytes(b"m")
    lora.write_bytes(b"l")
    spec = parse_optimizer(f"mine=gguf:{model}+{lora}")
    bare = parse_optimizer(f"mine={model}+{lora}")
    assert spec.name == "mine" and spec.key == bare.key
    assert spec.key != parse_optimizer(f"mine=gguf:{model}").key  # the LoRA is in the key


def test_lc_spec_loads_a_real_langchain_model_and_rejects_other_objects():
    from langchain_core.language_models import FakeListChatModel

    m = load_langchain(parse_model_spec("lc:tests.unit.test_model_specs:fake_chat"))
    assert isinstance(m, FakeListChatModel)
    with pytest.raises(ModelSpecError, match="is not a LangChain LLM or chat model"):
        load_langchain(ModelSpec("lc", "pathlib:PurePath.__name__", text="x"))
    with pytest.raises(ModelSpecError, match="cannot load 'no_such_mod:x'"):
        load_langchain(parse_model_spec("lc:no_such_mod:x"))


def fake_chat():
    from langchain_core.language_models import FakeListChatModel

    return FakeListChatModel(responses=["ok"])


def test_unknown_optimizer_lists_the_optimizer_names_too():
    with pytest.raises(ModelSpecError, match=r"unknown optimizer 'llama3'.*naive, base, fipo"):
        parse_optimizer("llama3")
    with pytest.raises(ModelSpecError, match="unknown downstream 'llama3'"):
        parse_downstream("llama3")


def test_judge_specs_use_the_grammar_and_keep_the_bare_form_working():
    from langchain_core.language_models import FakeListChatModel

    from evaluation.cli import judge_model

    assert isinstance(judge_model("lc:tests.unit.test_model_specs:fake_chat"), FakeListChatModel)
    with pytest.deprecated_call(match="write lc:tests.unit.test_model_specs:fake_chat"):
        legacy = judge_model("tests.unit.test_model_specs:fake_chat")
    assert isinstance(legacy, FakeListChatModel)
    with pytest.raises(ModelSpecError, match="judge 'hf:x' is a hf spec"):
        judge_model("hf:x")
