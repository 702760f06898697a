"""``fipo optimize`` through the installed console script, on input it rejects before loading
any model: clear errors naming the file and line, exit status 2, no traceback. (The console
script runs under the unit tier's import guard too; see ``tests/unit/conftest.py``.)"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FIPO = shutil.which("fipo") or str(Path(sys.executable).parent / "fipo")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FIPO, *args], capture_output=True, text=True, input=stdin, timeout=600, check=False
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json}\n", "in.jsonl:1: invalid JSON"),
        ('{"id": 1, "prompt": ""}\n', "in.jsonl:1: field 'prompt' missing or empty"),
    ],
)
def test_bad_input_file_names_file_and_line(tmp_path, content, message):
    src = tmp_path / "in.jsonl"
    src.write_text(content)
    proc = run("optimize", "--input", str(src), "--output", str(tmp_path / "o.jsonl"))
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_bad_model_path_is_a_clear_error(tmp_path):
    proc = run("optimize", "hello there", "--model", str(tmp_path / "missing.gguf"))
    assert proc.returncode == 2
    assert "model file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_empty_prompt_is_a_clear_error():
    # rejected before any model loads (the unit tier forbids llama_cpp in subprocesses too)
    proc = run("optimize", "   ")
    assert proc.returncode == 2 and "empty" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("flags", "verify"),
    [((), True), (("--no-adapter",), False), (("--no-adapter", "--verify"), True),
     (("--no-verify",), False)],
)
def test_verify_default_follows_the_adapter(monkeypatch, flags, verify):
    # Control flow only: which default() the flags ask for (the verifier's margin is calibrated
    # on the adapter's rewrites, so the untuned base is unverified unless asked, as spec `base`).
    from fipo_middleware import cli
    from fipo_middleware.optimizer import FIPOOptimizer

    seen: dict = {}
    monkeypatch.setattr(FIPOOptimizer, "default", classmethod(
        lambda cls, **kw: seen.update(kw)))
    cli._build_optimizer(cli.build_parser().parse_args(["optimize", "hi", *flags]))
    assert seen["verify"] is verify
    assert seen["use_adapter"] is ("--no-adapter" not in flags)
