"""G19 (模型评估 / MetaWorld 基准测试): ``lerobot-eval`` on Meta-World -- waits for the TD-MPC / Meta-World issue.

In-process so the strict xfail sees the specific error: ``reach-v2`` is a task of our metaworld env
now, but Meta-World is not in CI's install (``lerobot[metaworld]`` pins mujoco 3.3.0, which pip cannot
resolve beside ``lerobot[sim]``'s 3.8.1), so building the env raises the ImportError naming the extra.
"""

import pytest
from tests.guide._guideb_fixtures import act_checkpoint, in_tmp_dir  # noqa: F401

from lerobot.scripts.eval import main as lerobot_eval


@pytest.mark.xfail(strict=True, raises=ImportError, reason="needs Meta-World (lerobot[metaworld]) and TD-MPC")
def test_g19_metaworld_eval(in_tmp_dir):  # noqa: F811
    # --- the block (the command's flags, run by the lerobot-eval entry point) ---
    # 在 MetaWorld 上评估
    lerobot_eval([
        f"--policy.path={act_checkpoint('pusht')}",  # SUBSTITUTION: a local checkpoint folder for lerobot/tdmpc_metaworld (no TD-MPC here)
        "--env.type=metaworld",
        "--env.task=reach-v2",
        "--eval.n_episodes=2",  # SUBSTITUTION: smaller size (20 episodes)
    ])
