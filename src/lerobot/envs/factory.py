"""``make_env``: a config (or name) -> a Gymnasium env with the simulator's own observation keys.

As in gym-aloha, gym-pusht and LeRobot, observations are ``{"agent_pos": ..., "pixels": ...}``
(``pixels`` a single image or a dict of cameras, H x W x 3 uint8; ``environment_state`` with
``obs_type="state"``), so code written for those envs runs unchanged. Turning them into dataset
feature names is one step, :func:`lerobot.envs.utils.dataset_observation`, which ``lerobot-eval``,
training's evaluation and expert recording apply. Every env reports ``info["is_success"]`` on each
step and is truncated after ``episode_length`` steps.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium.wrappers import TimeLimit

from lerobot.envs.configs import EnvConfig, resolve_env_config


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
    if not use_async:
        return gym.vector.SyncVectorEnv(fns)
    # Gymnasium's shared memory garbles Text spaces (a worker's character order is its own), so an env
    # whose observations carry the instruction sends them through the pipes instead.
    return gym.vector.AsyncVectorEnv(fns, shared_memory=not cfg.text_observations)
