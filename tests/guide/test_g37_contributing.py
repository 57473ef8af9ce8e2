"""G37 (社区与资源 / 贡献指南): fork, branch, install the dev extra, test, push.

``git clone`` / ``git push`` of GitHub and ``pip install -e ".[dev]"`` (which resolves dependencies
from the index) need the network: marked ``network`` (rule in README). ``pytest tests/`` is the
whole suite; the test runs one quick file of it instead (the smallest substitution).
"""

import subprocess
import sys

import pytest
from tests.guide._guideb_fixtures import REPO_ROOT, in_tmp_dir  # noqa: F401


def sh(command, **kwargs):
    return subprocess.run(command, shell=True, check=True, capture_output=True, text=True, **kwargs)


@pytest.mark.network
@pytest.mark.slow
def test_g37_contributing(in_tmp_dir):  # noqa: F811
    # 1. Fork 仓库
    sh("git clone https://github.com/your-username/lerobot.git")
    # cd lerobot
    repo = in_tmp_dir / "lerobot"

    # 2. 创建分支
    sh("git checkout -b feature/my-new-feature", cwd=repo)

    # 3. 安装开发依赖
    sh(f'{sys.executable} -m pip install -e ".[dev]"', cwd=repo)
    sh("pre-commit install", cwd=repo)

    # 4. 进行更改并测试
    sh(f"{sys.executable} -m pytest tests/utils/test_registry_aliases.py", cwd=REPO_ROOT)  # SUBSTITUTION: one quick file for tests/

    # 5. 提交 Pull Request
    sh("git push origin feature/my-new-feature", cwd=repo)
