"""Export of a real LoRA run: GGUF LoRA loads in llama.cpp and serves through
``FIPOOptimizer.from_gguf(base, lora_path=...)``; the full f16 GGUF and the LoRA over an f16
base reproduce the HF model's greedy outputs exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.config import TrainConfig
from training.export import VERIFY_PROMPTS, export, hf_to_gguf
from training.train import resolve_base, train

pytestmark = pytest.mark.slow  # trains, converts to GGUF, compares

ROWS = [
    {"prompt": "Rewrite the prompt: what is 12 times 7\n",
     "completion": "Compute 12 times 7 and reply with the number only."},
    {"prompt": "Rewrite the prompt: list three colors\n",
     "completion": "List exactly three colors, one per line."},
]


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory: pytest.TempPathFactory, smollm2_path: Path) -> Path:
    tmp = tmp_path_factory.mktemp("export-run")
    data = tmp / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    res = train(TrainConfig(method="sft", data=str(data), output_dir=str(tmp / "run"),
                            base=str(smollm2_path), max_steps=3, per_device_train_batch_size=2,
                            max_length=64, learning_rate=2e-3, lora_r=8, lora_alpha=16,
                            logging_steps=1, resume="never"))
    return res.output_dir


def test_export_lora_and_f16_gguf_match_hf(tmp_path: Path, lora_run: Path,
                                           smollm2_path: Path) -> None:
    # An f16 GGUF of the base isolates the LoRA conversion (q/k permutation included) from
    # quantization error: llama.cpp must then agree with PEFT token for token.
    base_f16 = hf_to_gguf(resolve_base(str(smollm2_path)), tmp_path / "base-f16.gguf", "f16")
    res = export(lora_run, tmp_path / "exp", formats=("lora", "f16"), lora_base_gguf=base_f16,
                 max_tokens=10, prompts=VERIFY_PROMPTS[:3])
    assert Path(res.files["lora"]).is_file() and Path(res.files["f16"]).is_file()
    assert (Path(res.files["hf"]) / "model.safetensors").is_file()
    assert res.verification["lora"]["match_rate"] == 1.0, res.verification["lora"]["pairs"]
    assert res.verification["f16"]["match_rate"] == 1.0, res.verification["f16"]["pairs"]
    assert json.loads((tmp_path / "exp" / "export.json").read_text())["files"]["lora"]

    # The adapter over the shipped Q4_1 base, through the middleware's own loader.
    from fipo_middleware import DecodingParams, FIPOOptimizer

    opt = FIPOOptimizer.from_gguf(smollm2_path, lora_path=res.files["lora"], n_threads=2,
                                  decoding=DecodingParams(max_tokens=8))
    assert "adapter.gguf" in opt.backend.identity
    result = opt.optimize("what is 12 times 7")
    assert result.naive_prompt == "what is 12 times 7" and result.raw_output is not None
