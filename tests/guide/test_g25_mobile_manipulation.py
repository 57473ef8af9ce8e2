"""G25 (实际应用场景 / 场景1: 移动操作任务): record, train, evaluate, deploy from the command line.

Shell lines in a python fence (rule: split by language; every line is a command, run in a shell).
``--robot-type=aloha``: the robot is its simulated twin ``aloha_sim`` (an allowed substitution; this
project drives no real ALOHA). ``mobile_cabinet`` is in no simulator (see G17): step 3 uses a task
that exists. ``--training.num_steps`` and ``--eval.n_episodes`` are made small.
"""

import json

import pytest
from tests.guide._guideb_fixtures import in_tmp_dir, run_shell_command  # noqa: F401

CAMERA = "'--robot.cameras={\"top\": {\"width\": 64, \"height\": 48, \"fps\": 30}}'"


@pytest.mark.slow
def test_g25_mobile_manipulation(in_tmp_dir):  # noqa: F811
    # 1. 收集数据
    run_shell_command(f"""
lerobot-record \\
  --robot-type=aloha_sim \\
  --repo-id=my-username/aloha-mobile-cabinet \\
  --num-episodes=1 \\
  --episode-length=0.3 \
  --realtime=false {CAMERA}
""")  # SUBSTITUTION: twin aloha_sim for aloha, stepped in lockstep (--realtime=false); sizes: 1 episode of 0.3 s, a 48x64 top camera (50 episodes)

    # 2. 训练模型
    run_shell_command("""
lerobot-train \\
  --policy=act \\
  --dataset.repo_id=my-username/aloha-mobile-cabinet \\
  --training.num_steps=2 \\
  --training.batch_size=2 \\
  --output_dir=./models/aloha_cabinet
""")  # SUBSTITUTION: sizes: 2 steps of 2 samples (100000 steps)

    # 3. 评估
    run_shell_command("""
lerobot-eval \\
  --policy.path=./models/aloha_cabinet \\
  --env.type=aloha \\
  --env.task=AlohaTransferCube-v0 \\
  --env.image_size=[48,64] \\
  --eval.n_episodes=1 \\
  --eval.max_steps=3 \\
  --output_dir=./eval
""")  # SUBSTITUTION: task AlohaTransferCube-v0 for mobile_cabinet (G17); sizes: 48x64 camera, 1 episode of 3 steps; a named output folder
    assert json.loads((in_tmp_dir / "eval" / "eval_info.json").read_text())["aggregated"]["n_episodes"] == 1

    # 4. 部署
    result = run_shell_command(f"""
lerobot-deploy \\
  --policy.path=./models/aloha_cabinet \\
  --robot-type=aloha_sim \\
  --control-frequency=30 \\
  --duration_s=0.3 {CAMERA}
""")  # SUBSTITUTION: twin aloha_sim for aloha; sizes: runs 0.3 s (until Ctrl-C) with the 48x64 camera
    assert "Deployment finished" in result.stdout
