"""fipo_middleware: local, private, model-agnostic prompt optimization (FIPO) for LangChain."""

from importlib.metadata import PackageNotFoundError, version

from fipo_middleware.backends.base import DecodingParams, OptimizerBackend
from fipo_middleware.errors import (
    BackendError,
    DataFormatError,
    FIPOError,
    InvalidPromptError,
    ModelLoadError,
    PromptInjectionError,
    PromptTooLongError,
    RewriteRejectedError,
    UnsupportedInputError,
    UnsupportedLanguageError,
)
from fipo_middleware.guard import GuardResult, check_rewrite, is_usable
from fipo_middleware.optimizer import CUSTOM_EVENT, Candidate, FIPOOptimizer, OptimizationResult
from fipo_middleware.template import CaseType, Dialect, MetaPromptInput

try:
    __version__ = version("fipo")  # one source of truth: pyproject.toml
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CUSTOM_EVENT",
    "BackendError",
    "Candidate",
    "CaseType",
    "DataFormatError",
    "DecodingParams",
    "Dialect",
    "FIPOError",
    "FIPOOptimizer",
    "GuardResult",
    "InvalidPromptError",
    "MetaPromptInput",
    "ModelLoadError",
    "OptimizationResult",
    "OptimizerBackend",
    "PromptInjectionError",
    "PromptTooLongError",
    "RewriteRejectedError",
    "UnsupportedInputError",
    "UnsupportedLanguageError",
    "check_rewrite",
    "is_usable",
]
