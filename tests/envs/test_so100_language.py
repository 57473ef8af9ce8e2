"""so100 ``pick_color``: two cubes, an instruction naming one; the expert, wrong-cube detection, and the
instruction's way into observations, policy batches and recorded datasets."""

from __future__ import annotations

import contextlib
from types import SimpleNamespace

import numpy as np
import pytest
from tests.datasets.validate import validate_v30

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.envs import make_env, make_expert, resolve_env_config
from lerobot.envs.recording import record_expert_dataset
from lerobot.envs.so100 import INSTRUCTIONS, MIN_CUBE_GAP
from lerobot.envs.utils import dataset_observation, preprocess_observation
from lerobot.scripts.record import parse_record_config, record
from lerobot.scripts.record_expert import main as record_expert_main

with contextlib.suppress(ImportError):  # before any EGL context: importing it after one segfaults (twin.py)
    import torchcodec.decoders  # noqa: F401

RED, BLUE = "pick up the red cube", "pick up the blue cube"


def other(color: str) -> str:
    return "blue" if color == "red" else "red"


def run(seed: int, pick_other: bool = False) -> tuple[str, bool, bool, bool]:
    """One expert episode: (instruction, success at the end, ever succeeded, wrong cube lifted).

    ``pick_other`` plans the expert on the cube the instruction does *not* name.
    """
    env = make_env("so100", task="pick_color", obs_type="state", render_mode=None)
    expert = make_expert("so100")
    try:
        obs, info = env.reset(seed=seed)
        sim = env.unwrapped
        instruction, target = obs["task"], sim.target_color
        assert info["wrong_cube_lifted"] is False
        if pick_other:
            sim.target_color = other(target)
        expert.reset(env)  # plans on sim.target_cube_pose
        sim.target_color = target
        ever, done = False, False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert.select_action(obs, env))
            assert obs["task"] == instruction
            ever |= info["is_success"]
            done = terminated or truncated
        return instruction, info["is_success"], ever, info["wrong_cube_lifted"]
    finally:
        env.close()


def test_expert_succeeds_for_both_instructions():
    results = [run(seed) for seed in range(4)]
    assert [r[0] for r in results] == [BLUE, RED, BLUE, BLUE]
    assert all(success and not wrong for _, success, _, wrong in results)


def test_lifting_the_other_cube_is_reported_and_never_a_success():
    for seed in (0, 1):  # blue, then red asked for
        _, success, ever, wrong = run(seed, pick_other=True)
        assert wrong and not success and not ever


def test_layout_and_instruction_follow_the_seed():
    env = make_env("so100", task="pick_color", obs_type="state", render_mode=None)
    sim = env.unwrapped
    seen = []
    for seed in [*range(12), 3]:
        obs, _ = env.reset(seed=seed)
        state = obs["environment_state"]
        assert state.shape == (14,) and obs["task"] in INSTRUCTIONS
        assert obs["task"] == f"pick up the {sim.target_color} cube" == sim.episode_instruction
        assert np.linalg.norm(state[0:2] - state[7:9]) >= MIN_CUBE_GAP
        target = state[0:7] if sim.target_color == "red" else state[7:14]
        np.testing.assert_allclose(sim.target_cube_pose, target, atol=1e-6)
        seen.append((obs["task"], state.copy()))
    env.close()
    assert seen[3][0] == seen[-1][0]
    np.testing.assert_array_equal(seen[3][1], seen[-1][1])
    assert len({task for task, _ in seen}) == 2
    cfg = resolve_env_config("so100", task="pick_color", obs_type="state")
    assert cfg.features["observation.environment_state"]["names"][7] == "blue_cube_x"
    assert cfg.text_observations and not resolve_env_config("so100").text_observations


def test_a_fixed_instruction_keeps_each_seeds_layout():
    """--env.instruction=red|blue asks for that cube every episode (50 held-out seeds per instruction)."""
    layouts = {}
    for instruction in ("random", "red", "blue"):
        env = make_env(
            "so100", task="pick_color", obs_type="state", render_mode=None, instruction=instruction
        )
        layouts[instruction] = []
        for seed in range(6):
            obs, info = env.reset(seed=seed)
            if instruction != "random":
                assert obs["task"] == info["task"] == f"pick up the {instruction} cube"
                np.testing.assert_allclose(
                    env.unwrapped.target_cube_pose,
                    obs["environment_state"][0:7] if instruction == "red" else obs["environment_state"][7:14],
                )
            layouts[instruction].append(obs["environment_state"].copy())
        env.close()
    np.testing.assert_array_equal(layouts["red"], layouts["random"])
    np.testing.assert_array_equal(layouts["blue"], layouts["random"])
    for bad in ({"task": "pick_color", "instruction": "green"}, {"task": "pick_cube", "instruction": "red"}):
        with pytest.raises(ValueError, match="instruction"):
            resolve_env_config("so100", **bad)


