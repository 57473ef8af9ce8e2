"""``lerobot-train`` for policies that learn from interaction (TD-MPC): act in the sim, store, update.

::

    lerobot-train --policy.type=tdmpc --env.type=so100 --env.task=reach --env.obs_type=state \\
        --steps=50000 --output_dir=outputs/train/tdmpc_reach            # purely online (no dataset)
    lerobot-train --policy.type=tdmpc --env.type=so100 --env.task=reach --env.obs_type=state \\
        --dataset.repo_id=me/reach_demos --online.enable=true ...       # offline + online (FOWM)
    lerobot-train --resume=true --output_dir=outputs/train/tdmpc_reach  # continue, bit for bit

The loop: one env step (uniformly random actions for the first ``online.seed_steps``, then
``policy.select_action(obs, explore=True)``), the transition into the
:class:`~lerobot.datasets.replay_buffer.ReplayBuffer`, then ``online.updates_per_step`` optimizer updates
on batches of ``batch_size`` sequences sampled from it (``--steps`` counts updates). A dataset, when given,
seeds the buffer before the first step. Episode ``e`` starts from ``env.reset(seed=seed + 1_000_000 + e)``,
never an evaluation seed (``seed .. seed + n - 1``).

Checkpoints are the offline run's (weights, optimizer, scheduler, RNG) plus ``training_state/
replay_buffer.safetensors`` and ``online_state.json``. A checkpoint falls due every ``save_freq`` updates
and is written when the episode in progress ends (and at the last update), so a resumed run starts the
next episode exactly where the uninterrupted run did, and reaches the same weights. ``online_log.csv``
records every episode's return and success (at any step, as ``lerobot-eval`` counts it) against the env
steps: the learning curve (``train_log.csv`` has the losses, as offline).
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import json
import logging
import math
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from lerobot.configs.types import dataset_to_policy_features
from lerobot.datasets.replay_buffer import ReplayBuffer
from lerobot.envs.utils import dataset_observation, preprocess_observation
from lerobot.optim import make_optimizer, make_scheduler, resolve_optimizer, resolve_scheduler
from lerobot.policies.cpu_acceleration import accelerate_on_cpu
from lerobot.policies.factory import make_policy
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.scripts.train import TrainResult, _make_eval_env, evaluate_during_training
from lerobot.scripts.train_config import (
    CHECKPOINTS_DIR,
    LAST_CHECKPOINT,
    PRETRAINED_DIR,
    TRAINING_STATE_DIR,
    TrainPipelineConfig,
)
from lerobot.scripts.train_utils import DistInfo, load_rng, load_training_state, save_checkpoint
from lerobot.utils.logging_utils import CSV_NAME, TrainLogger
from lerobot.utils.random_utils import set_seed

logger = logging.getLogger(__name__)

BUFFER_FILE = "replay_buffer.safetensors"
ONLINE_STATE_FILE = "online_state.json"
ONLINE_LOG = "online_log.csv"
TRAIN_EPISODE_SEED_OFFSET = 1_000_000
REWARD = "next.reward"


def run_online_training(cfg: TrainPipelineConfig) -> TrainResult:
    output_dir = Path(cfg.output_dir)
    resuming = cfg.resume
    if resuming and cfg.checkpoint_path is None:
        raise ValueError(
            "--resume=true: no checkpoint to resume from (parse the flags with parse_train_config)."
        )
    if not resuming and output_dir.is_dir() and any(output_dir.iterdir()):
        raise FileExistsError(
            f"{output_dir} already holds a run. Continue it with --resume=true, or choose another --output_dir."
        )
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ValueError(
            "Online training runs in one process (one env, one buffer): start it without torchrun."
        )
    set_seed(cfg.seed)
    from lerobot.envs import make_env

    env = make_env(cfg.env)
    env_features = cfg.env.features

    # ---- policy: features from the env, action range from its action space (or the dataset's stats) ----
    dataset = None
    if cfg.dataset.repo_id:
        from lerobot.datasets.lerobot_dataset import LeRobotDataset

        dataset = LeRobotDataset(cfg.dataset.repo_id, root=cfg.dataset.root, episodes=cfg.dataset.episodes)
        stats = dataset.meta.stats
    else:
        low, high = env.action_space.low, env.action_space.high
        stats = {"action": {"min": np.asarray(low, np.float32), "max": np.asarray(high, np.float32)}}
    policy_cfg = cfg.policy
    if resuming:
        policy_cfg = dataclasses.replace(
            cfg.policy, pretrained_path=str(cfg.checkpoint_path / PRETRAINED_DIR)
        )
    _check_env_has_features(policy_cfg, cfg.env)
    # Purely online: observation statistics come from the buffer after the seed phase (``pending``).
    policy = make_policy(
        policy_cfg,
        ds_meta=SimpleNamespace(features=env_features, stats=stats if dataset is not None else None),
    )
    pending: list[str] = []
    if dataset is None and not resuming:
        policy.set_normalization_stats(stats, strict=False)
        pending = policy.unset_input_stats()
    cfg.policy.input_features = policy.config.input_features
    cfg.policy.output_features = policy.config.output_features
    policy.train()
    accelerate_on_cpu(policy, cfg.cpu_acceleration)
    device = policy.device

    optim_settings = resolve_optimizer(cfg.optimizer, cfg.policy.get_optimizer_preset())
    optimizer = make_optimizer(policy.get_optim_params(), optim_settings)
    scheduler = make_scheduler(
        optimizer, resolve_scheduler(cfg.scheduler, cfg.policy.get_scheduler_preset(), cfg.steps)
    )
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    clip = optim_settings.grad_clip_norm
    params = [p for p in policy.parameters() if p.requires_grad]
    update_target = getattr(policy, "update", None)
    horizon = len(policy.config.action_delta_indices) if policy.config.action_delta_indices else None
    explore = "explore" in inspect.signature(policy.select_action).parameters

    # ---- the replay buffer, and where the run stands -----------------------------------------------------
    kept = {*policy.config.input_features, "action"}
    buffer_features = {k: ft for k, ft in env_features.items() if k in kept}
    step = env_steps = episode = 0
    if resuming:
        state_dir = cfg.checkpoint_path / TRAINING_STATE_DIR
        load_training_state(cfg.checkpoint_path, optimizer, scheduler, scaler)
        buffer = ReplayBuffer.load(state_dir / BUFFER_FILE)
        saved = json.loads((state_dir / ONLINE_STATE_FILE).read_text())
        step, env_steps, episode = saved["step"], saved["env_steps"], saved["episode"]
        if buffer.frame:  # saved mid-episode (the run's last update): that episode ends here
            buffer.end_episode()
        load_rng(cfg.checkpoint_path, DistInfo())
        logger.info("Resuming from %s at update %d, env step %d.", cfg.checkpoint_path, step, env_steps)
    else:
        buffer = ReplayBuffer(cfg.online.buffer_capacity, buffer_features, seed=cfg.seed)
        if dataset is not None:
            logger.info(
                "Seeding the replay buffer with %d frames of %s.",
                buffer.add_dataset(dataset),
                dataset.repo_id,
            )

    output_dir.mkdir(parents=True, exist_ok=True)
    tracker = TrainLogger(output_dir, cfg.to_dict(), step if resuming else None, cfg.tensorboard, cfg.wandb)
    episode_log = EpisodeLog(output_dir / ONLINE_LOG, resume_env_step=env_steps if resuming else None)
    logger.info(
        "Training %s online (%s parameters) in %s/%s, buffer %d frames (%d stored), %d updates.",
        cfg.policy.type, f"{sum(p.numel() for p in params):,}", cfg.env.type, cfg.env.task,
        cfg.online.buffer_capacity, len(buffer), cfg.steps,
    )  # fmt: skip

    def start_episode() -> dict[str, Any]:
        policy.reset()
        obs, _ = env.reset(seed=cfg.seed + TRAIN_EPISODE_SEED_OFFSET + episode)
        return obs

    def act(obs: dict[str, Any]) -> np.ndarray:
        if env_steps < cfg.online.seed_steps:
            low, high = env.action_space.low, env.action_space.high
            return np.random.uniform(low, high).astype(np.float32)  # the global numpy stream: resumable
        observation = {k: v.to(device) for k, v in preprocess_observation(obs).items()}
        kwargs = {"explore": True} if explore else {}
        action = policy.select_action(observation, **kwargs)
        policy.train()
        return torch.as_tensor(action["action"])[0].cpu().numpy()

    obs = start_episode()
    episode_return, episode_success, last_eval, save_due, last_saved = 0.0, False, None, False, None
    losses: list[torch.Tensor] = []
    window_start = time.perf_counter()
    final_loss = math.nan
    while step < cfg.steps:
        action = act(obs)
        next_obs, reward, terminated, truncated, info = env.step(action)
        buffer.add(dataset_observation(obs), action, float(reward))
        env_steps += 1
        episode_return += float(reward)
        # Succeeded at any step, as lerobot-eval counts it (a task that does not end on success goes on).
        episode_success |= bool(info.get("is_success", False))
        obs = next_obs
        episode_over = terminated or truncated
        if episode_over:
            buffer.end_episode(dataset_observation(next_obs))
            episode_log.write(env_steps, episode, episode_return, episode_success, step)
            logger.info(
                "env step %d  episode %d  return %.3f  success %s",
                env_steps,
                episode,
                episode_return,
                episode_success,
            )
            episode += 1
            episode_return, episode_success = 0.0, False

        if env_steps >= cfg.online.seed_steps:
            if pending:
                policy.set_normalization_stats(buffer.observation_stats(pending), strict=False)
                logger.info("Normalisation statistics of %s from the first %d env steps.", pending, env_steps)
                pending = []
            for _ in range(cfg.online.updates_per_step):
                batch = {k: v.to(device) for k, v in buffer.sample(cfg.batch_size, horizon).items()}
                loss = policy(batch)["loss"]
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf)
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                scheduler.step()
                if update_target is not None:
                    update_target()
                step += 1
                losses.append(loss.detach())
                if step % cfg.log_freq == 0 or step == cfg.steps:
                    final_loss = float(torch.stack(losses).mean())
                    elapsed = time.perf_counter() - window_start
                    tracker.log(step, {"train_loss": final_loss, "grad_norm": float(grad_norm), "env_steps": env_steps,
                                       "learning_rate": scheduler.get_last_lr()[0],
                                       "samples_per_s": len(losses) * cfg.batch_size / elapsed})  # fmt: skip
                    logger.info("update %d/%d  loss %.4f  env step %d  %.1f updates/s",
                                step, cfg.steps, final_loss, env_steps, len(losses) / elapsed)  # fmt: skip
                    losses, window_start = [], time.perf_counter()
                if cfg.eval_freq > 0 and (step % cfg.eval_freq == 0 or step == cfg.steps):
                    eval_env = _make_eval_env(cfg)
                    try:
                        last_eval = evaluate_during_training(policy, eval_env, cfg, step)
                    finally:
                        eval_env.close()
                    agg = last_eval["aggregated"]
                    tracker.log(
                        step,
                        {"success_rate": agg["pc_success"] / 100, "avg_sum_reward": agg["avg_sum_reward"]},
                    )
                if cfg.save_checkpoint and cfg.save_freq > 0 and step % cfg.save_freq == 0:
                    save_due = True
                if step == cfg.steps:
                    break

        finished = step >= cfg.steps
        if cfg.save_checkpoint and ((save_due and episode_over) or finished):
            last_saved = _save(cfg, step, env_steps, episode, policy, optimizer, scheduler, scaler, buffer)
            save_due = False
        if episode_over and not finished:
            obs = start_episode()

    env.close()
    plot_path = tracker.close()
    checkpoint_dir = output_dir / CHECKPOINTS_DIR / LAST_CHECKPOINT if last_saved is not None else None
    return TrainResult(
        policy, output_dir, checkpoint_dir, output_dir / CSV_NAME, plot_path, final_loss, last_eval
    )


def _check_env_has_features(policy_cfg: Any, env_cfg: Any) -> None:
    """A policy that already names its features (a checkpoint, explicit flags) must get them from the env."""
    given = dataset_to_policy_features(env_cfg.features)
    for name, ft in {**policy_cfg.input_features, **policy_cfg.output_features}.items():
        if name not in given:
            raise ValueError(
                f"The policy needs {name!r}, which env {env_cfg.type}/{env_cfg.task} (obs_type={env_cfg.obs_type}) "
                f"does not give; it gives {sorted(given)}. Choose the env's obs_type/cameras to match, or start "
                "from --policy.type instead of a checkpoint made for other inputs."
            )
        if tuple(given[name].shape) != tuple(ft.shape):
            raise ValueError(
                f"The policy expects {name!r} with shape {tuple(ft.shape)}, env {env_cfg.type}/{env_cfg.task} gives "
                f"{tuple(given[name].shape)} (set e.g. --env.image_size to match)."
            )


def _save(
    cfg: TrainPipelineConfig,
    step: int,
    env_steps: int,
    episode: int,
    policy: PreTrainedPolicy,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler,
    buffer: ReplayBuffer,
) -> Path:
    """The offline checkpoint plus the replay buffer and the online counters, added before ``last`` moves."""
    final = save_checkpoint(cfg, step, policy, optimizer, scheduler, scaler, DistInfo())
    state_dir = final / TRAINING_STATE_DIR
    buffer.save(state_dir / BUFFER_FILE)
    online = {"step": step, "env_steps": env_steps, "episode": episode}
    (state_dir / ONLINE_STATE_FILE).write_text(json.dumps(online, indent=4))
    logger.info("Checkpoint %s (replay buffer: %d frames)", final, len(buffer))
    return final


class EpisodeLog:
    """``online_log.csv``: env_step, episode, return, success, update per finished training episode."""

    COLUMNS = ("env_step", "episode", "return", "success", "update")

    def __init__(self, path: Path, resume_env_step: int | None):
        self.path = path
        if resume_env_step is None or not path.is_file():
            path.write_text(",".join(self.COLUMNS) + "\n")
            return
        with path.open() as f:  # drop the episodes an interrupted run logged after its last checkpoint
            rows = [r for r in csv.DictReader(f) if int(r["env_step"]) <= resume_env_step]
        with path.open("w", newline="") as f:
            writer = csv.DictWriter(f, self.COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, env_step: int, episode: int, ret: float, success: bool, update: int) -> None:
        with self.path.open("a", newline="") as f:
            csv.writer(f).writerow([env_step, episode, f"{ret:.6f}", int(success), update])
