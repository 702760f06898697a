"""The unit tier's import guard: no model runtime may be imported.

``tests/unit/conftest.py`` installs ``ModelFreeFinder`` around every unit test and the import
of every unit test module, and puts this folder first on ``PYTHONPATH`` so that a subprocess a
unit test starts (the ``fipo`` console script) runs this file as its ``sitecustomize`` and is
guarded too. Standard library only: it runs before anything else in that subprocess.
"""

from __future__ import annotations

import os
import sys
from importlib.abc import MetaPathFinder

BLOCKED = ("llama_cpp", "torch", "transformers", "trl", "peft")
"""Top-level packages of the model runtimes (llama.cpp, torch and the HF stack on it)."""

ENV = "FIPO_UNIT_MODEL_FREE"


class ModelRuntimeImportError(ImportError):
    """A unit test (or the code it runs) imported a model runtime."""


class ModelFreeFinder(MetaPathFinder):
    """Refuses every import of a ``BLOCKED`` package, loudly, and remembers each attempt (so a
    caller that swallows the ImportError is still caught)."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if fullname.partition(".")[0] in BLOCKED:
            self.attempts.append(fullname)
            raise ModelRuntimeImportError(
                f"import of {fullname!r} in the unit tier: tests/unit is model-free (no "
                f"llama.cpp, no torch/transformers/TRL); a test that needs a model belongs in "
                f"tests/integration"
            )
        return None


if os.environ.get(ENV) == "1":  # a subprocess started by a unit test
    sys.meta_path.insert(0, ModelFreeFinder())
