"""lerobot-eval: vectorised rollouts, eval_info.json schema, videos, plots, and clear feature errors."""

import json

import numpy as np
import pytest
import torch
from tests.scripts.point_reach import PointReachConfig, expert_action, record_point_dataset, tiny_act_config

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.envs import make_env
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.scripts.eval import FeatureMismatchError, eval_policy, main


@pytest.fixture(scope="module")
def point_dataset(tmp_path_factory):
    return record_point_dataset(tmp_path_factory.mktemp("point") / "ds")


@pytest.fixture(scope="module")
def act_checkpoint(point_dataset, tmp_path_factory):
    torch.manual_seed(0)
    policy = ACTPolicy(tiny_act_config(), dataset_stats=point_dataset.meta.stats)
    return policy.save_pretrained(tmp_path_factory.mktemp("ckpt") / "pretrained_model")


def test_eval_policy_vectorised_schema_and_videos(act_checkpoint, tmp_path):
    policy = ACTPolicy.from_pretrained(act_checkpoint)
    env = make_env(PointReachConfig(), n_envs=2)
    info = eval_policy(policy, env, n_episodes=3, seed=7, videos_dir=tmp_path / "videos", max_videos=2)
    env.close()
    assert [e["episode_ix"] for e in info["per_episode"]] == [0, 1, 2]
    assert [e["seed"] for e in info["per_episode"]] == [7, 8, 9]
    for e in info["per_episode"]:
        assert set(e) >= {"episode_ix", "seed", "sum_reward", "max_reward", "success"}
        assert 1 <= e["n_steps"] <= 20 and e["sum_reward"] <= e["max_reward"] <= 0
    agg = info["aggregated"]
    assert set(agg) >= {
        "pc_success",
        "avg_sum_reward",
        "avg_max_reward",
        "eval_s",
        "eval_ep_s",
        "inference_ms",
    }
    assert (
        0 < agg["inference_ms"] < 1e3 * agg["eval_s"]
    )  # the time the guide monitors, per select_action call
    assert agg["avg_sum_reward"] == pytest.approx(np.mean([e["sum_reward"] for e in info["per_episode"]]))
    assert len(info["overall"]["video_paths"]) == 2
    from lerobot.datasets.video import get_video_info

    first = info["per_episode"][0]
    assert get_video_info(tmp_path / "videos" / "eval_episode_0.mp4")["video.height"] == 32
    assert (tmp_path / "videos" / "eval_episode_0.mp4").stat().st_size > 0 and first["n_steps"] >= 1


def test_same_seeds_same_results_and_expert_succeeds(act_checkpoint):
    """Rollouts are reproducible from the seeds, and the task is solvable (the expert succeeds)."""
    policy = ACTPolicy.from_pretrained(act_checkpoint)
    a = eval_policy(policy, make_env(PointReachConfig(), n_envs=2), n_episodes=2, seed=3)
    b = eval_policy(policy, make_env(PointReachConfig()), n_episodes=2, seed=3)  # a single env too
    assert [e["sum_reward"] for e in a["per_episode"]] == pytest.approx(
        [e["sum_reward"] for e in b["per_episode"]]
    )

    env = make_env(PointReachConfig())
    successes = 0
    for seed in range(10):
        obs, _ = env.reset(seed=seed)
        for _ in range(20):
            obs, _, terminated, truncated, info = env.step(expert_action(obs))
            if terminated or truncated:
                break
        successes += info["is_success"]
    assert successes == 10


def test_cli_writes_eval_info_and_plot(act_checkpoint, tmp_path):
    out = tmp_path / "eval"
    argv = [
        f"--policy.path={act_checkpoint}",
        "--env.type=test_point_reach",
        "--env.task=reach",
        "--eval.n_episodes=3",
        "--eval.batch_size=2",
        "--eval.max_steps=10",
        "--eval.max_videos=1",
        f"--output_dir={out}",
        "--seed=100",
        "--device=cpu",
    ]
    assert main(argv) == 0
    info = json.loads((out / "eval_info.json").read_text())
    assert [e["seed"] for e in info["per_episode"]] == [100, 101, 102]
    assert all(e["n_steps"] <= 10 for e in info["per_episode"])
    assert 0.0 <= info["aggregated"]["pc_success"] <= 100.0
    assert (out / "success_rate.png").stat().st_size > 0
    assert sorted(p.name for p in (out / "videos").iterdir()) == ["eval_episode_0.mp4"]


def test_policy_env_feature_mismatch_names_what_is_missing(point_dataset):
    cfg = tiny_act_config(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (2,)),
            "observation.images.top": PolicyFeature(FeatureType.VISUAL, (3, 32, 32)),
        }
    )
    policy = ACTPolicy(cfg, dataset_stats=None)
    with pytest.raises(FeatureMismatchError, match=r"observation\.images\.top"):
        eval_policy(policy, make_env(PointReachConfig(), n_envs=1), n_episodes=1)


def test_cli_needs_a_policy_path():
    from lerobot.configs.parser import ConfigError

    with pytest.raises(ConfigError, match="--policy.path"):
        main(["--env.type=test_point_reach"])


def test_multi_task_env_reports_per_task_success(act_checkpoint):
    """A multi-task env (Meta-World lists, LIBERO suites) names each episode's task: eval groups by it."""
    import gymnasium as gym

    class NamedTasks(gym.Wrapper):
        def reset(self, *, seed=None, options=None):
            obs, info = self.env.reset(seed=seed, options=options)
            return obs, {**info, "task": ("even", "odd")[seed % 2]}

    policy = ACTPolicy.from_pretrained(act_checkpoint)
    env = gym.vector.SyncVectorEnv([lambda: NamedTasks(make_env(PointReachConfig())) for _ in range(2)])
    info = eval_policy(policy, env, n_episodes=4, seed=10)
    assert [e["task"] for e in info["per_episode"]] == ["even", "odd", "even", "odd"]
    per_task = info["aggregated"]["per_task"]
    assert {k: v["n_episodes"] for k, v in per_task.items()} == {"even": 2, "odd": 2}
    odd = [e["success"] for e in info["per_episode"] if e["task"] == "odd"]
    assert per_task["odd"]["pc_success"] == pytest.approx(100.0 * np.mean(odd))
