"""Scripted-expert success rates on held-out seeds, plus sim step rates with and without rendering.

Runs each expert on ``--n-seeds`` seeds per task with state-only observations (the experts read
privileged sim state, so images would only cost time), then times the SO-100 env stepping with and
without its 96x96 camera. Writes ``benchmarks/results/experts.json`` and prints a markdown table.

    .venv/bin/python benchmarks/experts.py [--n-seeds 50] [--tasks so100:pick_cube,aloha:AlohaInsertion-v0]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from lerobot.envs import make_env, make_expert  # noqa: E402

TASKS = [
    ("so100", "pick_cube"),
    ("so100", "pick_place"),
    ("aloha", "AlohaTransferCube-v0"),
    ("aloha", "AlohaInsertion-v0"),
    ("pusht", "PushT-v0"),
]
RESULTS = Path(__file__).parent / "results" / "experts.json"


def run_expert(env_type: str, task: str, seeds: range) -> dict:
    env = make_env(env_type, task=task, obs_type="state")
    expert = make_expert(env_type, task=task)
    successes, lengths, think = [], [], []
    start = time.perf_counter()
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        expert.reset(env)
        done, steps = False, 0
        while not done:
            tic = time.perf_counter()
            action = expert.select_action(obs, env)
            think.append(time.perf_counter() - tic)
            obs, _, terminated, truncated, info = env.step(action)
            steps += 1
            done = terminated or truncated
        successes.append(bool(info["is_success"]))
        lengths.append(steps)
    seconds = time.perf_counter() - start
    env.close()
    return {
        "env": env_type,
        "task": task,
        "n_seeds": len(seeds),
        "first_seed": seeds.start,
        "success_rate": float(np.mean(successes)),
        "mean_episode_length": float(np.mean(lengths)),
        "seconds": round(seconds, 2),
        "seconds_per_episode": round(seconds / len(seeds), 3),
        # Time the expert itself takes to choose one action (planning included), not the sim step.
        "expert_ms_per_step_mean": round(1000 * float(np.mean(think)), 2),
        "expert_ms_per_step_max": round(1000 * float(np.max(think)), 1),
        "failed_seeds": [s for s, ok in zip(seeds, successes) if not ok],
    }


def step_rate(obs_type: str, n_steps: int = 300, **overrides) -> float:
    """Env steps per second under random joint targets (no expert), so only the sim is timed."""
    env = make_env("so100", obs_type=obs_type, **overrides)
    env.reset(seed=0)
    env.step(env.action_space.sample())  # the first rendered step creates the GL context
    start = time.perf_counter()
    for _ in range(n_steps):
        _, _, terminated, truncated, _ = env.step(env.unwrapped.joint_positions)
        if terminated or truncated:
            env.reset()
    rate = n_steps / (time.perf_counter() - start)
    env.close()
    return round(rate, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n-seeds", type=int, default=50)
    parser.add_argument("--first-seed", type=int, default=1000, help="held-out seeds start here")
    parser.add_argument("--tasks", default=",".join(f"{e}:{t}" for e, t in TASKS))
    args = parser.parse_args()

    seeds = range(args.first_seed, args.first_seed + args.n_seeds)
    results = []
    for spec in args.tasks.split(","):
        env_type, task = spec.split(":")
        results.append(run_expert(env_type, task, seeds))
        r = results[-1]
        print(f"{env_type}/{task}: {r['success_rate']:.0%} in {r['seconds']} s", flush=True)
    rates = {
        "so100_state_steps_per_s": step_rate("state"),
        "so100_pixels_96x96_steps_per_s": step_rate("pixels_agent_pos"),
    }
    out = {
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "mujoco_gl": os.environ["MUJOCO_GL"],
        },
        "experts": results,
        "sim_step_rates": rates,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(RESULTS)

    print("\n| env | task | seeds | success | mean length | seconds | expert ms/step (mean, max) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['env']} | {r['task']} | {r['n_seeds']} | {r['success_rate']:.0%} | "
            f"{r['mean_episode_length']:.0f} | {r['seconds']} | "
            f"{r['expert_ms_per_step_mean']}, {r['expert_ms_per_step_max']} |"
        )
    print(
        f"\nSO-100 sim: {rates['so100_state_steps_per_s']} steps/s state-only, "
        f"{rates['so100_pixels_96x96_steps_per_s']} steps/s with one 96x96 camera (MUJOCO_GL={os.environ['MUJOCO_GL']})."
    )


if __name__ == "__main__":
    main()
