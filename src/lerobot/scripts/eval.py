"""``lerobot-eval``: roll a trained policy out in simulation (or on a robot) and report its success rate.

::

    lerobot-eval --policy.path=outputs/train/run/checkpoints/last/pretrained_model \\
        --env.type=so100 --env.task=pick_cube --env.obs_type=state \\
        --eval.n_episodes=50 --eval.batch_size=10 --eval.max_steps=150 --output_dir=outputs/eval/run --seed=1000

Episode i is reset with seed ``seed + i``, ``batch_size`` episodes run side by side in a vector env.
Writes ``eval_info.json``::

    {"per_episode": [{"episode_ix", "seed", "sum_reward", "max_reward", "success", "n_steps", ("task"),
                      ("wrong_cube_lifted")}, ...],
     "aggregated": {"pc_success", "pc_success_ci95", "avg_sum_reward", "avg_max_reward", "n_episodes",
                    "eval_s", "eval_ep_s", "inference_ms", ("pc_wrong_cube", "pc_wrong_cube_ci95"),
                    "per_task"},       # only for multi-task envs: {task: {"pc_success", "pc_success_ci95",
                                       #  "n_episodes", ("pc_wrong_cube", "pc_wrong_cube_ci95")}}
     "overall": {... the aggregated numbers + "video_paths"}}   # "overall": LeRobot's key for the same

``inference_ms`` is the mean time of one ``select_action`` call (all envs at once). ``pc_success_ci95``
is the 95% Wilson score interval of the success rate in percent (it stays inside 0..100 and keeps its
coverage at 0% or 100% and small n, where the normal approximation does not); at 50 episodes it spans
about +-13 points around 50%. An env that reports ``info["wrong_cube_lifted"]`` (so100 ``pick_color``)
adds it to each episode and ``pc_wrong_cube`` (with its interval) to the aggregate: how often the
policy lifted the cube the instruction did not name.

plus ``videos/eval_episode_<i>.mp4`` for the first ``--eval.max_videos`` episodes and ``success_rate.png``.
``--robot.type=<robot or twin>`` (the guide's ``--robot-type``) evaluates on a robot instead, through
the safety layer, and writes the same files but videos (:mod:`lerobot.scripts.eval_robot`).
Training calls :func:`eval_policy` for its periodic evaluation.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from lerobot.configs.parser import print_help_if_asked
from lerobot.configs.types import FeatureType
from lerobot.datasets.utils import atomic_path
from lerobot.policies.config import missing_features
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.scripts.eval_config import EVAL_ALIASES, EvalPipelineConfig, parse_eval_config
from lerobot.utils.cli import console_main
from lerobot.utils.logging_utils import save_figure

logger = logging.getLogger(__name__)

EVAL_INFO_NAME = "eval_info.json"
WRONG_CUBE = "wrong_cube_lifted"  # env info key of language pick tasks (lerobot.envs.so100 pick_color)


class FeatureMismatchError(ValueError):
    """The policy needs observations the environment does not produce (or acts in another space)."""


def check_policy_fits_env(policy: PreTrainedPolicy, env: gym.vector.VectorEnv) -> None:
    """One clear error when the policy's inputs / action do not match what the env gives / takes.

    The env's keys are compared under their dataset names (:func:`lerobot.envs.utils.dataset_keys`).
    """
    from lerobot.envs.utils import dataset_keys

    obs_space = env.single_observation_space
    provided = dataset_keys(obs_space.spaces) if isinstance(obs_space, gym.spaces.Dict) else {}
    # Padding cameras are filled by the policy itself, and a VLA pads the cameras an env lacks.
    missing = missing_features(policy.config, provided, outputs=False)
    if missing:
        raise FeatureMismatchError(
            f"The policy needs {missing} but the environment only provides {sorted(provided)}. "
            "Evaluate in the env (and --env.obs_type) the policy was trained for."
        )
    for key, ft in policy.config.input_features.items():
        if key not in provided:
            continue
        shape = tuple(provided[key].shape)
        want = (ft.shape[1], ft.shape[2], ft.shape[0]) if ft.type is FeatureType.VISUAL else ft.shape
        if shape != tuple(want):
            raise FeatureMismatchError(
                f"{key}: the policy expects shape {tuple(ft.shape)} but the environment gives {shape}"
                + (" (H x W x C)" if ft.type is FeatureType.VISUAL else "")
                + "; check --env.image_size / the env task."
            )
    action = policy.config.action_feature
    act_shape = tuple(env.single_action_space.shape or ())
    if action is not None and act_shape != tuple(action.shape):
        raise FeatureMismatchError(
            f"The policy outputs actions of shape {tuple(action.shape)} but the environment takes {act_shape}."
        )


def rollout(
    policy: PreTrainedPolicy, env: gym.vector.VectorEnv, seeds: list[int], max_steps: int, render: bool
) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Run one batch of episodes to their ends (or ``max_steps``); an env that finished is ignored after.

    Returns per-env ``sum_reward``, ``max_reward``, ``success``, ``n_steps``, ``task`` (what the env's
    reset info names, e.g. the Meta-World task or LIBERO instruction of a multi-task env; None when it
    names none), the seconds spent in each ``select_action`` call (``inference_s``, one entry per step)
    and, when ``render``, the frames (B, H, W, 3) of every step.
    """
    from tqdm.auto import tqdm

    from lerobot.envs.utils import env_tasks, preprocess_observation

    n = env.num_envs
    policy.reset()
    observation, reset_info = env.reset(seed=seeds)
    tasks = reset_info.get("task", [None] * n)
    done = np.zeros(n, dtype=bool)
    sum_reward, max_reward = np.zeros(n), np.full(n, -np.inf)
    success, n_steps = np.zeros(n, dtype=bool), np.zeros(n, dtype=int)
    wrong: np.ndarray | None = None  # per env: lifted the cube not named (when the env reports it)
    frames: list[np.ndarray] = []
    inference_s: list[float] = []
    has_tasks = env_tasks(env) is not None
    for _ in tqdm(range(max_steps), desc="rollout steps", leave=False, unit="step"):
        if render:
            frames.append(np.stack(env.call("render")))
        batch = preprocess_observation(observation)
        # The instruction a language-conditioned policy reads: the env's task_description (read every
        # step: an env may draw a new one when it resets itself), else the task its reset info names.
        if has_tasks:
            batch["task"] = env_tasks(env)
        elif all(t is not None for t in tasks):
            batch["task"] = [str(t) for t in tasks]
        started = time.perf_counter()
        with torch.inference_mode():
            action = policy.select_action(batch)["action"]
        inference_s.append(time.perf_counter() - started)
        observation, reward, terminated, truncated, info = env.step(action.cpu().numpy())
        live = ~done
        sum_reward[live] += reward[live]
        max_reward[live] = np.maximum(max_reward[live], reward[live])
        success[live] |= np.asarray(info.get("is_success", np.zeros(n, dtype=bool)), dtype=bool)[live]
        if WRONG_CUBE in info:
            wrong = np.zeros(n, dtype=bool) if wrong is None else wrong
            wrong[live] |= np.asarray(info[WRONG_CUBE], dtype=bool)[live]
        n_steps[live] += 1
        done |= terminated | truncated
        if done.all():
            break
    if render:
        frames.append(np.stack(env.call("render")))
    result = {
        "sum_reward": sum_reward,
        "max_reward": max_reward,
        "success": success,
        "n_steps": n_steps,
        "task": [None if t is None else str(t) for t in tasks],
        "inference_s": np.array(inference_s),
    }
    if wrong is not None:
        result[WRONG_CUBE] = wrong
    return result, frames


