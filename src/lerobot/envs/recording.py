"""Record a sim task's scripted expert into a LeRobotDataset, in the env's own units and feature names.

The command line is :mod:`lerobot.scripts.record_expert` (``python -m lerobot.scripts.record_expert``).
Episode ``i`` uses seed ``first_seed + i``; evaluate on seeds outside that range to measure generalisation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lerobot.datasets.utils import REWARD_FEATURES
from lerobot.envs.configs import EnvConfig, resolve_env_config
from lerobot.envs.experts import make_expert
from lerobot.envs.factory import make_env
from lerobot.envs.utils import dataset_observation

logger = logging.getLogger(__name__)


def record_expert_dataset(
    env: EnvConfig | str,
    repo_id: str,
    root: str | Path | None = None,
    num_episodes: int = 50,
    task: str | None = None,
    first_seed: int = 0,
    use_videos: bool = True,
    action_noise: float = 0.0,
    rewards: bool = False,
) -> tuple[Any, float]:
    """Roll the expert out for ``num_episodes`` seeds into a new dataset; returns it and its success share.

    Each frame's task is the env's instruction when it has one (the ``task`` observation of a language
    task such as so100 ``pick_color``, drawn per episode), otherwise ``task`` or ``"<type> <task>"``.

    ``action_noise`` > 0 executes ``action + N(0, action_noise)`` while storing the expert's clean
    action (DART, Laskey et al. 2017): the demonstrations then visit states slightly off the expert's
    path together with the action that leads back, which is what a cloned policy needs when its own
    small errors push it there. Episodes the noise made fail are discarded and re-drawn with the next seed.

    ``rewards`` also stores what each action earned, in LeRobot's columns for sim datasets:
    ``next.reward`` (float32), ``next.done`` (the env ended the episode: success) and ``next.success``
    (bool), each of shape (1,): the data reinforcement learning trains on (TD-MPC's offline + online
    training seeds its replay buffer with such a dataset, as FOWM seeds it with demonstrations).
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cfg = resolve_env_config(env)
    if task and cfg.text_observations:
        raise ValueError(
            f"{cfg.type} {cfg.task} draws its own instruction every episode and stores it as each frame's "
            f"task; drop the task argument (--task={task!r})."
        )
    sim, expert = make_env(cfg), make_expert(cfg)
    features = _camera_storage(cfg.features, use_videos)
    if rewards:
        features = {**features, **{k: dict(v) for k, v in REWARD_FEATURES.items()}}
    dataset = LeRobotDataset.create(
        repo_id,
        fps=cfg.fps,
        features=features,
        robot_type=f"{cfg.type}_sim",
        root=root,
        use_videos=use_videos,
    )
    instruction = task or f"{cfg.type} {cfg.task}"  # a language task's frames carry their own instead
    rng = np.random.default_rng(first_seed)

    pending: dict[str, Any] = {}  # the frame whose action is running: stored once its outcome is known

    def keep_then_perturb(obs: dict[str, Any], action: np.ndarray) -> np.ndarray:
        pending["frame"] = {**dataset_observation(obs), "action": action}
        # A multi-task env (a Meta-World task list) names each episode's task; ``task=`` still wins.
        pending["task"] = task or getattr(sim.unwrapped, "episode_instruction", None) or instruction
        if not action_noise:
            return action
        return action + rng.normal(0.0, action_noise, action.shape).astype(action.dtype)

    def store(reward: float, terminated: bool, info: dict[str, Any]) -> None:
        frame = pending["frame"]
        if rewards:
            frame["next.reward"] = np.array([reward], np.float32)
            frame["next.done"] = np.array([terminated])
            frame["next.success"] = np.array([bool(info["is_success"])])
        dataset.add_frame(frame, task=pending["task"])

    successes = []
    seed = first_seed
    try:
        while dataset.meta.total_episodes < num_episodes:
            successes.append(run_expert_episode(sim, expert, seed, keep_then_perturb, store))
            seed += 1
            if action_noise and not successes[-1]:
                dataset.clear_episode_buffer()  # a failure caused by the injected noise: not a demonstration
                continue
            dataset.save_episode()
            logger.info("Episode %d/%d (seed %d): %s", dataset.meta.total_episodes, num_episodes, seed - 1,
                        "success" if successes[-1] else "failure")  # fmt: skip
    finally:
        dataset.finalize()
        sim.close()
    return dataset, float(np.mean(successes)) if successes else 0.0


def _camera_storage(features: dict[str, dict], use_videos: bool) -> dict[str, dict]:
    """The env's features with cameras stored as ``image`` (lossless PNG frames) when videos are off.

    Env configs declare cameras as ``video``; without this, ``--video=false`` on a camera env was refused.
    """
    if use_videos:
        return features
    return {k: {**ft, "dtype": "image"} if ft["dtype"] == "video" else ft for k, ft in features.items()}


def run_expert_episode(
    sim: Any,
    expert: Any,
    seed: int,
    on_action: Callable[[dict[str, Any], np.ndarray], np.ndarray] | None = None,
    on_outcome: Callable[[float, bool, dict[str, Any]], None] | None = None,
) -> bool:
    """One episode from ``seed``: the expert acts until the env ends it; returns whether it succeeded.

    ``on_action(obs, action)`` sees each observation and the expert's action and returns the action
    to execute (recording stores the clean one and may perturb what runs); ``on_outcome(reward,
    terminated, info)`` sees what that step of the env returned.
    """
    obs, info = sim.reset(seed=seed)
    expert.reset(sim)
    done = False
    while not done:
        action = expert.select_action(obs, sim)
        if on_action is not None:
            action = on_action(obs, action)
        obs, reward, terminated, truncated, info = sim.step(action)
        if on_outcome is not None:
            on_outcome(float(reward), bool(terminated), info)
        done = terminated or truncated
    return bool(info["is_success"])


def expert_success_rate(env: EnvConfig | str, num_episodes: int, first_seed: int = 1000) -> float:
    """The expert's success on ``num_episodes`` seeds: the bar a trained policy is compared with."""
    cfg = resolve_env_config(env)
    sim, expert = make_env(cfg), make_expert(cfg)
    try:
        wins = [
            run_expert_episode(sim, expert, seed) for seed in range(first_seed, first_seed + num_episodes)
        ]
    finally:
        sim.close()
    return float(np.mean(wins))
