"""fipo_middleware: local, private, model-agnostic prompt optimization (FIPO) for LangChain."""

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
)
from fipo_middleware.guard import GuardResult, check_rewrite, is_usable
from fipo_middleware.optimizer import CUSTOM_EVENT, FIPOOptimizer, OptimizationResult
from fipo_middleware.template import CaseType, Dialect, MetaPromptInput

__version__ = "0.1.0"

__all__ = [
    "CUSTOM_EVENT",
    "BackendError",
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
    "check_rewrite",
    "is_usable",
]
