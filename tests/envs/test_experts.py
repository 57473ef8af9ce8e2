"""Scripted experts solve their tasks and are deterministic given the seed."""

from __future__ import annotations

import numpy as np
import pytest
import shapely.geometry as sg

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
            states.append(obs["agent_pos"])
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


def test_aloha_insertion_expert_succeeds():
    assert rollout("aloha", 1000, obs_type="state", task="AlohaInsertion-v0")[0]


def test_pusht_expert_succeeds_and_reproduces():
    success, states, actions = rollout("pusht", 1015, obs_type="state")
    assert success and len(actions) < 300
    _, states_b, actions_b = rollout("pusht", 1015, obs_type="state")
    np.testing.assert_array_equal(actions, actions_b)
    np.testing.assert_array_equal(states, states_b)


def test_pusht_planner_predicts_the_env_exactly():
    """The planner's replica physics must match gym-pusht, or its checked pushes would miss."""
    from lerobot.envs.pusht_planner import PushTPlanner

    env = make_env("pusht", obs_type="state")
    env.reset(seed=3)
    sim = env.unwrapped
    planner = PushTPlanner(sim)
    agent, velocity = np.array(sim.agent.position), np.array(sim.agent.velocity)
    pose = np.array([*sim.block.position, sim.block.angle])
    com = pose[:2] + np.array([[np.cos(pose[2]), -np.sin(pose[2])], [np.sin(pose[2]), np.cos(pose[2])]]) @ [
        0,
        45,
    ]
    # Drive the agent straight through the block's centre so the push really moves it.
    targets = [agent + (com - agent) * k / 6 for k in range(1, 12)]
    predicted = planner.simulate(agent, velocity, pose, targets)
    for target in targets:
        env.step(target)
    actual = np.array([*sim.block.position, sim.block.angle])
    assert np.linalg.norm(actual[:2] - pose[:2]) > 5  # the block was pushed
    np.testing.assert_allclose(predicted, actual, atol=1e-6)
    env.close()


def test_pusht_paths_go_around_the_block():
    from lerobot.envs.pusht_planner import NAV_CLEARANCE, PushTPlanner

    env = make_env("pusht", obs_type="state")
    env.reset(seed=0)
    planner = PushTPlanner(env.unwrapped)
    pose = np.array([256.0, 256.0, 0.3])
    agent, goal = np.array([256.0, 140.0]), np.array([256.0, 420.0])  # opposite sides of the T
    path, length = planner.roadmap(agent, pose).path(goal)
    points = np.vstack([agent, *path])
    assert length > np.linalg.norm(goal - agent) and np.allclose(path[-1], goal)
    obstacle = planner._obstacle(pose, NAV_CLEARANCE - 0.5)
    assert not sg.LineString(points).intersects(obstacle)
    env.close()


def test_so100_reach_has_a_dense_reward_the_expert_solves():
    """``reach`` rewards minus the distance to the point above the cube: random actions stay far, the
    scripted expert gets there and holds it; the episode runs to its end (reach never ends early)."""
    from lerobot.envs import make_env

    env = make_env("so100", task="reach", obs_type="state")
    obs, _ = env.reset(seed=0)
    _, reward, *_ = env.step(obs["agent_pos"])  # hold the rest pose
    assert -0.5 < reward < -0.05
    success, states, _ = rollout("so100", 0, obs_type="state", task="reach")
    assert success and len(states) == 100
