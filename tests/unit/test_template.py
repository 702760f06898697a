"""The meta-prompt: byte compatibility with the published FIPO text, and the chat dialect."""

from __future__ import annotations

import json

import pytest

from fipo_middleware._fipo_prompts import FIPO_ORIGINAL_PROMPTS
from fipo_middleware.errors import InvalidPromptError
from fipo_middleware.template import (
    CaseType,
    Dialect,
    MetaPromptInput,
    build_chat_messages,
    build_discriminator,
    build_fipo_original,
    build_meta_prompt,
    default_budget,
)


def test_embedded_prompts_are_byte_identical_to_shared_copy(shared_data):
    published = json.loads((shared_data / "fipo" / "prompts.json").read_text(encoding="utf-8"))
    assert published == FIPO_ORIGINAL_PROMPTS


def _reference_fill(p, raw, silver, golden, n):
    """The substitution exactly as in the FIPO reference diversification script."""
    opt = ""
    if silver is not None:
        opt += p["s_r"]
    if golden is not None:
        opt += p["g_r"]
    text = p["optimizer"].replace("O_C", opt)
    text = (
        text.replace("S_P", raw)
        .replace("S_R", silver or "")
        .replace("G_R", golden or "")
        .replace("G_N", str(n))
    )
    return "<|user|>\n" + text + "<|assistant|>\n"


@pytest.mark.parametrize(
    ("silver", "golden"),
    [(None, None), ("weak answer", None), (None, "gold answer"), ("weak", "gold")],
)
def test_fipo_original_matches_reference_substitution(shared_data, silver, golden):
    published = json.loads((shared_data / "fipo" / "prompts.json").read_text(encoding="utf-8"))
    inp = MetaPromptInput("Name 3 primes below 20.", silver, golden, max_words=42)
    assert build_fipo_original(inp) == _reference_fill(
        published, inp.naive_prompt, silver, golden, 42
    )


def test_case_types_follow_optional_parts():
    assert MetaPromptInput("x y").case_type is CaseType.NAIVE_ONLY
    assert MetaPromptInput("x y", silver_response="s").case_type is CaseType.SILVER_GEN
    assert MetaPromptInput("x y", golden_response="g").case_type is CaseType.GOLDEN
    assert MetaPromptInput("x y", "s", "g").case_type is CaseType.BOTH_GEN


def test_chat_dialect_includes_optional_parts_only_when_given():
    bare = build_chat_messages(MetaPromptInput("Sort these: b a c"))
    assert [m["role"] for m in bare] == ["system", "user"]
    assert "Silver response" not in bare[1]["content"]
    full = build_chat_messages(MetaPromptInput("Sort these: b a c", "c b a", "a b c", 25))
    assert "Silver response" in full[1]["content"] and "a b c" in full[1]["content"]
    assert "fewer than 25 words" in full[1]["content"]


def test_build_meta_prompt_dispatches_on_dialect():
    inp = MetaPromptInput("Translate 'chat' to English.")
    assert isinstance(build_meta_prompt(inp, "fipo-original"), str)
    assert isinstance(build_meta_prompt(inp, Dialect.CHAT), list)
    with pytest.raises(ValueError, match="unknown dialect"):
        build_meta_prompt(inp, "tulu3")


def test_budget_grows_slowly_and_validates():
    assert default_budget("a b c") == 30
    assert default_budget(" ".join(["w"] * 100)) == 170
    with pytest.raises(InvalidPromptError):
        MetaPromptInput("   ")
    with pytest.raises(ValueError, match="max_words"):
        MetaPromptInput("ok", max_words=0)


def test_discriminator_fills_all_slots():
    text = build_discriminator("raw", "prompt a", "prompt b", "gold")
    assert text.startswith("<|user|>\n") and text.endswith("<|assistant|>\n")
    for slot in ("R_P", "P_A", "P_B", "G_R"):
        assert slot not in text
    assert "prompt a" in text and "prompt b" in text
