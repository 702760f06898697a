"""Benchmarks share the test suite's fixtures (real SmolLM2 GGUF, llama.cpp)."""

import importlib.util
from pathlib import Path

_path = Path(__file__).resolve().parents[1] / "tests" / "conftest.py"
_spec = importlib.util.spec_from_file_location("fipo_test_fixtures", _path)
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
globals().update({k: v for k, v in vars(_mod).items() if not k.startswith("_")})
