"""G38 (故障排查 / 常见问题): reinstall torch for CUDA 11.8; install without dependencies.

All four lines install from package indexes (network). ``pip install lerobot`` would fetch another
project's package (G1's rule), so the test installs this checkout instead; ``requirements.txt`` is the
user's own file. Marked ``network``; it installs into a temporary folder, never into the running venv.
"""

import subprocess
import sys

import pytest
from tests.guide._guideb_fixtures import REPO_ROOT, in_tmp_dir  # noqa: F401


@pytest.mark.network
@pytest.mark.slow
def test_g38_install_troubleshooting(in_tmp_dir):  # noqa: F811
    target = ["--target", str(in_tmp_dir / "site")]  # SUBSTITUTION: a temporary folder, not the venv
    pip = [sys.executable, "-m", "pip", "install"]
    # CUDA 版本不匹配
    subprocess.run([*pip, "torch", "torchvision", "--index-url", "https://download.pytorch.org/whl/cu118", *target], check=True)

    # 依赖冲突
    subprocess.run([*pip, str(REPO_ROOT), "--no-deps", *target], check=True)  # SUBSTITUTION: this checkout for lerobot (G1)
    (in_tmp_dir / "requirements.txt").write_text("numpy\n")  # the user's own file
    subprocess.run([*pip, "-r", "requirements.txt", *target], check=True)
