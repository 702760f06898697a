"""The CUDA code paths: the transformers optimizer backend, the HF downstream scorer and TRL
training (bf16) on a GPU. Skipped where torch sees no CUDA device (CI and the CPU dev boxes).

The weights are a randomly initialised tiny llama with SmolLM2's tokenizer: the GPU machines
this project is lent cannot fetch models, and the 98 MB SmolLM2 GGUF does not travel there. So
these tests check placement, dtype and CPU/GPU agreement, not rewrite quality (that is measured
on the real model in the CPU suite). The tokenizer comes from ``FIPO_TOKENIZER_DIR`` or, when the
SmolLM2 GGUF is installed, from its dequantized copy.

    FIPO_TOKENIZER_DIR=.gpu/tokenizer python -m pytest tests/integration/test_gpu.py
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the 'hf' extra is not installed")
pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def _tokenizer_dir() -> Path:
    env = os.environ.get("FIPO_TOKENIZER_DIR")
    if env:
        return Path(env)
    from fipo_middleware.models import resolve_base

    return Path(resolve_base("smollm2"))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    src = _tokenizer_dir()
    out = tmp_path_factory.mktemp("tiny-llama")
    for name in TOKENIZER_FILES:
        if (src / name).is_file():
            shutil.copy(src / name, out / name)
    tok = AutoTokenizer.from_pretrained(str(out))
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(str(out))
    return str(out)


def test_optimizer_backend_runs_on_the_gpu_in_bf16(tiny_dir: str) -> None:
    from fipo_middleware import DecodingParams, FIPOOptimizer

    opt = FIPOOptimizer.from_transformers(tiny_dir, decoding=DecodingParams(max_tokens=12),
                                          retries=2)
    backend = opt.backend
    param = next(backend.model.parameters())
    assert backend.device == "cuda" and param.is_cuda and param.dtype == torch.bfloat16
    # Random weights cannot keep a quoted phrase and a number word for word, so the guard
    # rejects the greedy try, both seeded resamples run on the GPU and are rejected too, and
    # the naive prompt is served with the greedy try's reasons.
    naive = 'Translate "bonjour tout le monde" into English in 4 words.'
    result = opt.optimize(naive)
    assert result.raw_output is not None
    assert result.used_fallback and result.attempts == 3, result
    assert result.optimized_prompt == naive and result.rejected_rewrite is not None
    assert result.guard_reasons
    assert result.fallback_reason == "guard_rejected: " + ", ".join(result.guard_reasons)
    assert opt.invoke({"prompt": "List three uses of copper.", "suffix": "\n-"}).endswith("\n-")


def test_gpu_and_cpu_decode_alike_and_sampling_is_seeded(tiny_dir: str) -> None:
    from fipo_middleware import DecodingParams
    from fipo_middleware.backends.transformers import TransformersBackend

    turns = [{"role": "user", "content": "Sort these words: pear apple fig"}]
    greedy = DecodingParams(max_tokens=16, repeat_penalty=1.0)
    gpu = TransformersBackend(tiny_dir, device="cuda", dtype="float32")
    cpu = TransformersBackend(tiny_dir, device="cpu", dtype="float32")
    assert gpu.generate(turns, greedy) == cpu.generate(turns, greedy)
    sampled = DecodingParams(max_tokens=16, temperature=0.9, seed=7)
    assert gpu.generate(turns, sampled) == gpu.generate(turns, sampled)


def test_hf_downstream_loglik_matches_the_cpu(tiny_dir: str) -> None:
    from evaluation.downstream import HFDownstream

    prompt, options = "Is the sky blue? Answer yes or no.", [" yes", " no", " maybe not"]
    gpu = HFDownstream(tiny_dir, device="cuda", dtype=torch.float32).loglik(prompt, options)
    cpu = HFDownstream(tiny_dir, device="cpu", dtype=torch.float32).loglik(prompt, options)
    assert [n for _, n in gpu] == [n for _, n in cpu]
    for (g, _), (c, _) in zip(gpu, cpu, strict=True):
        assert math.isfinite(g) and abs(g - c) < 1e-3 * max(1.0, abs(c))


@pytest.mark.slow
def test_sft_then_dpo_train_in_bf16_on_the_gpu(tmp_path: Path, tiny_dir: str) -> None:
    import json

    from transformers import TrainerCallback

    from training.config import PreferenceConfig, TrainConfig
    from training.train import train

    seen: dict[str, object] = {}

    class Probe(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            p = next(model.parameters())
            seen.update(device=p.device.type, bf16=args.bf16)

    sft_rows = [{"prompt": "Rewrite the prompt: add 2 and 3\n",
                 "completion": "Add 2 and 3; reply with the number only."}] * 4
    dpo_rows = [{"prompt": "Rewrite the prompt: add 2 and 3\n",
                 "chosen": "Add 2 and 3; reply with the number only.",
                 "rejected": "5"}] * 4
    for name, rows in (("sft", sft_rows), ("dpo", dpo_rows)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = dict(base=tiny_dir, max_steps=3, per_device_train_batch_size=2, max_length=64,
                  logging_steps=1, save_steps=100, learning_rate=1e-3, resume="never",
                  lora_r=8, lora_alpha=16, lora_dropout=0.0)
    sft = train(TrainConfig(method="sft", data=str(tmp_path / "sft.jsonl"),
                            output_dir=str(tmp_path / "sft"), **common), callbacks=[Probe()])
    assert seen == {"device": "cuda", "bf16": True}
    assert sft.global_step == 3 and all(math.isfinite(x) for x in sft.losses)
    seen.clear()
    dpo = train(PreferenceConfig(method="dpo", data=str(tmp_path / "dpo.jsonl"),
                                 output_dir=str(tmp_path / "dpo"),
                                 init_adapter=str(sft.final_dir), **common), callbacks=[Probe()])
    assert seen == {"device": "cuda", "bf16": True}
    # Reference = the SFT adapter: the first DPO loss is ln 2 up to bf16 rounding.
    assert abs(dpo.losses[0] - math.log(2)) < 2e-2, dpo.losses
    assert (dpo.final_dir / "adapter_config.json").is_file()
