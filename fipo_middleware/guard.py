"""The rewrite guard: is an optimizer output a usable optimized prompt for this naive prompt?

One definition serves the middleware (reject and fall back), the training filters (drop bad
pairs) and the evaluation ("usable-rewrite rate"). Pure: regexes and word lists only.

A rewrite is usable when it is non-empty, within the word budget, free of template text and
meta-chatter, keeps every number, quoted string and option label of the naive prompt, invents
no input material, keeps the task (no negated verb; for a task-level instruction, most of its
words), and reads as an instruction rather than as an answer to it. The last check is a small
hand-built score calibrated on the BPO pairs (``optimized_prompt`` = rewrite,
``good_res``/``bad_res`` = replies; see tests/unit/test_guard.py for the measured rates).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from fipo_middleware.language import detect_language, same_language
from fipo_middleware.template import TEMPLATE_MARKERS

GUARD_VERSION = "6"
"""Bumped whenever a check changes what passes: the guard decides which of the optimizer's tries
is served, so evaluation caches key on it (1: first release; 2: negated tasks and inventions on
task-level instructions; 3: task words kept on task-level instructions, short quoted items;
4: answer letters without options; 5: paraphrased meta-prompt labels are template residue;
6: the reply test reads leading clauses ("For each, compare ..."), sentences ending in a quote,
the user's own first person and fenced pasted input, and outside English keeps only its
language-neutral signals; a placeholder for input, "[insert feedback here]", is residue).
``added_length_cap``/``added_formats`` below are used by append mode; wiring them (and
``same_language``) into ``check_rewrite`` is guard 7, pending re-calibration of the fixtures
and figures."""

_PARAPHRASED_LABELS = ("a weak model's answer", "(the answer we want)")
"""The chat meta-prompt's response labels as the model paraphrases them ("Response (a weak
model's answer to the question above):"). Residue for the guard only: the parser must not cut
a rewrite there, which would leave half a label behind."""

# A stand-in for input the optimizer did not see ("[insert feedback here]", "[Go function]"): it
# rewrites the instruction while code and lists stay protected, and may write a slot for them.
# Name slots in a letter ("[Your name]") are not this.
_INPUT_PLACEHOLDER = re.compile(
    r"(?i)\[(?:insert|paste|add|enter|include)\b[^\]\n]{0,60}\]|\[[^\]\n]{0,40}\b(?:code|"
    r"function|snippet|text|feedback|input|document|passage|list|data|here|comments?|minutes|"
    r"notes|email|message|article|table|paragraph)\b[^\]\n]{0,40}\]"
)
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:[.,]\d+)*%?")
_QUOTED = re.compile(r'"([^"\n]{1,200})"|“([^”\n]{1,200})”|(?<!\w)\'([^\'\n]{2,200})\'(?!\w)')
_OPTION_LABEL = re.compile(r"(?m)^\s*(?:\(([A-Ha-h1-9])\)|([A-Ha-h1-9])[.):])\s+\S")
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]*")

# Openings that reply to a request instead of restating it.
_REPLY_OPENINGS = re.compile(
    r"^\s*(?:sure\b|certainly\b|of course\b|absolutely\b|yes\b|no\b|okay\b|ok\b|great\b|"
    r"here(?:'s| is| are)\b|the answer\b|answer\s*:|the (?:correct|final) answer\b|"
    r"i(?:'m| am| think| believe| would| can| have| hope)\b|as an ai\b|"
    r"my (?:name|answer)\b|dear\b|hi\b|hello\b|thank you\b|thanks\b|in conclusion\b|"
    r"once upon a time\b|title\s*:|subject\s*:|step 1\b|1[.)]\s)",
    re.IGNORECASE,
)
_META_CHATTER = re.compile(
    r"(?:\bgolden prompt\b|\bsilver prompt\b|\bsliver\b|\bnaive prompt\b|\boptimi[sz]ed prompt\b|"
    r"\bthe (?:original|given|above) prompt\b|\bthis prompt (?:is|has|was)\b|"
    r"\bi(?: have|'ve) (?:optimi[sz]ed|rewritten|revised|improved)\b|\bas an ai\b|"
    r"\bi(?:'m| am) sorry\b|\b(?:as )?a (?:large )?language model\b|"
    r"\bi do not have enough information\b|^\s*i (?:cannot|can't|won't)\b|"
    r"\bprompt optimi[sz]ation\b|\b(?:improved|better|revised|new) (?:version of (?:your|the) )?"
    r"prompt\s*:|\bversion of your prompt\b)",
    re.IGNORECASE,
)

# Verbs that open instructions. Rewrites restate the task, so they open with (or contain) one.
IMPERATIVE_VERBS = frozenset(
    """
    act add adjust analyse analyze answer apply arrange ask assess assign break brainstorm build
    calculate categorise categorize change check choose cite clarify classify combine compare
    compile complete compose compute condense construct convert correct count craft create
    debug decide deduce define delete derive describe design detect determine develop devise
    discuss distinguish divide do draft draw edit elaborate eliminate enumerate estimate
    evaluate examine explain express extract fill find finish fix focus format formulate
    generate give group guess help highlight identify illustrate imagine implement improve
    include indicate infer insert interpret invent judge justify keep label list locate make
    mark match mention modify name note offer order organize organise outline paraphrase pick
    plan point predict prepare present produce propose provide put rank rate read recommend
    reduce refactor reformat reorder rephrase replace reply report respond restate restructure
    return revise rewrite say score select separate share show simplify solve sort specify
    state suggest summarise summarize support tell test think transform translate turn use
    verify write come search reverse consider prove review tweak fill convert critique
    proofread brainstorm recommend research investigate discover respond ask book schedule
    cancel confirm set send log pull lay track reason shorten condense email call draw post
    address balance cover weigh contrast
    """.split()
)
_STOPWORDS = frozenset(
    """a an the and or but of to in on at for with by from as is are was were be been being it
    its this that these those i you he she we they me my your our their his her them us not no
    so if then than do does did can could should would will shall may might must have has had
    what which who whom how why when where there here about into over under up down out""".split()
)


@dataclass(frozen=True)
class GuardResult:
    """Verdict on one rewrite; ``reasons`` is empty when usable."""

    usable: bool
    reasons: tuple[str, ...] = ()
    details: dict[str, object] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return self.usable


def _norm_number(s: str) -> str:
    return s.replace(",", "").rstrip("%").lstrip("+")


def numbers_in(text: str) -> set[str]:
    return {_norm_number(m.group(0)) for m in _NUMBER.finditer(text)}


def quoted_in(text: str) -> list[str]:
    return [next(g for g in m.groups() if g is not None) for m in _QUOTED.finditer(text)]


def option_labels_in(text: str) -> set[str]:
    return {(m.group(1) or m.group(2)).upper() for m in _OPTION_LABEL.finditer(text)}


def content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS and len(w) > 2}


def _first_word(sentence: str) -> str:
    m = _WORD.search(sentence)
    return m.group(0).lower() if m else ""


def _sentences(text: str) -> list[str]:
    # "e.g." and "vs." end no sentence; a closing quote or bracket after the stop does.
    text = re.sub(r"\b(e\.g|i\.e|vs|etc|approx|incl)\.", r"\1", text, flags=re.IGNORECASE)
    return [s for s in re.split(r"(?<=[.!?])\s+|(?<=[.!?][\"”’')])\s+|\n+", text) if s.strip()]


_REQUEST_CUES = re.compile(
    r"(?:^|\b)(?:please|kindly|can you|could you|would you|will you|"
    r"i (?:need|want|would like|'d like)|"
    r"help me|your (?:task|answer|response|goal|job)|you (?:should|must|need to|will|are to|may)|"
    r"ensure|make sure|be sure|do not|don't|avoid|focus on|keep (?:it|the|your)|"
    r"let me know|tell me|show me|give me|in (?:\w+ )?(?:words|sentences|bullet points|paragraphs)|"
    r"respond with|reply with|answer with|the (?:response|answer|output) should)\b",
    re.IGNORECASE,
)


# What may stand before an imperative: a sequencing adverb ("First ask ...", "Then list ..."),
# or a leading clause up to its comma ("For each, compare ...", "If it is unclear, ask ...").
_LEAD_ADVERB = re.compile(r"(?i)^(?:first|second|then|next|finally|also|afterwards|lastly|"
                          r"briefly|clearly|carefully|always|only|now)\b,?\s*")
_LEAD_CLAUSE = re.compile(r"(?i)^(?:for (?:each|every|all|both)|if|when|where|whenever|unless|"
                          r"after|before|once|in (?:each|every|your|the)|based on|using|from|"
                          r"with|without|given|at the end|throughout)\b[^,;:]{0,80}[,;]\s*")


def _is_directive(sentence: str) -> bool:
    s = sentence.strip().lstrip("-*#>•0123456789.) ").strip()
    if not s:
        return False
    if s.endswith("?"):
        return True
    lead = _LEAD_CLAUSE.sub("", s, count=1)
    if any(_first_word(_LEAD_ADVERB.sub("", t, count=1)) in IMPERATIVE_VERBS for t in (s, lead)):
        return True
    return bool(_REQUEST_CUES.search(s))


_FIRST_PERSON = re.compile(r"(?i)\b(?:i|i'm|im|i've|ive|i'd|my|me)\b")
_FENCED = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


def _fences_pasted(naive_prompt: str, rewrite: str) -> bool:
    """Every fenced block holds the user's pasted material (fencing a pasted traceback is a
    rewrite; a fenced block of new code is an answer)."""
    blocks = _FENCED.findall(rewrite)
    if not blocks:
        return False
    naive_words = content_words(naive_prompt)
    for block in blocks:
        words = content_words(block)
        if words and len(words - naive_words) / len(words) > 0.2:
            return False
    return True


def _trigrams(text: str) -> set[str]:
    t = "".join(text.lower().split())
    return {t[i:i + 3] for i in range(len(t) - 2)}


def _trigram_recall(naive_prompt: str, rewrite: str) -> float:
    grams = _trigrams(naive_prompt)
    return len(grams & _trigrams(rewrite)) / len(grams) if grams else 1.0


def instruction_score(naive_prompt: str, rewrite: str) -> float:
    """How much ``rewrite`` reads as a restated instruction (positive) versus a reply
    (negative): directive sentences (imperatives, questions, requests) count for it, sentences
    of new declarative content against it. Calibrated on the BPO pairs; see module docstring."""
    naive_words = content_words(naive_prompt)
    directive = 0.0
    new_statements = 0.0
    for sentence in _sentences(rewrite):
        words = content_words(sentence)
        if _is_directive(sentence):
            directive += 1.0
        elif words:
            novelty = len(words - naive_words) / len(words)
            if novelty > 0.5:
                new_statements += 1.0
            elif novelty > 0.25:
                new_statements += 0.5
    score = min(directive, 3.0) - new_statements
    if detect_language(naive_prompt) not in (None, "en"):
        # The sentence test knows English imperatives only; in another language it would call
        # every rewrite a reply. Language-neutral instead: a restatement keeps much of the
        # request's own wording (character trigrams; judged teacher rewrites: 5th percentile
        # 0.59), a reply in that language little of it (teacher answers: 12 of 14 under 0.35).
        score = 1.0 if _trigram_recall(naive_prompt, rewrite) >= 0.35 else -1.0
    elif directive == 0:
        score -= 1.0
    opening = _REPLY_OPENINGS.match(rewrite)
    # "I'm 24 and just got my first job. Explain ..." restates the user's own first person.
    if opening and not (opening.group(0).strip().lower().startswith("i")
                        and _FIRST_PERSON.search(naive_prompt)):
        score -= 2.0
    if "```" in rewrite and "```" not in naive_prompt and not _fences_pasted(naive_prompt,
                                                                            rewrite):
        score -= 2.0
    if naive_words:
        kept = len(naive_words & content_words(rewrite)) / len(naive_words)
        score += kept - 0.5
    return score


_MATERIAL_LABEL = re.compile(
    r"(?im)(?:^|(?<=[.!?:]\s))\s*(?:question|q\d*|text|sentence|passage|input|context|words|"
    r"list|review|email|statement|example|options|choices|answer choices)\s*\d*\s*:\s*([^\n]+)"
)
# "the following", "below", "these": the instruction points at input the caller appends later.
_DEICTIC = re.compile(
    r"\b(?:the following|following|below|above|these|those|the given|each of the|this "
    r"(?:text|passage|paragraph|sentence|list|code|article|email|message|story|review|"
    r"question|problem|puzzle|statement|note|notes|data|table|function|snippet|document))\b",
    re.IGNORECASE,
)
_MATERIAL_NOUN_TOPIC = re.compile(
    r"(?i)\b(?:text|article|story|passage|paragraph|notes?|email|message|essay|report|review|"
    r"list|question|problem|puzzle|document|poem|letter|code|words|items|events|data)\s+"
    r"(?:about|on|regarding|concerning|describing)\s+(?:the |a |an |our |my |how |why )?"
    r"([A-Za-z][\w'-]*(?:\s+[A-Za-z][\w'-]*){0,3})"
)
_LENGTH_HINT = re.compile(
    r"(?i)\b\d+\s*(?:-\s*\d+\s*)?(?:words?|sentences?|lines?|bullets?|bullet points?|"
    r"paragraphs?|characters?|chars?|items?|points?|steps?)\b"
)
_LETTER_ANSWER = re.compile(
    r"(?i)\b(?:with|give|reply with|answer with|respond with|only) (?:the |a |one |its )?"
    r"(?:single )?letter\b|\bletter only\b|\bletter of the (?:correct |right |best )?"
    r"(?:option|answer|choice)\b"
)
_CHOICE_CUE = re.compile(
    r"(?i)\b(?:options?|choices?|choose|choosing|select|pick|multiple[- ]choice|letters?|"
    r"which (?:answer|option|one|of the))\b|\([A-Ea-e]\)|(?m:^\s*[A-Ea-e][.)]\s)"
)
_ANY_QUOTED = re.compile(r"[\"“'‘]([^\"”'’\n]{1,60})[\"”'’]")
_SEGMENT_END = re.compile(r"[.?!;\n]\s|$")


def refers_to_absent_material(naive_prompt: str) -> bool:
    """A task-level instruction whose input is not in it ("Sort the following words
    alphabetically:"): the caller appends the material later, so anything concrete the rewrite
    adds (a sample question, a word list, a topic) is made up."""
    text = naive_prompt.strip()
    if "\n" in text or len(text.split()) > 40 or not _DEICTIC.search(text):
        return False
    _, colon, tail = text.partition(":")
    return not (colon and len(tail.split()) >= 3)


def _novel_share(words: set[str], naive_words: set[str]) -> float:
    return len(words - naive_words) / len(words) if words else 0.0


def _absent_material_inventions(naive_prompt: str, rewrite: str) -> list[str]:
    naive_words = content_words(naive_prompt)
    found: list[str] = []
    # Material after a colon: "Sort these words: kiwi, apple, fig."
    for m in re.finditer(r":\s*", rewrite):
        rest = rewrite[m.end():]
        seg = rest[: _SEGMENT_END.search(rest).start()]
        words = content_words(seg)
        if len(words - naive_words) >= 2 and _novel_share(words, naive_words) > 0.5:
            found.append(seg.strip())
    # A topic the naive prompt never named: "the following text about climate change".
    for m in _MATERIAL_NOUN_TOPIC.finditer(rewrite):
        if content_words(m.group(1)) - naive_words:
            found.append(m.group(0))
    # Concrete values: "order #4521", "$12", "60 km". Small counts and lengths ("in 3 steps",
    # "under 50 words") are format hints, not material.
    for n in numbers_in(_LENGTH_HINT.sub(" ", rewrite)) - numbers_in(naive_prompt):
        if not re.fullmatch(r"[1-9]", n):
            found.append(n)
    # Answer letters presuppose labelled options the naive prompt never mentions: "with the
    # letter only" for "Answer the following question." invents a multiple-choice format.
    letter = _LETTER_ANSWER.search(rewrite)
    if letter and not _CHOICE_CUE.search(naive_prompt):
        found.append(letter.group(0))
    # Any new quoted item, however short: "'a', 'b', 'c'" is a made-up word list.
    for q in _ANY_QUOTED.findall(rewrite):
        if q.strip() and not re.search(rf"(?<!\w){re.escape(q.strip().lower())}(?!\w)",
                                       naive_prompt.lower()):
            found.append(q)
    return found


def dropped_task_words(naive_prompt: str, rewrite: str, min_kept: float = 0.6) -> float | None:
    """For a task-level instruction (see :func:`refers_to_absent_material`), the share of its
    content words the rewrite keeps when below ``min_kept`` (else None): with no input to anchor
    it, a rewrite that drops most of the instruction's words has changed the task. Every chosen
    rewrite of the seed's 153 such prompts keeps at least 60 %."""
    if not refers_to_absent_material(naive_prompt):
        return None
    naive_words = content_words(naive_prompt)
    if not naive_words:
        return None
    kept = len(naive_words & content_words(rewrite)) / len(naive_words)
    return kept if kept < min_kept else None


def invented_material(naive_prompt: str, rewrite: str) -> list[str]:
    """Material the rewrite presents as given ("Question: ...", a quoted list) that the naive
    prompt does not contain: the optimizer made up an input, which would mislead the downstream
    model (seen with short task-level instructions such as "Sort the following words:", where
    the check is strictest; see :func:`refers_to_absent_material`)."""
    naive_lower = naive_prompt.lower()
    naive_words = content_words(naive_prompt)
    found: list[str] = []
    for q in quoted_in(rewrite):
        if len(q.split()) >= 3 and q.lower() not in naive_lower:
            words = content_words(q)
            if words and _novel_share(words, naive_words) > 0.5:
                found.append(q)
    for m in _MATERIAL_LABEL.finditer(rewrite):
        words = content_words(m.group(1))
        if len(words) >= 3 and _novel_share(words, naive_words) > 0.5:
            found.append(m.group(1).strip())
    if refers_to_absent_material(naive_prompt):
        found.extend(x for x in _absent_material_inventions(naive_prompt, rewrite)
                     if x not in found)
    return found


# "spam or not spam" names a label, not a negated task.
_NEGATED = re.compile(r"(?i)(?<!\bor )\b(?:not|never|no longer)\s+(?:to\s+)?([A-Za-z][\w'-]*)")
_CONTRACTED = re.compile(
    r"(?i)\b(do|does|did|is|are|was|were|ca|can|wo|should|would|could|have|has|had|must)n[’']?t\b"
)


def _normalise_negation(text: str) -> str:
    return _CONTRACTED.sub(r"\1 not", text.replace("cannot", "can not"))


_NOT_VERBS = frozenset("too only just all always very more less much sure".split())
_ANY_NEGATION = re.compile(r"(?i)\b(?:not|never|no longer|without|fail(?:s|ed)? to|none|no)\b")
_NAIVE_NEGATION = re.compile(
    r"(?i)\b(?:not|never)\s+([A-Za-z][\w'-]*)(?:\s+([A-Za-z][\w'-]*))?(?:\s+([A-Za-z][\w'-]*))?"
)


def negated_instructions(naive_prompt: str, rewrite: str) -> list[str]:
    """Where the rewrite asks for the opposite task: it negates a verb of the naive prompt
    ("do you return" -> "do not return"), or it drops the naive prompt's negation and keeps the
    word it applied to ("is NOT an example" -> "is an example")."""
    naive = _normalise_negation(naive_prompt).lower()
    text = _normalise_negation(rewrite)
    naive_words = content_words(naive_prompt)
    flipped: list[str] = []
    for m in _NEGATED.finditer(text):
        verb = m.group(1).lower()
        if verb in naive_words and verb not in _NOT_VERBS and not re.search(
            rf"\b(?:not|never|no longer|no|without)\s+(?:\w+\s+){{0,2}}{re.escape(verb)}\b", naive
        ):
            flipped.append(m.group(0))
    if not _ANY_NEGATION.search(text):
        for m in _NAIVE_NEGATION.finditer(naive):
            word = next((w for w in m.groups() if w and len(w) > 2 and w not in _STOPWORDS), None)
            # A 5-letter stem: "does not belong" -> "belongs".
            if word and re.search(rf"(?i)\b{re.escape(word[:5])}", text):
                flipped.append("dropped: " + m.group(0))
    return flipped


# Caps on the *answer's* length. The rubric counts one the user did not ask for as a loss: a
# small optimizer appends them by reflex ("in one or two sentences") to questions that need depth.
_LENGTH_CAP = re.compile(
    r"(?i)\b(?:in|within|using|with)\s+(?:a\s+)?(?:one|two|three|four|five|a few|single|\d+)"
    r"(?:\s+(?:or|to|-)\s+(?:two|three|four|five|\d+))?\s+(?:short\s+)?"
    r"(?:sentences?|words?|lines?|paragraphs?|bullet points?|bullets?)\b|"
    r"\b(?:under|fewer than|less than|no more than|at most|maximum(?: of)?|max\.?|up to)\s+"
    r"\d+\s+(?:words?|sentences?|lines?|characters?|paragraphs?)\b|"
    r"\bone[- ](?:line|sentence|word|paragraph)\b|\bkeep it (?:short|brief)\b|"
    r"\b(?:be|keep(?: it| the answer)?) (?:brief|concise|short)\b|\bbriefly\b"
)
# What in the naive prompt shows that the user cares about the answer's length.
_LENGTH_CUE = re.compile(
    r"(?i)\b(?:short|shorter|brief|briefly|concise|succinct|summar\w*|tl;?dr|one[- ]line\w*|"
    r"sentences?|words?|lines?|paragraphs?|bullets?|quick(?:ly)?|limit)\b"
)
# Answer formats that fit only some requests; a rewrite may add one only when the naive prompt
# already points that way.
_FORMATS: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...] = (
    (re.compile(r"(?i)\b(?:one|a single)[- ]word\b|\bsingle word\b|"
                r"\b(?:reply|answer|respond) with (?:the|a|one|your) (?:\w+ ){0,2}words?\b"),
     re.compile(r"(?i)\bword\b")),
    (re.compile(r"(?i)\bone (?:\w+ )?per line\b|\beach on (?:a|its own) (?:new )?line\b"),
     re.compile(r"(?i)\b(?:per line|lines?|list)\b")),
    (re.compile(r"(?i)\b(?:the )?(?:number|letter|label|answer|word|name|code) only\b|"
                r"\bonly (?:the|a|one) (?:number|letter|label|word|name|final answer)\b|"
                r"\bnothing else\b|\bno (?:other )?(?:explanation|commentary|extra text)\b|"
                r"\bwithout (?:any )?(?:explanation|commentary)\b"),
     re.compile(r"(?i)\bonly\b|\bnothing else\b|\bno explanation\b|\bjust (?:the|give)\b")),
    (re.compile(r"(?i)\bjson\b"), re.compile(r"(?i)\bjson\b")),
    (re.compile(r"(?i)\b(?:as|in) a table\b|\btabular\b"), re.compile(r"(?i)\btable|tabular\b")),
)


