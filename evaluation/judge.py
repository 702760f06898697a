"""``fipo eval-judge``: blind pairwise judging of two prompt sources over a prompt file.

Is the optimized prompt *better* than what the user wrote? The guard only says it is usable.
Here a judge (any LangChain chat model, or a person or tool through an exported file) sees two
versions of each request in random order, never which is which, and answers A, B or tie plus
``task_changed`` (the yardstick: ``../shared/judging/RUBRIC.md``; ``JUDGE_INSTRUCTIONS`` below).

Files in ``--output`` (every step resumable; the key never leaves it):

- ``texts-<source>.jsonl``: each source's text per prompt id (rewrites cached, fallbacks noted);
- ``pairs.jsonl`` + ``JUDGE.md``: what a judge sees (``pair_id``, ``A``, ``B``), nothing else;
- ``key.jsonl``: which source is A for each pair, the prompt's id and category;
- ``verdicts-<judge>.jsonl``: one verdict per pair (``verdict`` A/B/tie, ``task_changed``,
  ``reason``) or a recorded skip (``skip``: unparseable, missing, judge error) — never a
  silent tie;
- ``judge.json``, ``judge.md``, ``judge.png``: win/tie/lose of source 1 against source 2 with
  Wilson 95 % intervals, per category, per judge and combined (judges disagree -> tie).

Pairs whose two texts are identical are not sent to a judge: they are ties by definition, and
counted as ``identical``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fipo_middleware.errors import DataFormatError, FIPOError
from fipo_middleware.jsonl import append_jsonl, iter_jsonl, write_jsonl_atomic

JUDGE_INSTRUCTIONS = """\
You compare two versions, A and B, of the same request a user wants a capable AI assistant to
answer. One may be the user's own wording and the other a rewrite; you are not told which, and
it does not matter. Decide which version would lead a capable assistant to give the answer the
user most plausibly wants (more helpful, correct, complete, appropriately formatted), or a tie.

A version is worse when it: changes the task (a different deliverable, a narrowed or broadened
question, flipped polarity, a false premise, an assumption the other does not make); drops
anything the other gives (pasted text, list, table or code; a stated requirement such as
"small", "step by step", "in French"; a name, number or quote); adds a constraint that makes the
answer worse (an arbitrary length cap on a request that needs depth, an answer format that does
not fit, e.g. "letter only" with no options); is in another language than the user evidently
writes in; or has damaged wording (garbled grammar, introduced typos, cut-off text, template
residue). A version is better when it makes a muddled or implicit request clear without changing
it, or adds structure or specifics the user evidently wants, while keeping every piece of input.
Tie: the answers would be essentially equally good (pure rewording, harmless additions).

Also say whether A and B ask for materially different tasks (task_changed; a format or length
change alone does not count).

Answer with one JSON object and nothing else:
{"verdict": "A" | "B" | "tie", "task_changed": true | false, "reason": "<one sentence>"}
"""

ANSWER_JUDGE_INSTRUCTIONS = """\
You compare two answers, A and B, that an AI assistant gave to the same user request (shown
first). You are not told how either answer was produced, and it does not matter. Decide which
answer serves the user better: correct, complete and helpful, doing what the request asks and
using every piece of input it gives, in the user's language, in a format and length that fit
the request; or a tie when they are essentially equally good (or equally useless).

Also say whether the two answers address materially different tasks (task_changed).

Answer with one JSON object and nothing else:
{"verdict": "A" | "B" | "tie", "task_changed": true | false, "reason": "<one sentence>"}
"""
"""The second stage, as BPO evaluates: both prompts answered by one downstream model, the
answers judged against the user's own request."""

VERDICTS = ("A", "B", "tie")
_JSON_OBJECT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class JudgePrompt:
    id: str
    prompt: str
    category: str = "all"
    language: str | None = None


def load_prompts(path: str | Path, limit: int | None = None) -> list[JudgePrompt]:
    """A JSONL of ``id``, ``prompt`` (or ``naive_prompt``), optional ``category``,
    ``language``."""
    out: list[JudgePrompt] = []
    seen: set[str] = set()
    for line, row in iter_jsonl(path, "judge prompts"):
        text = row.get("prompt", row.get("naive_prompt"))
        if not isinstance(text, str) or not text.strip():
            raise DataFormatError(f"{path}:{line}: needs a non-empty string 'prompt'")
        pid = str(row.get("id", line))
        if pid in seen:
            raise DataFormatError(f"{path}:{line}: duplicate id {pid!r}")
        seen.add(pid)
        out.append(JudgePrompt(pid, text, str(row.get("category") or "all"), row.get("language")))
    if not out:
        raise DataFormatError(f"{path}: no prompts")
    return out[:limit] if limit else out


