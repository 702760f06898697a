"""Tests on real components: the SmolLM2 GGUF via llama.cpp, transformers, real TRL steps."""
