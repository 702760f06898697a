"""Typed errors. Every failure a caller can cause or hit is one of these, with a message
that names the offending input, file or setting."""

from __future__ import annotations


class FIPOError(Exception):
    """Base class of every fipo error."""


class InvalidPromptError(FIPOError, ValueError):
    """The naive prompt is empty, whitespace or malformed."""


class UnsupportedInputError(FIPOError, TypeError):
    """The runnable received a type it cannot optimize."""


class PromptTooLongError(FIPOError, ValueError):
    """The meta-prompt built from the input does not fit the optimizer's context window."""

    def __init__(self, n_tokens: int, limit: int) -> None:
        self.n_tokens = n_tokens
        self.limit = limit
        super().__init__(
            f"the optimizer input is {n_tokens} tokens but the optimizer model's context allows "
            f"{limit} (n_ctx minus max_tokens); shorten the prompt, mark long context as fixed "
            "(prefix/suffix) or raise n_ctx"
        )


class ModelLoadError(FIPOError, RuntimeError):
    """A model or adapter file is missing, unreadable or not a valid model."""


class BackendError(FIPOError, RuntimeError):
    """The optimizer backend failed while generating."""


class RewriteRejectedError(FIPOError, ValueError):
    """The guard rejected the optimizer's rewrite (only raised with on_failure="raise")."""

    def __init__(self, reasons: list[str], rewrite: str) -> None:
        self.reasons = reasons
        self.rewrite = rewrite
        super().__init__(f"rewrite rejected by the guard: {', '.join(reasons)}")


class PromptInjectionError(FIPOError, ValueError):
    """The naive prompt tries to give the optimizer instructions of its own."""


class DataFormatError(FIPOError, ValueError):
    """A data file has a bad line or field; the message names file:line and the field."""


class UnsupportedLanguageError(FIPOError, ValueError):
    """The naive prompt is in a language the optimizer is not trained to keep."""

    def __init__(self, language: str, supported: tuple[str, ...]) -> None:
        self.language = language
        self.supported = supported
        super().__init__(
            f"the naive prompt reads as {language!r}; this optimizer keeps only "
            f"{', '.join(supported)} prompts in their language, so it is passed through "
            "unoptimized (set languages=None to optimize it anyway)"
        )
