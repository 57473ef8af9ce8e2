"""Helpers of the guide-block tests G1..G15 (tests/guide/test_gNN_*.py), shared with conftest.py."""

import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def console_script(name: str) -> str:
    """A ``lerobot-*`` command installed next to this Python (the venv's ``bin``), as a user runs it."""
    path = Path(sys.executable).parent / name
    if not path.is_file():
        pytest.fail(f"{name} is not installed next to {sys.executable}; run `pip install -e .`.")
    return str(path)
