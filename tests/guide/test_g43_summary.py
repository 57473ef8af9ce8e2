"""G43 (总结): install, ``lerobot-info``, a first ``lerobot-train``.

``pip install lerobot``: rule as G1 (the PyPI name is another project's; G1's test installs this
checkout). The comment lines (Discord, GitHub) are not commands. The rest runs.
"""

import pytest
from tests.guide._guideb_fixtures import in_tmp_dir, pusht_dataset, run_shell_command  # noqa: F401


@pytest.mark.slow
def test_g43_summary(in_tmp_dir):  # noqa: F811
    # 安装 LeRobot
    # pip install lerobot   -- not run here: see G1's rule (tests/guide/README.md)

    # 探索数据集
    info = run_shell_command("lerobot-info")
    assert "lerobot" in info.stdout

    # 训练您的第一个模型
    run_shell_command(
        f"lerobot-train --policy=act --dataset.repo_id={pusht_dataset()}"  # SUBSTITUTION: local folder for lerobot/pusht
        " --training.num_steps=2 --training.batch_size=4 --output_dir=./first"  # SUBSTITUTION: 2 steps of 4, a named folder
    )
    assert (in_tmp_dir / "first" / "checkpoints" / "last" / "pretrained_model" / "config.json").is_file()

    # 加入社区
    # Discord: discord.gg/lerobot
    # GitHub: github.com/huggingface/lerobot