def test_instruction_reaches_vector_observations_and_the_policy_batch():
    env = make_env("so100", task="pick_color", n_envs=2, image_size=(32, 32))
    try:
        obs, _ = env.reset(seed=[0, 1])
        assert tuple(obs["task"]) == (BLUE, RED)
        batch = preprocess_observation(obs)
        assert batch["task"] == [BLUE, RED]
        assert batch["observation.images.front"].shape == (2, 3, 32, 32)
        assert batch["observation.state"].shape == (2, 6)
    finally:
        env.close()
    # Worker processes: gymnasium's shared memory would garble the text (state only: a forked worker
    # must not inherit this process's EGL contexts).
    env = make_env("so100", task="pick_color", n_envs=2, use_async=True, obs_type="state")
    try:
        assert tuple(env.reset(seed=[0, 1])[0]["task"]) == (BLUE, RED)
    finally:
        env.close()
    single = make_env("so100", task="pick_color", obs_type="state")
    obs, _ = single.reset(seed=1)
    assert preprocess_observation(obs)["task"] == [RED] and dataset_observation(obs)["task"] == RED
    single.close()


def test_record_expert_stores_each_episodes_instruction(tmp_path):
    root = tmp_path / "ds"
    assert record_expert_main(["--env.type=so100", "--env.task=pick_color", "--env.obs_type=state",
                               "--repo_id=me/color", f"--root={root}", "--num_episodes=2", "--first_seed=0",
                               "--video=false"]) == 0  # fmt: skip
    validate_v30(root)
    ds = LeRobotDataset("me/color", root=root)
    assert set(ds.meta.tasks.index) == {RED, BLUE}
    for episode, instruction in enumerate((BLUE, RED)):  # seeds 0 and 1
        ep = ds.get_episode(episode)
        assert {ds[i]["task"] for i in (ep.start, ep.stop - 1)} == {instruction}
    with pytest.raises(ValueError, match="draws its own instruction"):
        record_expert_dataset(resolve_env_config("so100", task="pick_color", obs_type="state"), "me/x",
                              tmp_path / "x", 1, task="pick the cube", use_videos=False)  # fmt: skip


def test_lerobot_record_with_the_expert_stores_the_scenes_instruction(tmp_path):
    root = tmp_path / "rec"
    record(parse_record_config([
        "--robot.type=so100_sim", "--robot.task=pick_color",
        '--robot.cameras={"front": {"width": 32, "height": 32, "fps": 30}}',
        "--teleop.type=expert", "--teleop.env=so100", "--control-mode=scripted",
        "--dataset.repo_id=me/color", f"--dataset.root={root}", "--dataset.num_episodes=2",
        "--dataset.episode_time_s=3.5", "--dataset.reset_time_s=0", "--realtime=false", "--dataset.video=false",
    ]))  # fmt: skip
    ds = LeRobotDataset("me/color", root=root)
    assert ds.num_episodes == 2 and set(ds.meta.tasks.index) == {RED, BLUE}
    assert ds[0]["task"] == BLUE and ds[len(ds) - 1]["task"] == RED  # episode i uses seed i


def test_a_policy_recording_on_the_twin_acts_on_each_episodes_instruction(tmp_path):
    """lerobot-record --control-mode=policy: the driving policy's frames carry the scene's instruction."""
    import torch

    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.datasets.feature_utils import hw_to_dataset_features
    from lerobot.robots.sim import SO100Sim
    from lerobot.scripts.deploy import PolicyDriver
    from lerobot.scripts.record import record_session

    class HoldStill:
        """Sends the measured joints back as targets and notes the task of every frame it gets."""

        config = SimpleNamespace(
            input_features={"observation.state": PolicyFeature(FeatureType.STATE, (6,))},
            output_features={"action": PolicyFeature(FeatureType.ACTION, (6,))},
        )
        tasks: list[str] = []

        def reset(self) -> None: ...

        def select_action(self, frame: dict) -> dict:
            self.tasks.append(frame.get("task"))
            return {"action": torch.as_tensor(frame["observation.state"]).reshape(1, -1)}

    robot = SO100Sim(task="pick_color", realtime=False)
    features = hw_to_dataset_features(robot.observation_features, robot.action_features, False)
    dataset = LeRobotDataset.create(
        "me/policy", fps=30, features=features, root=tmp_path / "p", use_videos=False
    )
    policy = HoldStill()
    record_session(robot, PolicyDriver(policy, robot, "pick the cube"), dataset, 2, episode_time_s=0.1)
    assert policy.tasks == [BLUE] * 3 + [RED] * 3
    assert set(LeRobotDataset("me/policy", root=tmp_path / "p").meta.tasks.index) == {RED, BLUE}


def test_state_vector_puts_both_cubes_poses_after_the_joints():
    """``--env.obs_type=state_vector``: one ``agent_pos`` = joints then red and blue cube poses, for
    policies that read ``observation.state`` only; the same numbers as ``state``'s two keys."""
    split, joined = (
        make_env("so100", task="pick_color", obs_type=t, render_mode=None) for t in ("state", "state_vector")
    )
    try:
        a, _ = split.reset(seed=3)
        b, _ = joined.reset(seed=3)
        assert set(b) == {"agent_pos", "task"} and b["task"] == a["task"]
        np.testing.assert_array_equal(
            b["agent_pos"], np.concatenate([a["agent_pos"], a["environment_state"]])
        )
        assert joined.observation_space["agent_pos"].shape == (20,)
        names = resolve_env_config("so100", task="pick_color", obs_type="state_vector").features[
            "observation.state"
        ]
        assert names["names"][6:8] == ["red_cube_x", "red_cube_y"] and names["names"][13] == "blue_cube_x"
    finally:
        split.close()
        joined.close()
