"""Training-step time and inference latency of ACT and Diffusion Policy on CPU, against the reference.

Why: on a laptop-class CPU the policy's own compute bounds how many training steps fit in the
README's 15-minute demo and whether inference keeps up with a 30 Hz control loop. The reference
(Hugging Face LeRobot 0.6.1, measured on this machine kind with 2 torch threads) takes
ACT 0.42 s/step and 27 ms per action chunk, Diffusion 0.33 s/step and 97 ms.

Workloads (fp32 throughout; batch 8 for training, batch 1 for inference):

- ACT: dim_model 256, chunk_size 20, resnet18 without pretrained weights, one 96x96 camera + 6-D
  state, 6-D action; train step = forward + backward + AdamW step; inference = a fresh chunk
  (``predict_action_chunk``) every call, i.e. the worst-case ``select_action``.
- Diffusion: 96x96 camera cropped to 84x84, 6-D state and action, down_dims [64, 128, 256],
  horizon 16, n_obs_steps 2, n_action_steps 8, 10 DDIM inference steps; train step uses the
  policy's Adam preset.

Each number is the median of ``--repeats`` timed calls after ``--warmup`` untimed ones; min/max and
the load average are kept because the 2-core machine is shared with other work.

Usage::

    .venv/bin/python benchmarks/policies.py              # writes benchmarks/results/policies.json
    .venv/bin/python benchmarks/policies.py --quick      # smoke run, results to results/tmp/
    .venv/bin/python benchmarks/policies.py --profile    # torch.profiler tables of the hot paths
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared cores: sleep at OpenMP barriers, do not spin

import torch

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.optim.optimizers import OptimizerConfig, resolve_optimizer
from lerobot.optim.optimizers import make_optimizer as build_optimizer
from lerobot.policies.act import ACTConfig
from lerobot.policies.diffusion import DiffusionConfig
from lerobot.policies.factory import get_policy_class

RESULTS = Path(__file__).parent / "results"
REFERENCE = {  # Hugging Face LeRobot 0.6.1, same workloads, same machine kind, 2 threads
    "act": {"train_step_s": 0.42, "inference_ms": 27.0},
    "diffusion": {"train_step_s": 0.33, "inference_ms": 97.0},
}
BATCH, IMAGE, STATE_DIM, ACTION_DIM = 8, (3, 96, 96), 6, 6


def features() -> tuple[dict[str, PolicyFeature], dict[str, PolicyFeature]]:
    inputs = {
        "observation.images.top": PolicyFeature(FeatureType.VISUAL, IMAGE),
        "observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
    }
    return inputs, {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}


def make_config(name: str) -> ACTConfig | DiffusionConfig:
    inputs, outputs = features()
    common = {"input_features": inputs, "output_features": outputs, "device": "cpu"}
    if name == "act":
        return ACTConfig(
            **common, dim_model=256, chunk_size=20, n_action_steps=20, pretrained_backbone_weights=None
        )
    return DiffusionConfig(
        **common,
        crop_shape=(84, 84),
        down_dims=(64, 128, 256),
        horizon=16,
        n_obs_steps=2,
        n_action_steps=8,
        noise_scheduler_type="DDIM",
        num_inference_steps=10,
        pretrained_backbone_weights=None,
    )


def make_stats(config: Any) -> dict[str, dict[str, torch.Tensor]]:
    stats = {}
    for name, ft in {**config.input_features, **config.output_features}.items():
        shape = (ft.shape[0], 1, 1) if ft.type is FeatureType.VISUAL else ft.shape
        stats[name] = {
            "mean": torch.full(shape, 0.5),
            "std": torch.full(shape, 0.25),
            "min": torch.full(shape, -1.0),
            "max": torch.full(shape, 1.0),
        }
    return stats


def make_batch(config: Any, batch_size: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    obs_steps = (config.n_obs_steps,) if config.type == "diffusion" else ()
    chunk = config.horizon if config.type == "diffusion" else config.chunk_size
    batch = {
        name: torch.rand((batch_size, *obs_steps, *ft.shape), generator=gen)
        for name, ft in config.input_features.items()
    }
    batch["action"] = torch.rand((batch_size, chunk, ACTION_DIM), generator=gen) * 2 - 1
    batch["action_is_pad"] = torch.zeros(batch_size, chunk, dtype=torch.bool)
    return batch


def make_optimizer(policy: Any) -> torch.optim.Optimizer:
    """The optimiser ``lerobot-train`` builds: the policy's preset (fused Adam/AdamW on CPU)."""
    settings = resolve_optimizer(OptimizerConfig(), policy.config.get_optimizer_preset())
    return build_optimizer(policy.get_optim_params(), settings)


