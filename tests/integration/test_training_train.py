"""Real TRL steps on SmolLM2 (the bundled GGUF, dequantized once by transformers), on the CPU:
SFT, DPO, IPO, one IPL round, a falling loss on a tiny overfit set, and resume after a kill.
Sequences are short and max_steps tiny so the module stays around a couple of minutes.
Bad training configs, rejected before any model loads: ``tests/unit/test_training_train.py``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from tests import FIXTURES
from tests.fakes import write_jsonl
from training.config import TrainConfig, config_class
from training.pop import load_pop
from training.train import resolve_base, train

pytestmark = pytest.mark.slow  # every test runs real TRL steps

SFT_ROWS = [
    {"prompt": "Rewrite the prompt: what is 12 times 7\n",
     "completion": "Compute 12 times 7 and reply with the number only."},
    {"prompt": "Rewrite the prompt: name a prime above 50\n",
     "completion": "Name one prime number greater than 50; reply with the number only."},
]
PREF_ROWS = [
    {"prompt": "Rewrite the prompt: what is 12 times 7\n",
     "chosen": "Compute 12 times 7 and reply with the number only.",
     "rejected": "What is multiplication?"},
    {"prompt": "Rewrite the prompt: translate 'good night' to French\n",
     "chosen": "Translate 'good night' into French; reply with the translation only.",
     "rejected": "Bonne nuit."},
]


@pytest.fixture(scope="session")
def base_dir(smollm2_path: Path) -> str:
    """The SmolLM2 GGUF as an HF directory (cached under ~/.cache/fipo, FIPO_CACHE)."""
    return resolve_base(str(smollm2_path))


def _cfg(tmp: Path, method: str, data: str, base: str, **kw) -> TrainConfig:
    defaults = dict(max_steps=2, per_device_train_batch_size=2, max_length=64,
                    logging_steps=1, save_steps=100, learning_rate=1e-3,
                    lr_scheduler_type="constant", resume="never", lora_r=8, lora_alpha=16)
    defaults.update(kw)
    return config_class(method)(method=method, data=data, output_dir=str(tmp / method),
                                base=base, **defaults)


def test_sft_loss_falls_on_a_tiny_overfit_set(tmp_path: Path, base_dir: str) -> None:
    data = write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS)
    res = train(_cfg(tmp_path, "sft", data, base_dir, max_steps=10))
    assert res.global_step == 10 and len(res.losses) == 10
    assert all(math.isfinite(x) for x in res.losses)
    assert min(res.losses[-3:]) < 0.5 * res.losses[0], res.losses
    assert (res.final_dir / "adapter_config.json").is_file()
    info = json.loads((res.output_dir / "fipo_train.json").read_text())
    assert info["global_step"] == 10 and info["use_lora"] is True


@pytest.mark.parametrize("method", ["dpo", "ipo"])
def test_dpo_and_ipo_steps_have_finite_losses(tmp_path: Path, base_dir: str,
                                              method: str) -> None:
    data = write_jsonl(tmp_path / "dpo.jsonl", PREF_ROWS)
    res = train(_cfg(tmp_path, method, data, base_dir, max_steps=2, learning_rate=5e-4))
    assert res.global_step == 2
    assert len(res.losses) == 2 and all(math.isfinite(x) for x in res.losses)
    if method == "dpo":
        assert abs(res.losses[0] - math.log(2)) < 1e-3  # sigmoid loss at the reference
    else:
        assert res.losses[0] > 1.0  # IPO: (margin - 1/(2 tau))^2 = 25 at the reference


def test_dpo_continues_an_sft_adapter_with_it_as_reference(tmp_path: Path,
                                                            base_dir: str) -> None:
    from safetensors.torch import load_file

    sft = train(_cfg(tmp_path, "sft", write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS), base_dir,
                     max_steps=3, lora_dropout=0.0))
    data = write_jsonl(tmp_path / "dpo.jsonl", PREF_ROWS)
    res = train(_cfg(tmp_path, "dpo", data, base_dir, max_steps=2, learning_rate=5e-4,
                     init_adapter=str(sft.final_dir)))
    # The SFT adapter moved the model off the base, so ln 2 at step 1 means the reference is
    # the SFT policy (TRL's frozen "ref" copy), not the base with adapters disabled.
    assert abs(res.losses[0] - math.log(2)) < 1e-3, res.losses
    before = load_file(str(sft.final_dir / "adapter_model.safetensors"))
    after = load_file(str(res.final_dir / "adapter_model.safetensors"))
    assert before.keys() == after.keys()
    assert any(not (before[k] == after[k]).all() for k in before)


def test_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path, base_dir: str) -> None:
    from transformers import TrainerCallback

    class Kill(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 3:
                raise KeyboardInterrupt("simulated kill")

    data = write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS)
    cfg = _cfg(tmp_path, "sft", data, base_dir, max_steps=5, save_steps=2, resume="auto")
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callbacks=[Kill()])
    out = Path(cfg.output_dir)
    assert (out / "checkpoint-2").is_dir() and not (out / "final").exists()
    res = train(cfg)
    assert res.resumed_from is not None and res.resumed_from.endswith("checkpoint-2")
    assert res.global_step == 5
    # log history = steps 1-2 restored from checkpoint-2 + steps 3-5 of the resumed run
    assert len(res.losses) == 5 and all(math.isfinite(x) for x in res.losses)


def test_one_ipl_round(tmp_path: Path, base_dir: str) -> None:
    cfg = _cfg(tmp_path, "ipl", str(FIXTURES / "pop_small.jsonl"), base_dir, max_steps=2,
               per_device_train_batch_size=1, max_length=320, ipl_rounds=1, ipl_limit=2,
               ipl_max_new_tokens=12, learning_rate=5e-4)
    res = train(cfg)
    (round1,) = res.extra["rounds"]
    assert round1["global_step"] == 2 and all(math.isfinite(x) for x in round1["losses"])
    assert round1["new_chosen"] + round1["kept"] == 2
    refreshed = load_pop(Path(cfg.output_dir) / "round-1" / "pop.jsonl")
    assert [r.id for r in refreshed] == ["p1", "p2"]
    assert all(r.metadata["ipl_round"] == 1 and r.rejected for r in refreshed)
    assert (res.final_dir / "adapter_config.json").is_file()