def eval_policy(
    policy: PreTrainedPolicy,
    env: gym.Env | gym.vector.VectorEnv,
    n_episodes: int,
    max_steps: int | None = None,
    seed: int = 1000,
    videos_dir: Path | None = None,
    max_videos: int = 10,
    fps: int | None = None,
) -> dict[str, Any]:
    """Roll ``policy`` out for ``n_episodes`` (seeds ``seed .. seed + n_episodes - 1``); returns the eval_info dict.

    ``env`` is a vector env (its ``num_envs`` episodes run side by side) or a single env. Videos of
    the first ``max_videos`` episodes go to ``videos_dir`` when the env renders. A progress bar counts
    episodes (and, inside a batch, steps). When the env names each episode's task (multi-task Meta-World
    or LIBERO), episodes carry a ``task`` and ``aggregated["per_task"]`` gives each task's success rate.
    """
    from tqdm.auto import tqdm

    if not isinstance(env, gym.vector.VectorEnv):
        single = env
        env = gym.vector.SyncVectorEnv([lambda: single])
    check_policy_fits_env(policy, env)
    max_steps = max_steps or _episode_limit(env)
    fps = fps or int(env.metadata.get("render_fps") or 30)
    can_render = videos_dir is not None and max_videos > 0 and env.render_mode == "rgb_array"
    episodes: list[dict[str, Any]] = []
    video_paths: list[str] = []
    inference_s: list[np.ndarray] = []
    started = time.perf_counter()
    progress = tqdm(total=n_episodes, desc="eval episodes", unit="episode")
    for first in range(0, n_episodes, env.num_envs):
        count = min(env.num_envs, n_episodes - first)
        # Envs beyond `count` in a last, partial batch run too (a vector env steps all) but are not counted.
        seeds = [seed + first + i for i in range(env.num_envs)]
        render = can_render and len(video_paths) < max_videos
        result, frames = rollout(policy, env, seeds, max_steps, render)
        inference_s.append(result["inference_s"])
        for i in range(count):
            episodes.append(
                {
                    "episode_ix": first + i,
                    "seed": seeds[i],
                    "sum_reward": float(result["sum_reward"][i]),
                    "max_reward": float(result["max_reward"][i]),
                    "success": bool(result["success"][i]),
                    "n_steps": int(result["n_steps"][i]),
                    **({"task": result["task"][i]} if result["task"][i] is not None else {}),
                    **({WRONG_CUBE: bool(result[WRONG_CUBE][i])} if WRONG_CUBE in result else {}),
                }
            )
            if render and len(video_paths) < max_videos:
                video_paths.append(
                    str(_write_video(frames, i, int(result["n_steps"][i]), videos_dir, first + i, fps))
                )
        progress.update(count)
        progress.set_postfix(success=f"{100 * np.mean([e['success'] for e in episodes]):.0f}%")
        logger.info(
            "Evaluated %d/%d episodes: %.0f%% success so far, inference %.1f ms/step (%.0f s)", len(episodes),
            n_episodes, 100 * np.mean([e["success"] for e in episodes]), 1e3 * np.mean(result["inference_s"]),
            time.perf_counter() - started,
        )  # fmt: skip
    progress.close()
    eval_s = time.perf_counter() - started
    aggregated = {
        **success_rates(episodes),
        "avg_sum_reward": float(np.mean([e["sum_reward"] for e in episodes])),
        "avg_max_reward": float(np.mean([e["max_reward"] for e in episodes])),
        "eval_s": eval_s,
        "eval_ep_s": eval_s / len(episodes),
        "inference_ms": 1e3 * float(np.mean(np.concatenate(inference_s))),
    }
    per_task: dict[str, list[dict[str, Any]]] = {}
    for e in episodes:
        if "task" in e:
            per_task.setdefault(e["task"], []).append(e)
    if per_task:
        aggregated["per_task"] = {task: success_rates(group) for task, group in per_task.items()}
    return {
        "per_episode": episodes,
        "aggregated": aggregated,
        "overall": {**aggregated, "video_paths": video_paths},
    }


