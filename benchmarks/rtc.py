"""Chunk switching under inference delay: real-time chunking vs naive switching vs temporal ensembling.

A Diffusion Policy (the PushT recipe's, docs/recipes.md section 2) runs in the PushT env while each
new chunk is computed from the observation at step ``t_k`` and becomes usable only ``d`` control
steps later (the inference delay, simulated: ``d = round(delay_ms * fps / 1000)``, 0 / 1 / 3 steps for
0 / 100 / 300 ms at PushT's 10 fps). Meanwhile the robot keeps executing the chunk it has. A new chunk
is requested every ``s = n_action_steps`` steps (8), so each chunk's actions ``d .. d + s - 1`` are the
ones executed; the policy returns ``horizon - n_obs_steps + 1`` (15) future actions so that they exist.
The first chunk is computed before the clock starts (as ``RobotClient`` does). Modes:

- ``naive``: switch to the new chunk the step it arrives;
- ``ensemble``: temporal ensembling (ACT): average every available chunk's action for the step,
  weights ``exp(-m i)`` with ``i = 0`` the oldest, ``m = 0.01``;
- ``rtc``: real-time chunking: the new chunk is inpainted from the actions the robot still had queued
  (``rtc_config``: LINEAR schedule, ``max_guidance_weight`` 10, execution horizon 10, i.e. the whole
  7-step overlap), then switched to as in ``naive``.

Per episode: success (coverage > 95% at any step), and the largest jump in the commanded position
(pixels, L2) at the steps a new chunk takes over (for ``ensemble``: joins the average); for scale,
the median step of the commanded position over all other steps. Episodes run side by side in one
vector env (seeds ``seed .. seed + n_seeds - 1``), so every mode sees the same initial states.

Usage::

    python benchmarks/rtc.py --policy_path=outputs/recipes/pusht_dp/checkpoints/last/pretrained_model \\
        [--n_seeds=50] [--delays_ms=0,100,300] [--modes=naive,ensemble,rtc] [--seed=1000]

SmolVLA (or any flow VLA) on the so100 language task: the chunk is the policy's ``chunk_size`` and a
new one is requested every ``n_action_steps``; the jump is in radians (L2 over the 6 joint targets),
and ``pc_wrong_cube`` counts episodes that lifted the cube the instruction did not name::

    python benchmarks/rtc.py --policy_path=outputs/recipes/pick_color_smolvla/checkpoints/last/pretrained_model \\
        --env=so100 --task=pick_color --out=benchmarks/results/rtc_smolvla_pick_color.json [--n_seeds=20]

Writes ``benchmarks/results/rtc.json`` (or ``--out``) and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")

from lerobot.async_inference.policy_server import load_policy  # noqa: E402
from lerobot.envs import make_env  # noqa: E402
from lerobot.envs.configs import PushtEnvConfig, resolve_env_config  # noqa: E402
from lerobot.envs.utils import preprocess_observation  # noqa: E402
from lerobot.policies.rtc.configuration_rtc import RTCConfig  # noqa: E402

ENSEMBLE_M = 0.01


def rollout(policy, env, seeds: list[int], mode: str, delay: int, stride: int, max_steps: int) -> dict:
    """One batch of episodes (one per seed) under ``mode``, ``delay`` control steps of inference and a
    new chunk every ``stride`` steps."""
    cfg = policy.config
    n = len(seeds)
    obs, _ = env.reset(seed=seeds)
    frame = preprocess_observation(obs)
    history = [frame] * cfg.n_obs_steps
    chunks: list[tuple[int, int, np.ndarray]] = []  # (start step, usable from step, (B, T, A))
    inference_s: list[float] = []

    def request(t: int, prefix: np.ndarray | None) -> None:
        # Tensors stacked over the observation steps (a policy of one step takes the frame as it is);
        # the instruction (a list of strings) is the latest.
        stacked = history[-1]
        if len(history) > 1:
            stacked = {
                k: torch.stack([h[k] for h in history], dim=1) if isinstance(v, torch.Tensor) else v
                for k, v in history[-1].items()
            }
        kwargs = {}
        if prefix is not None:
            kwargs = {"inference_delay": delay, "prev_chunk_left_over": torch.from_numpy(prefix)}
        started = time.perf_counter()
        chunk = policy.predict_action_chunk(stacked, **kwargs).numpy()
        inference_s.append(time.perf_counter() - started)
        chunks.append((t, t if not chunks else t + delay, chunk))

    done = np.zeros(n, dtype=bool)
    success = np.zeros(n, dtype=bool)
    wrong_cube = np.zeros(n, dtype=bool)
    prev_action = None
    switch_jump = np.zeros(n)
    other_steps: list[np.ndarray] = []
    request(0, None)
    for t in range(max_steps):
        if t > 0 and t % stride == 0:
            start, _, active = chunks[-1]  # usable since t - stride + delay <= t
            prefix = active[:, t - start :] if mode == "rtc" else None
            request(t, prefix)
        usable = [c for c in chunks if c[1] <= t and t - c[0] < c[2].shape[1]]
        if mode == "ensemble":
            weights = np.exp(-ENSEMBLE_M * np.arange(len(usable)))
            action = sum(w * c[2][:, t - c[0]] for w, c in zip(weights, usable)) / weights.sum()
        else:
            start, _, chunk = usable[-1]
            action = chunk[:, t - start]
        switched = t > 0 and any(c[1] == t for c in chunks[1:])
        if prev_action is not None:
            step = np.linalg.norm(action - prev_action, axis=-1)
            if switched:
                switch_jump = np.where(done, switch_jump, np.maximum(switch_jump, step))
            else:
                other_steps.append(step[~done])
        prev_action = action
        obs, _, terminated, truncated, info = env.step(action)
        success |= np.asarray(info.get("is_success", np.zeros(n, dtype=bool)), dtype=bool) & ~done
        wrong_cube |= np.asarray(info.get("wrong_cube_lifted", np.zeros(n, dtype=bool)), dtype=bool) & ~done
        done |= terminated | truncated
        history = [*history[1:], preprocess_observation(obs)]
        if done.all():
            break
    return {
        "success": success.tolist(),
        "wrong_cube_lifted": wrong_cube.tolist(),
        "max_switch_jump": switch_jump.tolist(),
        "median_other_step": float(np.median(np.concatenate(other_steps))) if other_steps else 0.0,
        "inference_ms": 1e3 * float(np.mean(inference_s)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--policy_path", required=True)
    parser.add_argument("--n_seeds", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--delays_ms", default="0,100,300")
    parser.add_argument("--modes", default="naive,ensemble,rtc")
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--env", default="pusht", help="pusht (state observations) or so100")
    parser.add_argument("--task", default=None, help="the env's task, e.g. pick_color for --env=so100")
    parser.add_argument("--instruction", default="random", help="so100 pick_color: random, red or blue")
    parser.add_argument(
        "--rtc",
        default="{}",
        help='RTCConfig fields for the rtc mode, as JSON: {"prefix_attention_schedule": "ZEROS"}',
    )
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "rtc.json"))
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))

    policy = load_policy(args.policy_path)
    cfg = policy.config
    stride = cfg.n_action_steps  # s: steps between requests (8 in the recipe)
    # Every predicted future action is returned: Diffusion's horizon past the observations, a VLA's chunk.
    horizon = cfg.horizon - cfg.n_obs_steps + 1 if hasattr(cfg, "horizon") else cfg.chunk_size
    cfg.n_action_steps = horizon
    if args.env == "pusht":
        env_cfg = PushtEnvConfig(obs_type="state")
        unit = "px"  # the commanded pusher position on the 512 x 512 board
    else:
        overrides = {"task": args.task} if args.task else {}
        if args.instruction != "random":
            overrides["instruction"] = args.instruction
        env_cfg = resolve_env_config(args.env, **overrides)
        unit = "rad"  # joint-position targets: the jump is the L2 norm over the arm's joints
    env = make_env(env_cfg, n_envs=args.n_seeds)
    seeds = list(range(args.seed, args.seed + args.n_seeds))
    results = []
    try:
        for delay_ms in [int(d) for d in args.delays_ms.split(",")]:
            delay = round(delay_ms * env_cfg.fps / 1000)
            for mode in args.modes.split(","):
                cfg.rtc_config = RTCConfig(**json.loads(args.rtc)) if mode == "rtc" else None
                torch.manual_seed(0)
                started = time.perf_counter()
                r = rollout(policy, env, seeds, mode, delay, stride, args.max_steps)
                jumps = np.array(r.pop("max_switch_jump"))
                r[f"max_switch_jump_{unit}"] = jumps.tolist()
                r[f"median_other_step_{unit}"] = r.pop("median_other_step")
                results.append({
                    "mode": mode, "delay_ms": delay_ms, "delay_steps": delay, "n_episodes": len(seeds),
                    "pc_success": 100 * float(np.mean(r["success"])),
                    "pc_wrong_cube": 100 * float(np.mean(r["wrong_cube_lifted"])),
                    f"mean_max_switch_jump_{unit}": float(jumps.mean()),
                    f"worst_switch_jump_{unit}": float(jumps.max()),
                    f"median_other_step_{unit}": r[f"median_other_step_{unit}"],
                    "inference_ms": r["inference_ms"], "wall_s": time.perf_counter() - started, "per_episode": r,
                })  # fmt: skip
                last = results[-1]
                print(
                    f"{mode:8s} {delay_ms:3d} ms: success {last['pc_success']:.0f}%, switch jump mean "
                    f"{last[f'mean_max_switch_jump_{unit}']:.3f} {unit}, worst "
                    f"{last[f'worst_switch_jump_{unit}']:.3f} {unit}, other steps "
                    f"{last[f'median_other_step_{unit}']:.3f} {unit}, {last['wall_s']:.0f} s",
                    flush=True,
                )
    finally:
        env.close()
    meta = {
        "policy_path": args.policy_path, "env": env_cfg.type, "env_task": getattr(env_cfg, "task", None),
        "seeds": seeds, "fps": env_cfg.fps, "stride": stride, "unit": unit, "horizon": horizon, "rtc_config": json.loads(args.rtc), "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0], "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }  # fmt: skip
    Path(args.out).write_text(json.dumps({"meta": meta, "runs": results}, indent=1))
    print(
        f"\n| delay | mode | success | switch jump, mean of episode max ({unit}) | worst ({unit}) | "
        f"median other step ({unit}) | inference ms |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['delay_ms']} ms ({r['delay_steps']} steps) | {r['mode']} | {r['pc_success']:.0f}% | "
            f"{r[f'mean_max_switch_jump_{unit}']:.3g} | {r[f'worst_switch_jump_{unit}']:.3g} | "
            f"{r[f'median_other_step_{unit}']:.3g} | {r['inference_ms']:.0f} |"
        )


if __name__ == "__main__":
    main()
