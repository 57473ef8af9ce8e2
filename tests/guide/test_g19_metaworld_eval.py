"""G19 (模型评估 / MetaWorld 基准测试): ``lerobot-eval`` of a TD-MPC on Meta-World's ``reach-v2``.

Meta-World runs beside ``[sim]``'s MuJoCo (``make install`` adds it with ``--no-deps``, see
docs/benchmark_envs.md); ``reach-v2`` is served by Meta-World 3's ``reach-v3``. In-process, so a failure
shows its own traceback.
"""

from tests.guide._guideb_fixtures import in_tmp_dir, tdmpc_metaworld_checkpoint  # noqa: F401

from lerobot.scripts.eval import main as lerobot_eval


def test_g19_metaworld_eval(in_tmp_dir):  # noqa: F811
    # --- the block (the command's flags, run by the lerobot-eval entry point) ---
    # 在 MetaWorld 上评估
    lerobot_eval([
        f"--policy.path={tdmpc_metaworld_checkpoint()}",  # SUBSTITUTION: a local (untrained, tiny) TD-MPC checkpoint folder for lerobot/tdmpc_metaworld
        "--env.type=metaworld",
        "--env.task=reach-v2",
        "--eval.n_episodes=2",  # SUBSTITUTION: smaller size (20 episodes)
        "--env.image_size=[64, 64]",  # SUBSTITUTION: smaller resolution (480x480)
        "--env.episode_length=20",  # SUBSTITUTION: shorter episodes (400 steps)
    ])
    # --- end of block ---
    info = (in_tmp_dir / "outputs").rglob("eval_info.json")
    assert next(info, None) is not None, "lerobot-eval wrote no eval_info.json"
