"""The fipo test suite: ``unit`` (pure core, no model) and ``integration`` (real models).

Paths every test module shares, so none depends on how deep it sits under ``tests/``."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
"""Small data files both tiers read (POP records, seeds, importer inputs)."""
