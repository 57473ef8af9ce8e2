"""G1 (guide line 122): install, then check the installation with ``lerobot-info``.

pip install lerobot
lerobot-info
"""

import shutil
import subprocess
import sys

import pytest
from tests.guide._guidea_helpers import REPO_ROOT, console_script


@pytest.mark.slow
def test_g01_install(tmp_path, guidea_cli_env):
    target, source = tmp_path / "site", tmp_path / "source"
    # A copy of the sources: building writes build/ and *.egg-info next to them, not into the checkout.
    shutil.copytree(REPO_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    # 基础安装
    # SUBSTITUTION: `pip install lerobot` installs this project; here from this checkout (the PyPI
    # name belongs to another project), offline, without dependencies, into a temporary folder.
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--quiet", "--target", str(target), str(source)],
        check=True, env=guidea_cli_env, timeout=300,
    )  # fmt: skip
    assert (target / "lerobot" / "scripts" / "info.py").is_file()
    env = {**guidea_cli_env, "PYTHONPATH": str(target)}  # the installed copy, not the checkout
    out = subprocess.run(
        [sys.executable, "-c", "import lerobot; print(lerobot.__file__)"],
        check=True, env=env, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert out.startswith(str(target))

    # 验�安装
    result = subprocess.run(
        [console_script("lerobot-info")], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "lerobot" in result.stdout and "torch" in result.stdout
