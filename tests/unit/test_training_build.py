"""``POPBuilder.build_one`` control flow with scripted LangChain chat models: both rewrites are
``FIPOOptimizer.candidates`` (meta-prompt, parse, guard), the filters and the discriminator's
keep / swap / drop. The real llama.cpp run is ``tests/integration/test_training_build.py``."""

from __future__ import annotations

import pytest
from langchain_core.language_models import GenericFakeChatModel

from training.build import Filtered, POPBuilder
from training.pop import SeedPrompt

SEED = SeedPrompt(id="s1", prompt="name the capital of Italy", reference="Rome")
GOOD = "Name the capital city of Italy; reply with the city name only."
WEAK = "Name a city in Italy."


def chat(*answers: str) -> GenericFakeChatModel:
    """Answers successive calls in order (the builder calls weak: silver answer, rewrite;
    teacher: rewrite, then the two discriminator verdicts when the seed has a reference)."""
    return GenericFakeChatModel(messages=iter(answers))


def build(teacher: tuple[str, ...], weak: tuple[str, ...], seed: SeedPrompt = SEED):
    return POPBuilder(chat(*weak), chat(*teacher), workers=1).build_one(seed)


def test_pair_kept_when_both_orders_prefer_the_teacher() -> None:
    rec = build((GOOD, "A", "B"), ("Rome is the capital.", WEAK))
    assert (rec.chosen, rec.rejected) == (GOOD, WEAK)
    assert rec.silver_response == "Rome is the capital." and rec.golden_response == "Rome"
    assert rec.metadata["discriminator"] == ["A", "B"] and rec.metadata["swapped"] is False
    assert rec.metadata["rejected_kind"] == "weak_rewrite"


def test_pair_swapped_when_both_orders_prefer_a_usable_weak_rewrite() -> None:
    rec = build((GOOD, "B", "A"), ("Rome.", WEAK))
    assert (rec.chosen, rec.rejected) == (WEAK, GOOD)
    assert rec.metadata["swapped"] is True and rec.metadata["rejected_kind"] == "teacher_rewrite"


def test_empty_weak_rewrite_falls_back_to_the_naive_prompt() -> None:
    rec = build((GOOD, "A", "B"), ("Rome.", ""))
    assert rec.rejected == SEED.prompt and rec.metadata["rejected_kind"] == "naive_prompt"


def test_guard_rejected_teacher_rewrite_is_filtered_with_its_reasons() -> None:
    german = "Nenne die Hauptstadt von Italien und antworte nur mit dem Namen der Stadt."
    with pytest.raises(Filtered) as err:
        build((german,), ("Rome.",))
    assert err.value.reason.startswith("chosen_") and "changed_language" in err.value.reason


def test_unusable_weak_rewrite_is_never_swapped_in() -> None:
    seed = SeedPrompt(id="n", prompt="what is 9 plus 10", reference="19")
    good = "Compute 9 plus 10 and reply with the number only."
    with pytest.raises(Filtered, match="discriminator_prefers_unusable_rejected"):
        build((good, "B", "A"), ("19", "What is addition?"), seed)
    rec = build((good, "A", "B"), ("19", "What is addition?"), seed)
    assert rec.metadata["rejected_guard"]  # the weak rewrite dropped the numbers


def test_inconsistent_verdicts_drop_the_pair() -> None:
    with pytest.raises(Filtered, match="discriminator_inconsistent"):
        build((GOOD, "A", "A"), ("Rome.", WEAK))
