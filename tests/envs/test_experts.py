"""Scripted experts solve their tasks and are deterministic given the seed."""

from __future__ import annotations

import numpy as np
import pytest

from lerobot.envs import make_env, make_expert


def rollout(name: str, seed: int, **overrides) -> tuple[bool, np.ndarray, np.ndarray]:
    env = make_env(name, **overrides)
    expert = make_expert(name, **{k: v for k, v in overrides.items() if k == "task"})
    try:
        obs, info = env.reset(seed=seed)
        expert.reset(env)
        states, actions, done = [], [], False
        while not done:
            action = expert.select_action(obs, env)
            obs, _, terminated, truncated, info = env.step(action)
            states.append(obs["observation.state"])
            actions.append(action)
            done = terminated or truncated
        return info["is_success"], np.array(states), np.array(actions)
    finally:
        env.close()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_so100_pick_cube_expert_succeeds(seed):
    success, states, actions = rollout("so100", seed, obs_type="state")
    assert success
    assert actions.shape[1] == 6 and len(states) < 150


def test_so100_pick_place_expert_succeeds():
    assert rollout("so100", 5, obs_type="state", task="pick_place")[0]


def test_seeded_rollouts_reproduce():
    _, states_a, actions_a = rollout("so100", 7, obs_type="state")
    _, states_b, actions_b = rollout("so100", 7, obs_type="state")
    _, states_c, _ = rollout("so100", 8, obs_type="state")
    np.testing.assert_array_equal(states_a, states_b)
    np.testing.assert_array_equal(actions_a, actions_b)
    assert states_a.shape != states_c.shape or not np.array_equal(states_a, states_c)


def test_aloha_transfer_cube_expert_succeeds():
    assert rollout("aloha", 0, obs_type="state", task="AlohaTransferCube-v0")[0]


def test_expert_for_unknown_type():
    with pytest.raises(ValueError, match="No scripted expert"):
        make_expert("libero")