def timed(fn: Callable[[], Any], warmup: int, repeats: int) -> dict[str, float]:
    """Wall-clock median/min/max, plus the median CPU time of this process (all threads).

    On a shared machine wall time mostly measures the neighbours; CPU time is the work we did.
    """
    for _ in range(warmup):
        fn()
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "median": statistics.median(times),
        "min": min(times),
        "max": max(times),
        "cpu": statistics.median(cpu),
    }


def bench_policy(name: str, warmup: int, repeats: int) -> dict[str, Any]:
    config = make_config(name)
    torch.manual_seed(0)
    policy = get_policy_class(name)(config, dataset_stats=make_stats(config))
    n_params = sum(p.numel() for p in policy.parameters())
    optimizer = make_optimizer(policy)
    batch = make_batch(config, BATCH)

    def train_step() -> None:
        policy.train()
        loss = policy(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    train = timed(train_step, warmup, repeats)
    policy.eval()
    observation = {k: v[0] for k, v in make_batch(config, 1).items() if k in config.input_features}
    if name == "diffusion":  # one frame per call: the observation history fills as at run time
        observation = {k: v[0] for k, v in observation.items()}

    def infer() -> None:
        policy.predict_action_chunk(observation)

    inference = timed(infer, warmup, repeats * 2)
    return {
        "params": n_params,
        "train_step_s": train["median"],
        "train_step_s_min": train["min"],
        "train_step_s_max": train["max"],
        "train_step_cpu_s": train["cpu"],
        "inference_ms": inference["median"] * 1e3,
        "inference_ms_min": inference["min"] * 1e3,
        "inference_ms_max": inference["max"] * 1e3,
        "inference_cpu_ms": inference["cpu"] * 1e3,
        "repeats": repeats,
    }


def profile(name: str) -> None:
    from torch.profiler import profile as torch_profile

    config = make_config(name)
    policy = get_policy_class(name)(config, dataset_stats=make_stats(config))
    optimizer = make_optimizer(policy)
    batch = make_batch(config, BATCH)
    for _ in range(2):
        policy(batch)["loss"].backward()
    with torch_profile() as prof:
        for _ in range(3):
            loss = policy(batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    print(f"## {name} train step\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| policy | train step (s) | reference | speed-up | CPU s/step | inference (ms) | reference | speed-up "
        "| CPU ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, ours in results["policies"].items():
        ref = REFERENCE[name]
        rows.append(
            f"| {name} | {ours['train_step_s']:.3f} | {ref['train_step_s']:.2f} | "
            f"{ref['train_step_s'] / ours['train_step_s']:.2f}x | {ours['train_step_cpu_s']:.3f} | "
            f"{ours['inference_ms']:.1f} | {ref['inference_ms']:.0f} | "
            f"{ref['inference_ms'] / ours['inference_ms']:.2f}x | {ours['inference_cpu_ms']:.1f} |"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few repeats; results to results/tmp/")
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables and exit")
    parser.add_argument("--policies", default="act,diffusion")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    names = args.policies.split(",")
    if args.profile:
        for name in names:
            profile(name)
        return 0
    warmup, repeats = (1, 3) if args.quick else (args.warmup, args.repeats)
    load_before = os.getloadavg()
    policies = {name: bench_policy(name, warmup, repeats) for name in names}
    results = {
        "benchmark": "policies",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "note": (
                "2-core machine shared with other jobs during the run (see load averages): wall times "
                "are inflated by the neighbours; *_cpu_* is this process's CPU time (both threads)"
            ),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        },
        "settings": {
            "dtype": "float32",
            "optimizer": "policy preset as lerobot-train builds it (ACT: AdamW, Diffusion: Adam; fused kernel)",
            "inference": "predict_action_chunk (fresh chunk every call), batch 1",
            "train_batch": BATCH,
        },
        "policies": policies,
        "reference_lerobot_0_6_1": REFERENCE,
    }
    out_dir = RESULTS / "tmp" if args.quick else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "policies.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(path)
    print(markdown(results))
    print(f"\nload average before/after: {load_before} / {os.getloadavg()}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
