"""Pure-core tests: blind judging bookkeeping, language detection, append mode, guard v5."""

from __future__ import annotations

import json

import pytest

from evaluation.judge import (
    JudgePrompt,
    build_report,
    import_verdicts,
    make_pairs,
    parse_verdict,
    wilson,
)
from fipo_middleware import FIPOOptimizer
from fipo_middleware.complement import append_complement
from fipo_middleware.language import detect_language
from tests.fakes import SequenceLLM


def _texts(pairs: dict[str, str]) -> dict[str, dict[str, str]]:
    return {k: {"text": v} for k, v in pairs.items()}


def test_blind_pairs_hide_the_source_and_score_from_source_one(tmp_path):
    prompts = [JudgePrompt(str(i), f"prompt {i}", "c") for i in range(20)]
    first = _texts({p.id: f"better {p.id}" for p in prompts})
    second = _texts({p.id: p.prompt for p in prompts})
    second["0"] = first["0"]  # identical texts: a tie, never sent to a judge
    blind, key = make_pairs(prompts, first, second, seed=1)
    assert len(blind) == 19 and all(set(b) == {"pair_id", "A", "B"} for b in blind)
    assert {k["first_is"] for k in key} == {"A", "B"}  # both orders occur
    # A judge that always prefers the "better" text: source one wins every judged pair.
    path = tmp_path / "v.jsonl"
    lines = [json.dumps({"pair_id": b["pair_id"], "task_changed": False,
                         "verdict": "A" if b["A"].startswith("better") else "B"})
             for b in blind[:-1]]
    path.write_text("\n".join(lines) + "\n")
    verdicts = import_verdicts(path, key)
    assert sum("skip" in v for v in verdicts) == 1  # the missing one is a recorded skip
    report = build_report(("fipo", "naive"), key, {"j1": verdicts})
    overall = report["judges"]["j1"]["overall"]
    assert overall["win"]["count"] == 18 and overall["tie"]["count"] == 1
    assert overall["lose"]["count"] == 0 and overall["skipped"] == 1


def test_bad_verdicts_are_errors_not_ties(tmp_path):
    with pytest.raises(ValueError):
        parse_verdict("I prefer the first one")
    with pytest.raises(ValueError):
        parse_verdict('{"verdict": "C", "task_changed": false}')
    assert parse_verdict('ok {"verdict": "b", "task_changed": true}')["verdict"] == "B"
    _, key = make_pairs([JudgePrompt("x", "p")], _texts({"x": "a"}), _texts({"x": "b"}))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"pair_id": "nope", "verdict": "A"}\n')
    with pytest.raises(Exception, match="unknown pair_id"):
        import_verdicts(bad, key)


def test_wilson_interval():
    lo, hi = wilson(0, 40)
    assert lo == 0.0 and 0.05 < hi < 0.1
    lo, hi = wilson(20, 40)
    assert lo < 0.5 < hi


@pytest.mark.parametrize(("text", "lang"), [
    ("tell me about mount everest", "en"),
    ("Explique-moi en trois phrases ce qu'est la photosynthèse.", "fr"),
    ("Schreibe eine E-Mail an meinen Chef, dass ich morgen nicht komme.", "de"),
    ("¿Cómo puedo aprender a programar en Python?", "es"),
    ("写一封邮件给我的老板，请假两天", "zh"),
    ("hi", None),
])
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def test_append_mode_keeps_the_naive_prompt_verbatim():
    naive = "a shirt costs $25 and is on sale for 20% off. whats the sale price"
    rewrite = ("A shirt costs $25 and is on sale for 20% off. What is the sale price? "
               "Show the calculation, then give the final price. Answer in one sentence.")
    out = append_complement(naive, rewrite)
    assert out.startswith(naive)
    assert "Show the calculation" in out and "one sentence" not in out
    assert append_complement(naive, naive) == naive


def test_eval_judge_cli_exports_blind_pairs_then_imports_two_judges(tmp_path, capsys):
    from fipo_middleware.cli import main

    prompts = tmp_path / "p.jsonl"
    rewrites = tmp_path / "rw.jsonl"
    rows = [{"id": f"q{i}", "prompt": f"question {i}", "category": "c" if i % 2 else "d"}
            for i in range(6)]
    prompts.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rewrites.write_text("".join(
        json.dumps({"id": r["id"], "prompt": f"better {r['prompt']}"}) + "\n" for r in rows))
    out = tmp_path / "run"
    argv = ["eval-judge", str(prompts), "--first", f"file:{rewrites}", "--second", "naive",
            "--output", str(out), "--quiet", "--no-chart"]
    assert main(argv) == 0
    blind = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    assert len(blind) == 6 and "better" not in json.dumps(list(blind[0]))  # no key in the file
    key = {k["pair_id"]: k for k in map(json.loads, (out / "key.jsonl").read_text().splitlines())}
    # Judge 1 always prefers the rewrite; judge 2 calls every pair a tie.
    j1, j2 = tmp_path / "j1.jsonl", tmp_path / "j2.jsonl"
    j1.write_text("".join(json.dumps({"pair_id": b["pair_id"], "task_changed": False,
                                      "verdict": key[b["pair_id"]]["first_is"]}) + "\n"
                          for b in blind))
    j2.write_text("".join(json.dumps({"pair_id": b["pair_id"], "task_changed": False,
                                      "verdict": "tie"}) + "\n" for b in blind))
    assert main([*argv, "--import-verdicts", str(j1), "--import-verdicts", str(j2)]) == 0
    report = json.loads((out / "judge.json").read_text())
    assert report["judges"]["j1"]["overall"]["win"]["count"] == 6
    assert report["judges"]["combined"]["overall"]["tie"]["count"] == 6  # disagreement = tie
    assert report["agreement"] == {"pairs": 6, "agree": 0, "rate": 0.0}
    assert (out / "judge.md").read_text().startswith("# Blind judging: rw vs naive")