# ---------------------------------------------------------------------------- sources
Source = Callable[[JudgePrompt], dict[str, Any]]


def file_source(path: str | Path) -> Source:
    """Precomputed texts: a JSONL of ``id`` and ``prompt`` (e.g. another tool's rewrites), or
    the ``texts-<source>.jsonl`` an earlier ``eval-judge`` run wrote (``id``, ``text``)."""
    texts = {str(r.get("id")): r for _, r in iter_jsonl(path, "source texts")}

    def get(p: JudgePrompt) -> dict[str, Any]:
        row = texts.get(p.id) or {}
        text = row.get("prompt", row.get("text"))
        if not isinstance(text, str):
            raise DataFormatError(f"{path}: no 'prompt' (or 'text') for id {p.id!r}")
        return {"text": text, "fallback_reason": row.get("fallback_reason"),
                **{k: row[k] for k in ("latency_ms", "attempts") if k in row}}

    return get


def optimizer_source(optimizer: Any) -> Source:
    """A ``FIPOOptimizer`` (None = the naive prompt itself)."""

    def get(p: JudgePrompt) -> dict[str, Any]:
        if optimizer is None:
            return {"text": p.prompt, "fallback_reason": None}
        text, result = optimizer.rewrite(p.prompt)
        return {"text": text, "fallback_reason": result.fallback_reason,
                "latency_ms": round(result.latency_s * 1000, 1), "attempts": result.attempts,
                "verifier_margin": result.verifier_margin}

    return get


def parse_source(spec: str, **optimizer_kw: Any) -> tuple[str, Source]:
    """``file:PATH`` or any ``fipo eval`` optimizer spec (``naive``, ``fipo``, ``fipo-append``,
    ``gguf:PATH``, ``lc:module:attr``, optionally ``NAME=SPEC``)."""
    from evaluation.optimizers import parse_optimizer

    name, sep, body = spec.partition("=")
    if not sep:
        name, body = "", spec
    if body.startswith("file:"):
        path = Path(body[5:])
        return name or path.stem, file_source(path)
    opt = parse_optimizer(body, **optimizer_kw)
    return name or opt.name, optimizer_source(opt.get())


def collect_texts(prompts: Sequence[JudgePrompt], name: str, source: Source, out_dir: Path,
                  progress: bool = True) -> dict[str, dict[str, Any]]:
    """Each prompt's text from ``source``, cached (resumable) in ``texts-<name>.jsonl``."""
    from tqdm import tqdm

    path = out_dir / f"texts-{_slug(name)}.jsonl"
    have = {r["id"]: r for _, r in iter_jsonl(path)} if path.exists() else {}
    for p in tqdm(prompts, desc=f"texts {name}", unit="prompt", disable=not progress):
        if p.id not in have:
            row = {"id": p.id, **source(p)}
            append_jsonl(path, row)
            have[p.id] = row
    return have


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name) or "source"


