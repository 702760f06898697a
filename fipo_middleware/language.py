"""Which language a prompt is written in: enough to keep a rewrite in the user's language.

Pure and small on purpose (no model, no dependency): scripts decide non-Latin languages, and
counts of very common function words decide between the Latin-script languages the project's
data covers. ``None`` means "too short or too mixed to tell" and never triggers a rejection.
"""

from __future__ import annotations

import re

_SCRIPTS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("ja", re.compile(r"[\u3040-\u30ff]")),  # kana first: Japanese also uses CJK ideographs
    ("ko", re.compile(r"[\uac00-\ud7af]")),
    ("zh", re.compile(r"[\u4e00-\u9fff]")),
    ("ru", re.compile(r"[\u0400-\u04ff]")),
    ("ar", re.compile(r"[\u0600-\u06ff]")),
    ("hi", re.compile(r"[\u0900-\u097f]")),
    ("el", re.compile(r"[\u0370-\u03ff]")),
    ("he", re.compile(r"[\u0590-\u05ff]")),
    ("th", re.compile(r"[\u0e00-\u0e7f]")),
)
_LATIN = re.compile(r"[A-Za-zÀ-ÿ]")
_TOKEN = re.compile(r"[a-zà-ÿ']+")

# Words frequent in one language and rare in the others (ambiguous ones such as "a", "de",
# "la", "in" are left out so that a single loanword cannot flip the verdict).
_FUNCTION_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset("the and of to is are what how you your for with this that it my me "
                    "please can write give explain why which about from be".split()),
    "fr": frozenset("le les des est une et pour que qui dans sur avec vous je mon ma mes "
                    "pas ce cette être écris explique peux quel quelle du au veux faire mais "
                    "aussi très".split()),
    "de": frozenset("der die das und ist nicht ich du sie mit für auf ein eine einen zu "
                    "wie was bitte schreibe erkläre mir mein meine den dem des".split()),
    "es": frozenset("el los las y es una por para que con como qué mi tu su del al "
                    "escribe explica puedes cómo por favor este esta puedo quiero hacer sobre "
                    "pero más también".split()),
    "it": frozenset("il gli che è per una con come cosa mio mia della delle nel sono "
                    "scrivi spiega puoi questo questa degli".split()),
    "pt": frozenset("os as uma para que com como meu minha não você é do da dos das "
                    "escreva explique pode isso esta este".split()),
    "nl": frozenset("het een en van is niet ik je jij voor met op dat wat hoe mijn "
                    "schrijf leg uit kun deze dit".split()),
}


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of ``text``'s language, or None when it cannot be told."""
    letters = len(_LATIN.findall(text))
    for code, pattern in _SCRIPTS:
        n = len(pattern.findall(text))
        # A non-Latin script dominates when it is a real share of the letters, not a quoted name.
        if n >= 4 and n >= 0.3 * (n + letters):
            return code
    words = _TOKEN.findall(text.lower())
    if len(words) < 3:
        return None
    scores = {code: sum(w in vocab for w in words) for code, vocab in _FUNCTION_WORDS.items()}
    best = max(scores, key=lambda c: scores[c])
    ranked = sorted(scores.values(), reverse=True)
    if "¿" in text or "¡" in text or "ñ" in text.lower():
        scores["es"] += 2
        best = max(scores, key=lambda c: scores[c])
        ranked = sorted(scores.values(), reverse=True)
    if ranked[0] == 0 or ranked[0] == ranked[1]:
        return None
    if ranked[0] == 1:
        # One function word is weak evidence; accept it only where the script agrees (plain
        # ASCII for English, accented letters for the others).
        return best if (best == "en") == text.isascii() else None
    return best


def same_language(naive_prompt: str, rewrite: str) -> bool:
    """False only when both languages can be told and they differ."""
    a, b = detect_language(naive_prompt), detect_language(rewrite)
    return a is None or b is None or a == b