def test_a_rewrite_in_another_language_is_never_served() -> None:
    naive = "Explique-moi en trois phrases ce qu'est la photosynthèse, s'il te plaît."
    opt = FIPOOptimizer.from_llm(
        SequenceLLM(outputs=["Explain what photosynthesis is in three sentences."]), cache_size=0)
    result = opt.optimize(naive)
    assert result.optimized_prompt == naive
    assert "changed_language" in result.guard_reasons


def test_model_judge_resumes_by_pair_texts_and_records_bad_replies(tmp_path):
    from langchain_core.language_models import GenericFakeChatModel
    from langchain_core.messages import AIMessage

    from evaluation.judge import judge_with_model

    blind = [{"pair_id": "p0000", "A": "one", "B": "two"},
             {"pair_id": "p0001", "A": "three", "B": "four"}]
    path = tmp_path / "verdicts-j.jsonl"
    replies = iter([AIMessage('{"verdict": "A", "task_changed": false, "reason": "r"}'),
                    AIMessage("I prefer the first one.")])
    got = judge_with_model(GenericFakeChatModel(messages=replies), blind, path, progress=False)
    assert got[0]["verdict"] == "A"
    assert "no JSON object" in got[1]["skip"]  # a recorded skip, never a silent tie
    # rerun: the judged pair is reused, the skipped one is asked again; a pair id that now
    # holds other texts (another --seed or source) is judged afresh, not served the old verdict
    blind[0] = {"pair_id": "p0000", "A": "two", "B": "one"}
    replies = iter([AIMessage('{"verdict": "B", "task_changed": false, "reason": "r"}'),
                    AIMessage('{"verdict": "tie", "task_changed": true, "reason": "r"}')])
    again = judge_with_model(GenericFakeChatModel(messages=replies), blind, path,
                             progress=False)
    assert [r["verdict"] for r in again] == ["B", "tie"]
    unchanged = judge_with_model(GenericFakeChatModel(messages=iter([])), blind, path,
                                 progress=False)
    assert [r["verdict"] for r in unchanged] == ["B", "tie"]


@pytest.mark.parametrize("naive", [
    "translate the next sentence to french",
    "summarize this for me\n\nMinutes, March 14\nPresent: Dana, Luis.\n1. Water. The city agreed.",
])
def test_append_mode_does_not_repeat_a_copied_naive_prompt(naive):
    # Append-form training teaches the model to copy the request and add guidance after it;
    # the copy must not come back as "new" guidance (a request without final punctuation used
    # to be read as one sentence with the guidance that followed it).
    guidance = "Keep the names and dates exactly as written."
    out = append_complement(naive, naive + "\n\n" + guidance)
    assert out == naive.rstrip() + "\n\n" + guidance
    assert out.count(naive.splitlines()[0]) == 1


def test_append_mode_drops_cut_off_and_continuation_sentences():
    naive = "write a haiku"
    assert append_complement(naive, "write a haiku\n\nthat captures the mood of autumn rain.") \
        == naive
    out = append_complement("why is the sky blue", "why is the sky blue\n\nExplain the physics "
                            "of scattering. Then compare it with what happens at sunset and")
    assert out == "why is the sky blue\n\nExplain the physics of scattering."


def test_append_mode_keeps_pasted_input_in_place():
    from fipo_middleware.segments import split_prompt

    naive = ("summarize this for me\n\nMinutes\n1. Water. The city agreed.\n"
             "2. Tools. The shed is locked.\nNext meeting: April 11.")
    split = split_prompt(naive, append=True)
    assert split.has_fixed  # the numbered lines are a fixed block between instruction pieces
    # An unchanged instruction must not move the pieces it was joined from.
    assert split.rebuild(split.instruction) == naive
    assert split_prompt(naive).rebuild(split.instruction) == naive
    out = split.rebuild(split.instruction + "\n\nKeep the dates.")
    assert out == naive + "\n\nKeep the dates."
