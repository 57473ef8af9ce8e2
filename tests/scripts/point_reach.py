"""A small simulated task for the train / eval tests: move a point to a target in the plane.

State = the point's position, environment state = the target; a scripted expert solves it. Registered
as ``--env.type=test_point_reach``, so the CLIs run on it like on any sim.
"""

from dataclasses import dataclass
from typing import ClassVar

import gymnasium as gym
import numpy as np
from tests.policies.conftest import TINY_ACT

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.envs import make_env
from lerobot.envs.configs import ENV_CONFIGS, EnvConfig
from lerobot.envs.utils import dataset_observation
from lerobot.policies.act.configuration_act import ACTConfig

MAX_STEP = 0.2
FPS = 10


class PointReachEnv(gym.Env):
    """Move a point (actions are displacements, at most 0.2 per axis) to within 0.05 of a target."""

    metadata: ClassVar[dict] = {"render_modes": ["rgb_array"], "render_fps": FPS}

    def __init__(self, render_mode: str | None = "rgb_array"):
        self.render_mode = render_mode
        box = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.observation_space = gym.spaces.Dict({"agent_pos": box, "environment_state": box})
        self.action_space = gym.spaces.Box(-MAX_STEP, MAX_STEP, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.9, 0.9, 2).astype(np.float32)
        self.target = self.np_random.uniform(-0.9, 0.9, 2).astype(np.float32)
        return self._obs(), {"is_success": False}

    def _obs(self):
        return {"agent_pos": self.pos.copy(), "environment_state": self.target.copy()}

    def step(self, action):
        self.pos = np.clip(self.pos + np.clip(action, -MAX_STEP, MAX_STEP), -1, 1).astype(np.float32)
        dist = float(np.linalg.norm(self.target - self.pos))
        success = dist < 0.05
        return self._obs(), -dist, success, False, {"is_success": success}

    def render(self):
        img = np.zeros((32, 32, 3), dtype=np.uint8)
        for (x, y), channel in ((self.pos, 0), (self.target, 1)):
            img[int((y + 1) * 15.5), int((x + 1) * 15.5), channel] = 255
        return img


def expert_action(obs: dict) -> np.ndarray:
    """From the env's own observation keys (as ``make_env`` returns them)."""
    return np.clip(obs["environment_state"] - obs["agent_pos"], -MAX_STEP, MAX_STEP)


@ENV_CONFIGS.register("test_point_reach")
@dataclass(kw_only=True)
class PointReachConfig(EnvConfig):
    TASKS: ClassVar[tuple[str, ...]] = ("reach",)
    OBS_TYPES: ClassVar[tuple[str, ...]] = ("state",)
    task: str = "reach"
    fps: int = FPS
    episode_length: int = 20
    obs_type: str = "state"

    @property
    def features(self):
        vec = {"dtype": "float32", "shape": (2,), "names": ["x", "y"]}
        return {"observation.state": vec, "observation.environment_state": vec, "action": vec}

    def make_raw_env(self):
        return PointReachEnv(self.render_mode)


def record_point_dataset(root, n_episodes: int = 10, seed: int = 0) -> LeRobotDataset:
    """Expert demonstrations of the point task (no cameras: fast to write and read)."""
    env = make_env(PointReachConfig())
    ds = LeRobotDataset.create(
        "test/point_reach", fps=FPS, features=PointReachConfig().features, root=root, use_videos=False
    )
    for e in range(n_episodes):
        obs, _ = env.reset(seed=seed + e)
        for _ in range(env.spec.max_episode_steps if env.spec else 20):
            action = expert_action(obs).astype(np.float32)
            ds.add_frame({**dataset_observation(obs), "action": action}, task="reach the target")
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                break
        ds.save_episode()
    ds.finalize()
    env.close()
    return LeRobotDataset("test/point_reach", root=root)


def tiny_act_config(**overrides) -> ACTConfig:
    """The tests' ACT: 1 layer, 32 wide, chunks of 5, no cameras."""
    kwargs = dict(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (2,)),
            "observation.environment_state": PolicyFeature(FeatureType.ENV, (2,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
        **{**TINY_ACT, "latent_dim": 8},
    )
    kwargs.update(overrides)
    return ACTConfig(**kwargs)