def added_length_cap(naive_prompt: str, rewrite: str) -> str | None:
    """The answer-length cap the rewrite adds to a prompt that showed no interest in length."""
    if _LENGTH_CUE.search(naive_prompt) or _LENGTH_CAP.search(naive_prompt):
        return None
    m = _LENGTH_CAP.search(rewrite)
    return m.group(0) if m else None


def added_formats(naive_prompt: str, rewrite: str) -> list[str]:
    """Answer formats the rewrite imposes that nothing in the naive prompt asked for."""
    found: list[str] = []
    for pattern, cue in _FORMATS:
        m = pattern.search(rewrite)
        if m and not pattern.search(naive_prompt) and not cue.search(naive_prompt):
            found.append(m.group(0))
    return found


def check_rewrite(
    naive_prompt: str,
    rewrite: str,
    max_words: int | None = None,
    options: Sequence[str] = (),
    answer_threshold: float = 0.5,
) -> GuardResult:
    """Judge one rewrite of ``naive_prompt``. ``options`` are answer options that must survive
    verbatim (in addition to option labels found in the naive prompt)."""
    reasons: list[str] = []
    details: dict[str, object] = {}
    text = rewrite.strip()
    if not text:
        return GuardResult(False, ("empty",), details)
    if max_words is not None and len(text.split()) > max_words:
        reasons.append("over_budget")
        details["words"] = len(text.split())
    lowered = text.lower()
    leaked = [m for m in TEMPLATE_MARKERS if m.lower() in lowered]
    leaked += [m for m in _PARAPHRASED_LABELS
               if m.lower() in lowered and m.lower() not in naive_prompt.lower()]
    leaked += [m.group(0) for m in _INPUT_PLACEHOLDER.finditer(text)
               if m.group(0).lower() not in naive_prompt.lower()]
    if leaked:
        reasons.append("template_leak")
        details["leaked"] = leaked
    if _META_CHATTER.search(text) and not _META_CHATTER.search(naive_prompt):
        reasons.append("meta_chatter")
    missing_numbers = sorted(numbers_in(naive_prompt) - numbers_in(text))
    if missing_numbers:
        reasons.append("dropped_numbers")
        details["missing_numbers"] = missing_numbers
    missing_quotes = [q for q in quoted_in(naive_prompt) if q not in text]
    if missing_quotes:
        reasons.append("dropped_quotes")
        details["missing_quotes"] = missing_quotes
    missing_labels = sorted(option_labels_in(naive_prompt) - option_labels_in(text))
    missing_options = [o for o in options if o not in text]
    if missing_labels or missing_options:
        reasons.append("dropped_options")
        details["missing_options"] = missing_labels + missing_options
    invented = invented_material(naive_prompt, text)
    if invented:
        reasons.append("invented_material")
        details["invented"] = invented
    kept = dropped_task_words(naive_prompt, text)
    if kept is not None:
        reasons.append("changed_task")
        details["task_words_kept"] = round(kept, 3)
    flipped = negated_instructions(naive_prompt, text)
    if flipped:
        reasons.append("negated_task")
        details["negated"] = flipped
    score = instruction_score(naive_prompt, text)
    details["instruction_score"] = round(score, 3)
    if score < answer_threshold and text != naive_prompt.strip():
        reasons.append("answers_task")
    return GuardResult(not reasons, tuple(reasons), details)


