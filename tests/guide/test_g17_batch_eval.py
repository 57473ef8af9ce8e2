"""G17 (模型评估 / 批量评估): ``lerobot-eval`` of an ACT checkpoint in the ALOHA simulation.

``mobile_cabinet`` is a real-robot dataset of the ALOHA mobile base, not a simulated task: no simulator
(gym-aloha, LeRobot's or ours) has it. The command as written ends in one clear error that lists the
tasks we have; the test checks that, then runs it with the smallest substitution, a task that exists.
"""

import json

import pytest
from tests.guide._guideb_fixtures import act_checkpoint, in_tmp_dir, run_shell_command  # noqa: F401


@pytest.mark.slow
def test_g17_batch_eval(in_tmp_dir):  # noqa: F811
    checkpoint = act_checkpoint("aloha")
    # --- the block, as written (Hub id -> local folder) ---
    as_written = run_shell_command(f"""
# 在仿真环境中评估策略
lerobot-eval \\
  --policy.path={checkpoint} \\
  --env.type=aloha \\
  --env.task=mobile_cabinet \\
  --eval.n_episodes=50 \\
  --eval.max_steps=500 \\
  --output_dir=./eval_results
""", check=False)  # SUBSTITUTION: --policy.path: a local checkpoint folder for lerobot/act_aloha_mobile_cabinet
    assert as_written.returncode == 1
    assert "Unknown task 'mobile_cabinet'" in as_written.stderr and "AlohaTransferCube-v0" in as_written.stderr

    # --- the block with a task that exists ---
    run_shell_command(f"""
lerobot-eval \\
  --policy.path={checkpoint} \\
  --env.type=aloha \\
  --env.task=AlohaTransferCube-v0 \\
  --env.image_size=[48,64] \\
  --eval.n_episodes=2 \\
  --eval.max_steps=3 \\
  --output_dir=./eval_results
""")  # SUBSTITUTION: task AlohaTransferCube-v0 (mobile_cabinet exists in no simulator); sizes: 48x64 camera, 2 episodes of 3 steps
    info = json.loads((in_tmp_dir / "eval_results" / "eval_info.json").read_text())
    assert info["aggregated"]["n_episodes"] == 2 and info["aggregated"]["inference_ms"] > 0
    assert (in_tmp_dir / "eval_results" / "success_rate.png").is_file()
