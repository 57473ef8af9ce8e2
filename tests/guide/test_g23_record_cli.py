"""G23 (数据收集 / 使用命令行收集数据): ``lerobot-record`` with the guide's flags.

``--robot-type=so100`` is the guide's name of ``so100_follower`` (tests/utils/test_registry_aliases.py
checks that it parses); here the robot is its simulated twin (an allowed substitution: no arm is
attached), so ``--control-mode=teleoperation`` alone must pick the twin's (simulated) leader arm.
``configs/robot/so100.yaml`` is the user's own file.
"""

import pytest
from tests.guide._guideb_fixtures import in_tmp_dir, run_shell_command  # noqa: F401

from lerobot.datasets.lerobot_dataset import LeRobotDataset


@pytest.mark.slow
def test_g23_record_cli(in_tmp_dir):  # noqa: F811
    # the user's own robot config file (a small camera keeps the test fast)
    (in_tmp_dir / "configs" / "robot").mkdir(parents=True)
    (in_tmp_dir / "configs" / "robot" / "so100.yaml").write_text(
        "cameras:\n  front: {width: 64, height: 48, fps: 30}\n"
    )

    # --- the block ---
    run_shell_command("""
# 使用内置脚本收集数据
lerobot-record \\
  --robot-type=so100_sim \\
  --robot-config=configs/robot/so100.yaml \\
  --repo-id=my-username/so100-pick-place \\
  --num-episodes=2 \\
  --episode-length=0.3 \\
  --fps=30 \\
  --control-mode=teleoperation \
  --realtime=false
""")  # SUBSTITUTION: the simulated twin so100_sim for so100, stepped in lockstep (--realtime=false: no camera thread to starve on a loaded test machine); sizes: 2 episodes of 0.3 s (100 of 500 s)

    ds = LeRobotDataset("my-username/so100-pick-place")
    assert ds.num_episodes == 2 and ds.fps == 30 and ds.meta.robot_type == "so100_sim"
    assert {"observation.state", "observation.images.front", "action"} <= set(ds.features)
