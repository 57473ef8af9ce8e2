"""``make_env``: a config (or name) -> a Gymnasium env whose observations carry dataset feature names.

This module is the one place where raw simulator observation keys become dataset names:
``agent_pos`` -> ``observation.state``, ``environment_state`` -> ``observation.environment_state``,
``pixels`` (a dict of cameras) -> ``observation.images.<camera>`` (or a single image -> the config's
single-camera key, e.g. PushT's ``observation.image``). States are float32, images H x W x 3 uint8.
Every env reports ``info["is_success"]`` on each step and is truncated after ``episode_length`` steps.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit

from lerobot.envs.configs import EnvConfig, resolve_env_config


class DatasetKeysObservation(gym.ObservationWrapper):
    """Rename raw observation keys to dataset feature names using ``cfg.features_map``."""

    def __init__(self, env: gym.Env, cfg: EnvConfig):
        super().__init__(env)
        self.cfg = cfg
        self.features_map = cfg.features_map
        feats = cfg.features
        self.observation_space = spaces.Dict(
            {
                key: spaces.Box(0, 255, ft["shape"], np.uint8)
                if ft["dtype"] in ("video", "image")
                else spaces.Box(-np.inf, np.inf, ft["shape"], np.float32)
                for key, ft in feats.items()
                if key != "action"
            }
        )

    def observation(self, observation: dict[str, Any]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for raw_key, value in observation.items():
            key = self.features_map[raw_key]
            if isinstance(value, dict):
                out.update({f"{key}.{cam}": np.asarray(img, dtype=np.uint8) for cam, img in value.items()})
            elif raw_key == "pixels":
                out[key] = np.asarray(value, dtype=np.uint8)
            else:
                out[key] = np.asarray(value, dtype=np.float32)
        return out


class SuccessInfo(gym.Wrapper):
    """Guarantee ``info["is_success"]`` as a plain bool on reset and every step."""

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        info["is_success"] = bool(info.get("is_success", False))
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info["is_success"] = bool(info.get("is_success", False))
        return obs, reward, terminated, truncated, info


def make_single_env(cfg: EnvConfig) -> gym.Env:
    env = cfg.make_raw_env()
    env = SuccessInfo(env)
    env = DatasetKeysObservation(env, cfg)
    return TimeLimit(env, max_episode_steps=cfg.episode_length)


def make_env(
    cfg_or_name: EnvConfig | str | None = None,
    n_envs: int | None = None,
    use_async: bool = False,
    **overrides: Any,
) -> gym.Env | gym.vector.VectorEnv:
    """Build a sim env: ``make_env("pusht", render_mode="rgb_array")``, ``make_env(cfg, n_envs=8)``.

    ``cfg_or_name`` is an :class:`EnvConfig`, a registered type (``"so100"``, ``"aloha"``, ``"pusht"``) or a
    gym id (``"gym_aloha/AlohaTransferCube-v0"``); ``overrides`` set config fields (``task=``,
    ``obs_type=``, ``image_size=``, or ``type=`` instead of a name). With ``n_envs`` the result is a
    ``SyncVectorEnv`` (``AsyncVectorEnv`` with ``use_async=True``) of that many copies.
    """
    cfg = resolve_env_config(cfg_or_name, **overrides)
    if n_envs is None:
        return make_single_env(cfg)
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}.")
    fns = [lambda: make_single_env(cfg) for _ in range(n_envs)]
    vector_cls = gym.vector.AsyncVectorEnv if use_async else gym.vector.SyncVectorEnv
    return vector_cls(fns)