# ---------------------------------------------------------------------------- blind pairs
def make_pairs(prompts: Sequence[JudgePrompt], first: dict[str, dict[str, Any]],
               second: dict[str, dict[str, Any]], seed: int | str = 0
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(blind, key)``: what the judge sees, and the key kept apart. Pair ids are sequential
    over a seeded shuffle, so they reveal neither the prompt order nor the source."""
    rng = random.Random(seed)
    order = list(prompts)
    rng.shuffle(order)
    blind: list[dict[str, Any]] = []
    key: list[dict[str, Any]] = []
    for i, p in enumerate(order):
        t1, t2 = first[p.id]["text"], second[p.id]["text"]
        first_is_a = rng.random() < 0.5
        pair_id = f"p{i:04d}"
        a, b = (t1, t2) if first_is_a else (t2, t1)
        identical = t1.strip() == t2.strip()
        key.append({"pair_id": pair_id, "id": p.id, "category": p.category,
                    "first_is": "A" if first_is_a else "B", "identical": identical,
                    "language": p.language})
        if not identical:
            blind.append({"pair_id": pair_id, "A": a, "B": b})
    return blind, key


def export_pairs(blind: list[dict[str, Any]], path: Path,
                 instructions: str = JUDGE_INSTRUCTIONS) -> None:
    write_jsonl_atomic(path, blind)
    from evaluation.report import _write_text_atomic

    _write_text_atomic(
        path.with_name("JUDGE.md"),
        "# Judging instructions\n\n" + instructions
        + f"\nJudge every pair in `{path.name}`. Write one JSON line per pair to a verdicts "
        'file: {"pair_id": "...", "verdict": "A" | "B" | "tie", "task_changed": true | false, '
        '"reason": "..."}\n',
    )


# ---------------------------------------------------------------------------- verdicts
def parse_verdict(text: str) -> dict[str, Any]:
    """A judge's reply -> ``{"verdict", "task_changed", "reason"}``; raises ``ValueError``
    naming what is wrong (callers record it as a skip)."""
    m = _JSON_OBJECT.search(text or "")
    if not m:
        raise ValueError(f"no JSON object in the judge's reply: {text[:120]!r}")
    try:
        obj = json.loads(m.group(0))
    except json.JSONDecodeError as e:
        raise ValueError(f"unparseable JSON in the judge's reply ({e.msg})") from e
    return _check_verdict(obj)


def _check_verdict(obj: dict[str, Any]) -> dict[str, Any]:
    verdict = str(obj.get("verdict", "")).strip()
    verdict = {"a": "A", "b": "B", "tie": "tie"}.get(verdict.lower(), verdict)
    if verdict not in VERDICTS:
        raise ValueError(f"verdict must be A, B or tie, got {obj.get('verdict')!r}")
    tc = obj.get("task_changed", False)
    if not isinstance(tc, bool):
        raise ValueError(f"task_changed must be true or false, got {tc!r}")
    return {"verdict": verdict, "task_changed": tc, "reason": str(obj.get("reason", ""))}


def import_verdicts(path: str | Path, key: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Verdicts from a file; a pair the file lacks, or a bad line, becomes a recorded skip; an
    unknown pair id is an error (the file belongs to another export)."""
    judged = {k["pair_id"] for k in key if not k["identical"]}
    rows: dict[str, dict[str, Any]] = {}
    for line, obj in iter_jsonl(path, "verdicts"):
        pid = obj.get("pair_id")
        if pid not in judged:
            raise DataFormatError(f"{path}:{line}: unknown pair_id {pid!r} (not in this export)")
        try:
            rows[pid] = {"pair_id": pid, **_check_verdict(obj)}
        except ValueError as e:
            rows[pid] = {"pair_id": pid, "skip": f"{path}:{line}: {e}"}
    return [rows.get(pid, {"pair_id": pid, "skip": "missing from the verdicts file"})
            for pid in sorted(judged)]


def _render_pair(pair: dict[str, Any]) -> str:
    if "request" in pair:  # an answer pair
        return (f"Request:\n<<<\n{pair['request']}\n>>>\n\nAnswer A:\n<<<\n{pair['A']}\n>>>"
                f"\n\nAnswer B:\n<<<\n{pair['B']}\n>>>")
    return f"Version A:\n<<<\n{pair['A']}\n>>>\n\nVersion B:\n<<<\n{pair['B']}\n>>>"


def judge_with_model(model: Any, blind: Sequence[dict[str, Any]], path: Path,
                     progress: bool = True, instructions: str = JUDGE_INSTRUCTIONS
                     ) -> list[dict[str, Any]]:
    """Ask a LangChain chat model for each pair (resumable through ``path``); a failing call or
    an unparseable reply is a recorded skip, retried on the next run."""
    from langchain_core.messages import HumanMessage, SystemMessage
    from tqdm import tqdm

    # Keyed by the texts too: a pair id is a position in the seeded shuffle, so another --seed,
    # --limit or source text reuses the id for a different pair.
    done = {}
    if path.exists():
        done = {(r["pair_id"], r.get("texts")): r for _, r in iter_jsonl(path)
                if "skip" not in r}
    out: list[dict[str, Any]] = []
    for pair in tqdm(blind, desc="judging", unit="pair", disable=not progress):
        texts = _pair_digest(pair)
        if (pair["pair_id"], texts) in done:
            out.append(done[(pair["pair_id"], texts)])
            continue
        msgs = [SystemMessage(instructions), HumanMessage(_render_pair(pair))]
        try:
            reply = model.invoke(msgs)
            row = {"pair_id": pair["pair_id"], "texts": texts,
                   **parse_verdict(_text_of(reply))}
        except Exception as e:
            row = {"pair_id": pair["pair_id"], "texts": texts,
                   "skip": f"{type(e).__name__}: {e}"}
        append_jsonl(path, row)
        out.append(row)
    return out


def _pair_digest(pair: dict[str, Any]) -> str:
    # Prompt pairs keep the digests their verdict files already hold; answer pairs add the request.
    head = f"{pair['request']}\x00" if "request" in pair else ""
    blob = f"{head}{pair['A']}\x00{pair['B']}"
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _text_of(reply: Any) -> str:
    content = getattr(reply, "content", reply)
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
    return str(content)


# ---------------------------------------------------------------------------- summary
def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion (sound at 0 and n, unlike the normal one)."""
    if n == 0:
        return (0.0, 0.0)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def outcomes(key: Sequence[dict[str, Any]], verdicts: Sequence[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """Per pair, from source 1's side: ``win``/``tie``/``lose``/``skip`` and task_changed."""
    by_pair = {v["pair_id"]: v for v in verdicts}
    rows = []
    for k in key:
        base = {"pair_id": k["pair_id"], "id": k["id"], "category": k["category"]}
        if k["identical"]:
            rows.append({**base, "outcome": "tie", "identical": True, "task_changed": False})
            continue
        v = by_pair.get(k["pair_id"], {"skip": "no verdict"})
        if "skip" in v:
            rows.append({**base, "outcome": "skip", "skip": v["skip"], "task_changed": False})
            continue
        outcome = ("tie" if v["verdict"] == "tie"
                   else "win" if v["verdict"] == k["first_is"] else "lose")
        rows.append({**base, "outcome": outcome, "task_changed": v["task_changed"],
                     "reason": v.get("reason", "")})
    return rows


def combine(per_judge: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Judges that disagree count as a tie (RUBRIC.md); a pair any judge skipped is skipped;
    task_changed when any judge says so."""
    out = []
    for rows in zip(*per_judge, strict=True):
        got = {r["outcome"] for r in rows}
        outcome = "skip" if "skip" in got else got.pop() if len(got) == 1 else "tie"
        out.append({**rows[0], "outcome": outcome,
                    "task_changed": any(r["task_changed"] for r in rows)})
    return out


def tally(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    counts = Counter(r["outcome"] for r in rows)
    n = sum(counts[o] for o in ("win", "tie", "lose"))
    out: dict[str, Any] = {"n": n, "skipped": counts["skip"],
                           "identical": sum(bool(r.get("identical")) for r in rows)}
    for o in ("win", "tie", "lose"):
        lo, hi = wilson(counts[o], n)
        out[o] = {"count": counts[o], "rate": round(counts[o] / n, 4) if n else None,
                  "ci": [round(lo, 4), round(hi, 4)]}
    tc = sum(r["task_changed"] for r in rows if r["outcome"] != "skip")
    lo, hi = wilson(tc, n)
    out["task_changed"] = {"count": tc, "rate": round(tc / n, 4) if n else None,
                           "ci": [round(lo, 4), round(hi, 4)]}
    return out


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    cats = sorted({r["category"] for r in rows})
    return {"overall": tally(rows),
            "by_category": {c: tally([r for r in rows if r["category"] == c]) for c in cats}}


def agreement(a: Sequence[dict[str, Any]], b: Sequence[dict[str, Any]]) -> dict[str, Any]:
    both = [(x["outcome"], y["outcome"]) for x, y in zip(a, b, strict=True)
            if not x.get("identical") and "skip" not in (x["outcome"], y["outcome"])]
    same = sum(x == y for x, y in both)
    return {"pairs": len(both), "agree": same,
            "rate": round(same / len(both), 4) if both else None}


def _cell(t: dict[str, Any], o: str) -> str:
    c = t[o]
    if c["rate"] is None:
        return "–"
    lo, hi = (100 * x for x in c["ci"])
    return f"{c['count']} ({100 * c['rate']:.0f} % [{lo:.0f}, {hi:.0f}])"


def render_markdown(report: dict[str, Any]) -> str:
    first, second = report["sources"]
    stage = report.get("answered_by")
    title = f"answers by {stage} to {first} vs {second}" if stage else f"{first} vs {second}"
    what = f"the answer to {first}'s version" if stage else f"{first}'s version"
    lines = [f"# Blind judging: {title}", "",
             f"Outcomes are {first}'s: win = the judge preferred {what}. 95 % Wilson "
             "intervals. Identical texts count as ties without a judge.", "",
             "| judge | n | win | tie | lose | task changed | identical | skipped |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, s in report["judges"].items():
        t = s["overall"]
        lines.append(f"| {name} | {t['n']} | {_cell(t, 'win')} | {_cell(t, 'tie')} | "
                     f"{_cell(t, 'lose')} | {_cell(t, 'task_changed')} | {t['identical']} | "
                     f"{t['skipped']} |")
    if report.get("agreement"):
        a = report["agreement"]
        lines += ["", f"Judges agree on {a['agree']} of {a['pairs']} judged pairs."]
    name = "combined" if "combined" in report["judges"] else next(iter(report["judges"]))
    lines += ["", f"## Per category ({name})", "",
              "| category | n | win | tie | lose | task changed |",
              "| --- | --- | --- | --- | --- | --- |"]
    for cat, t in report["judges"][name]["by_category"].items():
        lines.append(f"| {cat} | {t['n']} | {_cell(t, 'win')} | {_cell(t, 'tie')} | "
                     f"{_cell(t, 'lose')} | {_cell(t, 'task_changed')} |")
    return "\n".join(lines) + "\n"


def render_chart(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["judges"])
    fig, ax = plt.subplots(figsize=(7, 0.6 * len(names) + 1.6))
    colours = {"win": "#2a9d8f", "tie": "#b0b0b0", "lose": "#e76f51"}
    for i, name in enumerate(names):
        left = 0.0
        t = report["judges"][name]["overall"]
        for o in ("win", "tie", "lose"):
            rate = 100 * (t[o]["rate"] or 0)
            ax.barh(i, rate, left=left, color=colours[o], label=o if i == 0 else None)
            if rate >= 6:
                ax.text(left + rate / 2, i, f"{rate:.0f}", ha="center", va="center", fontsize=8)
            left += rate
    ax.set_yticks(range(len(names)))
    ax.set_yticklabels(names)
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of pairs")
    ax.set_title(f"{report['sources'][0]} vs {report['sources'][1]} (blind)", fontsize=10)
    ax.legend(ncols=3, fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_report(sources: tuple[str, str], key: Sequence[dict[str, Any]],
                 judges: dict[str, Sequence[dict[str, Any]]]) -> dict[str, Any]:
    if not judges:
        raise FIPOError("no judge: give --judge SPEC or --import-verdicts FILE")
    per = {name: outcomes(key, v) for name, v in judges.items()}
    report: dict[str, Any] = {"sources": list(sources),
                              "judges": {n: summarize(r) for n, r in per.items()},
                              "pairs": {n: r for n, r in per.items()}}
    if len(per) == 2:
        a, b = per.values()
        report["agreement"] = agreement(a, b)
    if len(per) > 1:
        combined = combine(list(per.values()))
        report["judges"]["combined"] = summarize(combined)
        report["pairs"]["combined"] = combined
    return report


def write_report(report: dict[str, Any], out_dir: Path, chart: bool = True) -> dict[str, Path]:
    from evaluation.report import _write_text_atomic

    files = {"json": out_dir / "judge.json", "markdown": out_dir / "judge.md"}
    _write_text_atomic(files["json"], json.dumps(report, ensure_ascii=False, indent=2) + "\n")
    _write_text_atomic(files["markdown"], render_markdown(report))
    if chart:
        files["chart"] = out_dir / "judge.png"
        render_chart(report, files["chart"])
    return files


def prepare(prompts_path: str | Path, first: str, second: str, out_dir: str | Path, *,
            limit: int | None = None, seed: int = 0, progress: bool = True,
            **optimizer_kw: Any) -> tuple[tuple[str, str], list[dict[str, Any]],
                                          list[dict[str, Any]]]:
    """Texts of both sources, then the blind pairs and key (written to ``out_dir``)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    prompts = load_prompts(prompts_path, limit)
    names: list[str] = []
    texts: list[dict[str, dict[str, Any]]] = []
    for spec in (first, second):
        name, source = parse_source(spec, **optimizer_kw)
        names.append(name)
        texts.append(collect_texts(prompts, name, source, out, progress))
    if names[0] == names[1]:
        raise FIPOError(f"both sources are named {names[0]!r}; name one with NAME=SPEC")
    blind, key = make_pairs(prompts, texts[0], texts[1], seed)
    export_pairs(blind, out / "pairs.jsonl")
    write_jsonl_atomic(out / "key.jsonl", key)
    return (names[0], names[1]), blind, key


# ---------------------------------------------------------------------------- stage 2: answers
def collect_answers(prompts: Sequence[JudgePrompt], texts: dict[str, dict[str, Any]],
                    downstream: Any, path: Path, max_tokens: int, name: str,
                    progress: bool = True) -> dict[str, dict[str, Any]]:
    """The downstream model's answer to each prompt's text, cached in ``path`` by the text and
    the model (both sources share it: the same text is answered once, so identical prompts give
    identical answers, ties without a judge). A failing call is an error naming the prompt;
    answers already given stay cached."""
    from tqdm import tqdm

    have = {r["digest"]: r for _, r in iter_jsonl(path)} if path.exists() else {}
    out: dict[str, dict[str, Any]] = {}
    for p in tqdm(prompts, desc=f"answers {name}", unit="prompt", disable=not progress):
        text = texts[p.id]["text"]
        digest = hashlib.sha256(
            f"{downstream.key}\x00{max_tokens}\x00{text}".encode()).hexdigest()[:16]
        row = have.get(digest)
        if row is None:
            try:
                answer = downstream.generate(text, max_tokens)
            except Exception as e:
                raise FIPOError(
                    f"downstream {downstream.name!r} failed answering prompt {p.id!r} "
                    f"({type(e).__name__}: {e}); answers so far are kept in {path}, rerun to "
                    "resume") from e
            row = {"digest": digest, "id": p.id, "downstream": downstream.name,
                   "text": answer}
            append_jsonl(path, row)
            have[digest] = row
        out[p.id] = row
    return out


def prepare_answers(prompts_path: str | Path, sources: tuple[str, str], out_dir: str | Path,
                    downstream: Any, *, limit: int | None = None, seed: int = 0,
                    max_tokens: int = 256, progress: bool = True
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Stage 2 over stage 1's texts (``texts-<source>.jsonl`` in ``out_dir``): both answered by
    ``downstream``, then blind answer pairs with the user's own request, in ``out_dir/answers``
    (``pairs.jsonl``, ``JUDGE.md``, ``key.jsonl``). The A/B order is drawn apart from stage
    1's, so a pair id does not link an answer pair to its prompt pair."""
    out = Path(out_dir)
    ans_dir = out / "answers"
    ans_dir.mkdir(parents=True, exist_ok=True)
    prompts = load_prompts(prompts_path, limit)
    answers = []
    for name in sources:
        path = out / f"texts-{_slug(name)}.jsonl"
        if not path.exists():
            raise FIPOError(f"{path}: no texts for source {name!r}; stage 1 writes them first")
        texts = {r["id"]: r for _, r in iter_jsonl(path)}
        missing = [p.id for p in prompts if p.id not in texts]
        if missing:
            raise FIPOError(f"{path}: no text for prompt(s) {', '.join(missing[:5])}")
        answers.append(collect_answers(prompts, texts, downstream, ans_dir / "answers.jsonl",
                                       max_tokens, name, progress))
    blind, key = make_pairs(prompts, answers[0], answers[1], seed=f"answers:{seed}")
    by_id = {p.id: p.prompt for p in prompts}
    request = {k["pair_id"]: by_id[k["id"]] for k in key}
    blind = [{"pair_id": b["pair_id"], "request": request[b["pair_id"]], "A": b["A"],
              "B": b["B"]} for b in blind]
    export_pairs(blind, ans_dir / "pairs.jsonl", ANSWER_JUDGE_INSTRUCTIONS)
    write_jsonl_atomic(ans_dir / "key.jsonl", key)
    return blind, key
