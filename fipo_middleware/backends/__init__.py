"""Optimizer backends: llama.cpp (GGUF, CPU default), HF transformers, any LangChain model."""

from fipo_middleware.backends.base import ChatTurns, DecodingParams, MetaPrompt, OptimizerBackend

__all__ = ["ChatTurns", "DecodingParams", "MetaPrompt", "OptimizerBackend"]