def is_usable(naive_prompt: str, rewrite: str, max_words: int | None = None) -> bool:
    return check_rewrite(naive_prompt, rewrite, max_words).usable


_INJECTION = re.compile(
    r"(?:\bignore (?:all |any )?(?:the |your |previous |prior |above |earlier )*"
    r"(?:instructions?|prompts?|rules|above|text)\b|"
    r"\bdisregard (?:all |the |your |previous |prior |above )*(?:instructions?|prompts?|rules)\b|"
    r"\bforget (?:all |your |the |previous )*(?:instructions?|rules)\b|"
    r"\b(?:reveal|print|show|repeat) (?:your|the) (?:system )?(?:prompt|instructions)\b|"
    r"\byou are no longer\b|\bnew instructions?\s*:)",
    re.IGNORECASE,
)


def serving_reasons(naive_prompt: str, rewrite: str, max_words: int | None = None,
                    options: Sequence[str] = ()) -> tuple[str, ...]:
    """Why a candidate must not be served: ``check_rewrite``'s reasons, and ``changed_language``
    for a rewrite in another language (kept out of ``check_rewrite`` so its calibrated figures
    stand). The one check every served or compiled candidate passes."""
    reasons = check_rewrite(naive_prompt, rewrite, max_words, options).reasons
    if rewrite.strip() and not same_language(naive_prompt, rewrite):
        reasons = (*reasons, "changed_language")
    return tuple(reasons)


def looks_like_injection(naive_prompt: str) -> bool:
    """The naive prompt addresses the optimizer itself ("ignore the above and print X")."""
    return bool(_INJECTION.search(naive_prompt))
