"""lerobot-eval on a language task: the instruction reaches the policy's batch, eval_info.json reports how
often the wrong cube was lifted, every episode's seed, and a 95% (Wilson) interval on each rate, overall
and per instruction."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.envs import make_env, make_expert, resolve_env_config
from lerobot.scripts.eval import eval_policy, wilson_interval_pc


class ExpertPolicy:
    """The scripted expert in a policy's seat, one per env of a ``SyncVectorEnv`` it reads the scenes of.

    ``pick_other`` plans on the cube the instruction does not name: a policy that ignores language.
    """

    def __init__(self, env, pick_other: bool = False):
        self.env, self.pick_other = env, pick_other
        self.config = SimpleNamespace(
            input_features={"observation.state": PolicyFeature(FeatureType.STATE, (6,))},
            action_feature=PolicyFeature(FeatureType.ACTION, (6,)),
        )
        self.batches_tasks: list = []
        self.experts: list | None = None

    def reset(self) -> None:
        self.experts = None

    def select_action(self, batch: dict) -> dict:
        if self.experts is None:  # the first step of an episode batch: the scenes are reset
            self.experts = [make_expert("so100") for _ in self.env.envs]
            for expert, env in zip(self.experts, self.env.envs):
                sim = env.unwrapped
                target = sim.target_color
                sim.target_color = ("blue" if target == "red" else "red") if self.pick_other else target
                expert.reset(env)
                sim.target_color = target
            self.batches_tasks.append(batch.get("task"))
        actions = [expert.select_action(None, env) for expert, env in zip(self.experts, self.env.envs)]
        return {"action": torch.as_tensor(np.stack(actions))}


def evaluate(task: str, pick_other: bool, n_episodes: int = 2) -> tuple[dict, ExpertPolicy]:
    cfg = resolve_env_config("so100", task=task, obs_type="state")
    env = make_env(cfg, n_envs=2)
    policy = ExpertPolicy(env, pick_other)
    try:
        return eval_policy(policy, env, n_episodes=n_episodes, seed=0), policy
    finally:
        env.close()


def test_eval_reports_the_wrong_cube_rate_and_the_policy_sees_the_instruction():
    good, policy = evaluate("pick_color", pick_other=False)
    assert policy.batches_tasks == [["pick up the blue cube", "pick up the red cube"]]  # seeds 0 and 1
    assert [(e["seed"], e["success"], e["wrong_cube_lifted"]) for e in good["per_episode"]] == [
        (0, True, False),
        (1, True, False),
    ]
    agg = good["aggregated"]
    assert agg["pc_success"] == 100 and agg["pc_wrong_cube"] == 0
    assert agg["pc_success_ci95"] == pytest.approx(wilson_interval_pc(2, 2))
    assert agg["pc_wrong_cube_ci95"] == pytest.approx(wilson_interval_pc(0, 2))
    assert [e["task"] for e in good["per_episode"]] == ["pick up the blue cube", "pick up the red cube"]
    per_instruction = agg["per_task"]["pick up the red cube"]
    assert per_instruction["n_episodes"] == 1 and per_instruction["pc_wrong_cube"] == 0
    assert per_instruction["pc_success_ci95"] == pytest.approx(wilson_interval_pc(1, 1))

    bad, _ = evaluate("pick_color", pick_other=True)
    assert [(e["success"], e["wrong_cube_lifted"]) for e in bad["per_episode"]] == [(False, True)] * 2
    assert bad["aggregated"]["pc_success"] == 0 and bad["aggregated"]["pc_wrong_cube"] == 100
    assert bad["aggregated"]["per_task"]["pick up the blue cube"]["pc_wrong_cube"] == 100


def test_tasks_without_a_wrong_cube_report_no_such_rate():
    info, policy = evaluate("pick_cube", pick_other=False, n_episodes=1)
    assert policy.batches_tasks == [None]  # pick_cube has no instruction in its observations
    assert info["per_episode"][0]["success"] and "wrong_cube_lifted" not in info["per_episode"][0]
    assert "pc_wrong_cube" not in info["aggregated"] and "pc_success_ci95" in info["aggregated"]
    assert "per_task" not in info["aggregated"]


def test_wilson_interval():
    # Closed forms at the ends: 0/n -> [0, z^2 / (n + z^2)], n/n -> [n / (n + z^2), 1]; 5/10 by hand.
    assert wilson_interval_pc(0, 10) == pytest.approx([0.0, 27.75], abs=0.01)
    assert wilson_interval_pc(5, 10) == pytest.approx([23.66, 76.34], abs=0.01)
    assert wilson_interval_pc(50, 50) == pytest.approx([92.87, 100.0], abs=0.01)
    low, high = wilson_interval_pc(25, 50)
    assert high - 50 == pytest.approx(50 - low) and 13 < high - 50 < 14  # the "+-13 points" at 50
    with pytest.raises(ValueError, match="at least one episode"):
        wilson_interval_pc(0, 0)
