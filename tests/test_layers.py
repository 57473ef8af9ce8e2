"""The architecture contract (.importlinter at the repo root): layers import downward only.

import-linter reads the import graph of src/lerobot and checks the layers and the forbidden imports;
this test runs it as CI's ``make test`` does, so a stray upward import fails locally too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_imports() -> str:
    """The ``lint-imports`` next to this interpreter (the project's venv), else the one on PATH."""
    local = Path(sys.executable).with_name("lint-imports")
    found = str(local) if local.is_file() else shutil.which("lint-imports")
    if found is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]' brings it)")
    return found


def test_import_contract_is_kept():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [_lint_imports(), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