def success_rates(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Success rate (and wrong-cube rate, where every episode reports one) with 95% intervals, and the count."""
    n, wins = len(episodes), sum(e["success"] for e in episodes)
    rates: dict[str, Any] = {
        "pc_success": 100.0 * wins / n,
        "pc_success_ci95": wilson_interval_pc(wins, n),
        "n_episodes": n,
    }
    if all(WRONG_CUBE in e for e in episodes):
        wrong = sum(e[WRONG_CUBE] for e in episodes)
        rates["pc_wrong_cube"] = 100.0 * wrong / n
        rates["pc_wrong_cube_ci95"] = wilson_interval_pc(wrong, n)
    return rates


def wilson_interval_pc(successes: int, n: int, z: float = 1.959963984540054) -> list[float]:
    """Wilson score interval (95% for the default ``z``) of a rate ``successes / n``, in percent."""
    if n <= 0:
        raise ValueError(f"A success-rate interval needs at least one episode, got n={n}.")
    p, z2 = successes / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    low = 0.0 if successes == 0 else max(0.0, float(centre - half))  # exact ends, no rounding residue
    high = 1.0 if successes == n else min(1.0, float(centre + half))
    return [100.0 * low, 100.0 * high]


def _episode_limit(env: gym.vector.VectorEnv) -> int:
    spec = getattr(env, "spec", None) or env.get_attr("spec")[0]
    limit = getattr(spec, "max_episode_steps", None)
    if not limit:
        try:
            limit = env.get_attr("_max_episode_steps")[0]
        except AttributeError:
            limit = None
    if not limit:
        raise ValueError("The environment has no episode limit: pass max_steps= (--eval.max_steps=...).")
    return int(limit)


def _write_video(
    frames: list[np.ndarray], env_ix: int, n_steps: int, videos_dir: Path, episode_ix: int, fps: int
) -> Path:
    from lerobot.datasets.video import VideoEncoderConfig, encode_video_frames

    videos_dir.mkdir(parents=True, exist_ok=True)
    path = videos_dir / f"eval_episode_{episode_ix}.mp4"
    # Frames 0..n_steps show the episode from its reset to its last step; h264 plays everywhere.
    episode = [f[env_ix] for f in frames[: n_steps + 1]]
    encode_video_frames(episode, path, fps, VideoEncoderConfig(vcodec="h264", g=None))
    return path


def plot_success(info: dict[str, Any], path: Path) -> Path:
    """Per-episode outcome and the running success rate, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    success = np.array([e["success"] for e in info["per_episode"]], dtype=float)
    ix = np.arange(1, len(success) + 1)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.bar(
        ix, success, color=np.where(success > 0, "tab:green", "tab:red"), alpha=0.35, label="episode success"
    )
    ax.plot(ix, np.cumsum(success) / ix, color="black", label="running success rate")
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("episode")
    ax.set_ylabel("success")
    ax.set_title(f"success rate {info['aggregated']['pc_success']:.1f}% over {len(success)} episodes")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write to a temporary name, then rename: a crash never leaves half a file."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def evaluate(cfg: EvalPipelineConfig) -> dict[str, Any]:
    """Load the policy, then :func:`evaluate_in_env` with the config's settings."""
    from lerobot.policies.cpu_acceleration import accelerate_on_cpu
    from lerobot.policies.factory import make_policy
    from lerobot.utils.random_utils import set_seed

    set_seed(cfg.seed)
    policy = accelerate_on_cpu(make_policy(cfg.policy), cfg.cpu_acceleration)
    if cfg.robot is not None:
        from lerobot.scripts.eval_robot import evaluate_robot_cfg

        return evaluate_robot_cfg(cfg, policy, Path(cfg.output_dir))
    return evaluate_in_env(
        policy,
        cfg.env,
        Path(cfg.output_dir),
        cfg.eval.n_episodes,
        batch_size=cfg.eval.batch_size,
        seed=cfg.seed,
        max_videos=cfg.eval.max_videos,
        max_steps=cfg.eval.max_steps,
    )


def evaluate_in_env(
    policy: PreTrainedPolicy,
    env_cfg: Any,
    output_dir: Path,
    n_episodes: int,
    batch_size: int,
    seed: int,
    max_videos: int,
    max_steps: int | None = None,
) -> dict[str, Any]:
    """Roll out in ``batch_size`` copies of the env; write eval_info.json, videos and the success plot."""
    from lerobot.envs import make_env

    env = make_env(env_cfg, n_envs=min(batch_size, n_episodes))
    try:
        info = eval_policy(
            policy,
            env,
            n_episodes,
            max_steps=max_steps,
            seed=seed,
            videos_dir=output_dir / "videos",
            max_videos=max_videos,
            fps=env_cfg.fps,
        )
    finally:
        env.close()
    write_json(info, output_dir / EVAL_INFO_NAME)
    plot_success(info, output_dir / "success_rate.png")
    return info


@console_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, EvalPipelineConfig, EVAL_ALIASES):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = parse_eval_config(argv)
    info = evaluate(cfg)
    agg = info["aggregated"]
    low, high = agg["pc_success_ci95"]
    wrong = f", wrong cube {agg['pc_wrong_cube']:.1f}%" if "pc_wrong_cube" in agg else ""
    print(
        f"Success rate {agg['pc_success']:.1f}% (95% CI {low:.1f}-{high:.1f}){wrong} over {agg['n_episodes']} episodes "
        f"(avg sum reward {agg['avg_sum_reward']:.3f}, avg max reward {agg['avg_max_reward']:.3f}, "
        f"{agg['eval_s']:.1f} s, inference {agg['inference_ms']:.1f} ms/step). Results in {Path(cfg.output_dir) / EVAL_INFO_NAME}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
