"""The unit tier is model-free, provably. Automatically, for every test under ``tests/unit``:
while its module is imported, while its fixtures are set up (session-scoped ones included: a
model fixture from ``tests/conftest.py`` fails here) and while it runs, importing llama.cpp,
torch, transformers, TRL or PEFT raises ``ModelRuntimeImportError``, and an attempt the code
swallowed still fails the test. Modules of those packages that integration tests already
imported in the same run are hidden meanwhile, and a subprocess the test starts (the ``fipo``
console script) is guarded the same way, through ``_model_free/sitecustomize.py``.

The shared fixtures (``shared_data``) come from ``tests/conftest.py``."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.unit._model_free.sitecustomize import BLOCKED, ENV, ModelFreeFinder

GUARD_DIR = Path(__file__).resolve().parent / "_model_free"


def _blocked(name: str) -> bool:
    return name.partition(".")[0] in BLOCKED


@contextmanager
def model_free() -> Iterator[ModelFreeFinder]:
    """Blocks model-runtime imports, here and in subprocesses, for the duration."""
    finder = ModelFreeFinder()
    # Loaded earlier in this run (by integration tests): out of sys.modules, a new ``import``
    # of them reaches the finder and fails as well.
    hidden = {name: mod for name, mod in sys.modules.items() if _blocked(name)}
    for name in hidden:
        del sys.modules[name]
    env = {k: os.environ.get(k) for k in (ENV, "PYTHONPATH")}
    os.environ[ENV] = "1"
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(GUARD_DIR),
                                                             env["PYTHONPATH"]]))
    sys.meta_path.insert(0, finder)
    try:
        yield finder
    finally:
        sys.meta_path.remove(finder)
        for key, value in env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name in [n for n in sys.modules if _blocked(n)]:
            del sys.modules[name]
        sys.modules.update(hidden)


def _check(finder: ModelFreeFinder, what: str) -> None:
    if finder.attempts:
        pytest.fail(f"{what} imported {sorted(set(finder.attempts))} (and swallowed the "
                    f"ImportError); tests/unit must stay model-free", pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector):
    # A unit test module's own imports.
    if not isinstance(collector, pytest.Module):
        return (yield)
    with model_free():
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    # Fixture setup, whatever the fixture's scope. (Teardown is left alone: it may finalize
    # session fixtures that integration tests created.)
    with model_free() as finder:
        result = yield
    _check(finder, "setting up this unit test")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with model_free() as finder:
        result = yield
    _check(finder, "this unit test")
    return result
