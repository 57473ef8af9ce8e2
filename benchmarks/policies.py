"""Training-step time and inference latency of ACT, Diffusion Policy, VQ-BeT, TD-MPC, SmolVLA, π0 and π0.5 on
CPU, beside the reference.

Both forms of our policies are timed: the stock modules, and with ``cpu_acceleration.accelerate``
(what the scripts apply on the CPU unless ``--cpu_acceleration=false``).

Why: on a laptop-class CPU the policy's own compute bounds how many training steps fit in the
README's 15-minute demo and whether inference keeps up with a 30 Hz control loop. The issue's
reference is Hugging Face LeRobot 0.6.1 with 2 torch threads (ACT 0.42 s/step and 27 ms per action
chunk, Diffusion 0.33 s/step and 97 ms, measured once on this machine kind). This 2-core host is
shared and its speed drifts by tens of percent within minutes, so a comparison is only fair when
both run in the same session: with ``--reference-python`` (an interpreter with LeRobot 0.6.1, see
``reference_lerobot.py``) each round times our stock code, our accelerated code and then the
reference, each in a fresh process, and the report takes the median over rounds of each side's
medians (and keeps each round).

Workloads (``policy_workloads.py``; fp32; batch 8 for training, batch 1 for inference):

- ACT: dim_model 256, chunk_size 20, resnet18 without pretrained weights, one 96x96 camera + 6-D
  state, 6-D action; train step = forward + backward + AdamW step; inference = a fresh chunk every
  call, i.e. the worst-case ``select_action``.
- Diffusion: 96x96 camera cropped to 84x84, 6-D state and action, down_dims [64, 128, 256],
  horizon 16, n_obs_steps 2, n_action_steps 8, 10 DDIM inference steps; train step uses the
  policy's Adam preset.
- VQ-BeT: the peer checkpoint's config (issue 21): 64x96 camera cropped to 56x84, resnet18, 6-D
  state and action, n_obs_steps 2, 3 action-query tokens, chunk 3, residual VQ 2 x 8 codes, GPT 2
  layers / 2 heads / dim 32; timed in the GPT phase (tokenizer marked trained), Adam preset with the
  tokenizer's own parameter group; inference = a fresh chunk every call from a one-frame update of
  the observation history.
- TD-MPC (``tdmpc``, ``tdmpc_mpc``; not in the default ``--policies``): the peer checkpoint's config
  (issue 21): 64x64 ``observation.image`` + 6-D state, 6-D action, latent 16, MLPs 32 wide, 3 Q heads,
  horizon 5; train step = the TD-MPC loss on batch-8 sequences of 5 steps + Adam; inference = a fresh
  action each call, from the policy prior (``tdmpc``, the checkpoint's ``use_mpc=false``) or planned by
  MPPI (``tdmpc_mpc``: 6 iterations of 512 Gaussian + 51 prior samples).
- SmolVLA (``smolvla``): the shared fixture checkpoint (``peer_smolvla_checkpoint``, which LeRobot 0.6.1
  wrote; both libraries load it): SmolVLM2's architecture cut to 4 text layers of width 64, expert width
  48, one 64x96 camera, 6-D state and action, chunk 10, 4 Euler steps, ``train_expert_only`` as saved.
  Raw samples with task strings in robot units: train step at batch 8 = tokenising + normalising +
  forward + backward + the AdamW preset (LeRobot: its saved preprocessor, then the policy); inference =
  ``reset`` + batch-1 ``select_action`` (a fresh chunk; LeRobot: preprocessor, ``select_action``,
  postprocessor). Skipped, with a note, when ../shared is absent.
- π0 and π0.5 (``pi0``, ``pi05``), ours only (LeRobot builds them only at 3B): the shared π0 fixture's
  tiny sizes (VLM width 64, expert width 32, 2 layers each, SigLIP 1 layer at 32 px, vocabulary 320,
  chunk 10, 4 Euler steps), one 96x96 camera + 6-D state, a byte-level tokenizer trained on a few
  sentences; train step at batch 8 (forward + backward + the AdamW preset), ``reset`` + batch-1
  ``select_action``.

Inference is timed in eval mode on both sides (after the training steps). Each number is the median of ``--repeats`` timed calls after ``--warmup`` untimed ones; min/max and
the load average are kept because the machine is shared with other work.

Usage::

    .venv/bin/python benchmarks/policies.py --reference-python /tmp/lerobot-ref/bin/python --rounds 5
    .venv/bin/python benchmarks/policies.py --policies smolvla,pi0,pi05 --reference-python ...  # the VLAs
    .venv/bin/python benchmarks/policies.py              # ours only, against the issue's numbers
    .venv/bin/python benchmarks/policies.py --quick      # smoke run, results to results/tmp/
    .venv/bin/python benchmarks/policies.py --profile    # torch.profiler tables of the hot paths
    .venv/bin/python benchmarks/policies.py --policies tdmpc,tdmpc_mpc --reference-python ...  # TD-MPC alone
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared cores: sleep at OpenMP barriers, do not spin

import torch

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.optim.optimizers import OptimizerConfig, resolve_optimizer
from lerobot.optim.optimizers import make_optimizer as build_optimizer
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.cpu_acceleration import accelerate
from lerobot.policies.factory import get_policy_class
from lerobot.policies.tdmpc import TDMPCConfig
from lerobot.utils.memory import reuse_freed_memory
from policy_workloads import (
    ACTION_DIM,
    BATCH,
    CAMERA,
    CONFIGS,
    IMAGE,
    OURS_ONLY,
    SMOLVLA_FIXTURE,
    STATE,
    STATE_DIM,
    TDMPC_IMAGE,
    TDMPC_IMAGE_SHAPE,
    THREADS,
    VLA_TASKS,
    VLAS,
    camera_shape,
    is_tdmpc,
    make_batch,
    make_observation,
    make_smolvla_batch,
    make_smolvla_observation,
    make_stats,
    mark_tokenizer_trained,
    measure,
    without_missing_fixtures,
)

RESULTS = Path(__file__).parent / "results"
ISSUE_REFERENCE = {  # Hugging Face LeRobot 0.6.1 as the issue quotes it (same workloads, 2 threads)
    "act": {"train_step_s": 0.42, "inference_ms": 27.0},
    "diffusion": {"train_step_s": 0.33, "inference_ms": 97.0},
}
VARIANTS = ("stock", "accelerated")
KEYS = ("train_step_s", "train_step_cpu_s", "inference_ms", "inference_cpu_ms")


def make_config(name: str) -> PreTrainedConfig:
    if is_tdmpc(name):
        return make_tdmpc_config(name)
    inputs = {
        CAMERA: PolicyFeature(FeatureType.VISUAL, camera_shape(name)),
        STATE: PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
    }
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}
    config_class = PreTrainedConfig.get_choice_class(name)
    return config_class(input_features=inputs, output_features=outputs, device="cpu", **CONFIGS[name])


# ---- TD-MPC --------------------------------------------------------------------------------------
def make_tdmpc_config(name: str) -> TDMPCConfig:
    """The fixture's TD-MPC: a 64x64 ``observation.image`` and 6-D state, 6-D action (see policy_workloads)."""
    inputs = {
        TDMPC_IMAGE: PolicyFeature(FeatureType.VISUAL, TDMPC_IMAGE_SHAPE),
        STATE: PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
    }
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}
    return TDMPCConfig(input_features=inputs, output_features=outputs, device="cpu", **CONFIGS[name])


# ---- every policy --------------------------------------------------------------------------------
def make_optimizer(policy: Any) -> torch.optim.Optimizer:
    """The optimiser ``lerobot-train`` builds: the policy's preset (fused Adam/AdamW on CPU)."""
    settings = resolve_optimizer(OptimizerConfig(), policy.config.get_optimizer_preset())
    return build_optimizer(policy.get_optim_params(), settings)


Workload = tuple[Any, Callable[[], None], Callable[[], Any]]  # policy, one train step, one inference call


def workload(name: str, accelerated: bool = False) -> Workload:
    """The benchmarked policy (seeded, optionally accelerated), one optimiser step on its batch, and one
    batch-1 inference call."""
    if name in VLAS:
        policy, batch, observation = vla_workload(name)

        def infer() -> Any:
            return fresh_chunk(policy, observation)

    else:
        config = make_config(name)
        torch.manual_seed(0)
        policy = get_policy_class(config.type)(config, dataset_stats=make_stats(config))
        if name == "vqbet":
            mark_tokenizer_trained(policy)
        batch = make_batch(name)
        observation = make_observation(name)  # one frame per call: Diffusion's history fills as at run time

        def infer() -> Any:
            return policy.predict_action_chunk(observation)

    if accelerated:
        accelerate(policy)
    optimizer = make_optimizer(policy)

    def train_step() -> None:
        policy.train()
        loss = policy(batch)["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return policy, train_step, infer


def vla_workload(name: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A vision-language-action policy (seeded), its training batch and one batch-1 observation with a task."""
    return smolvla_workload() if name == "smolvla" else tiny_vla_workload(name)


def fresh_chunk(policy: Any, observation: dict[str, Any]) -> Any:
    """A VLA's batch-1 inference call: ``reset`` + ``select_action`` (a fresh chunk, tokenising included)."""
    policy.reset()
    return policy.select_action(observation)


def smolvla_workload() -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The fixture checkpoint; raw samples (our policy tokenises and normalises them itself)."""
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    torch.manual_seed(0)
    policy = SmolVLAPolicy.from_pretrained(SMOLVLA_FIXTURE, device="cpu")
    return policy, make_smolvla_batch(), make_smolvla_observation()


def tiny_vla_workload(name: str) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """π0 / π0.5 at the π0 fixture's tiny sizes, with a byte-level tokenizer trained on a few sentences."""
    import tempfile

    from lerobot.policies.pi0 import PI0Config
    from lerobot.policies.pi05 import PI05Config
    from lerobot.policies.vla_common import load_tokenizer
    from pi_reference_roundtrip import SIZES, train_tokenizer

    inputs = {
        CAMERA: PolicyFeature(FeatureType.VISUAL, IMAGE),
        STATE: PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
    }
    outputs = {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}
    config = {"pi0": PI0Config, "pi05": PI05Config}[name](
        input_features=inputs,
        output_features=outputs,
        variant_sizes=SIZES,
        image_resolution=(32, 32),
        chunk_size=10,
        n_action_steps=10,
        max_state_dim=8,
        max_action_dim=8,
        num_inference_steps=4,
        tokenizer_max_length=48,
        device="cpu",
    )
    stats = make_stats(config)
    for feature in (STATE, "action"):
        stats[feature].update(q01=stats[feature]["min"], q99=stats[feature]["max"])
    torch.manual_seed(0)
    policy = get_policy_class(name)(config, dataset_stats=stats)
    with tempfile.TemporaryDirectory() as folder:
        policy.set_tokenizer(load_tokenizer(train_tokenizer(Path(folder) / "tokenizer")))
    gen = torch.Generator().manual_seed(0)
    batch = {
        CAMERA: torch.rand((BATCH, *IMAGE), generator=gen),
        STATE: torch.rand((BATCH, STATE_DIM), generator=gen),
        "action": torch.rand((BATCH, 10, ACTION_DIM), generator=gen) * 2 - 1,
        "task": [VLA_TASKS[0]] * BATCH,
    }
    observation = {CAMERA: batch[CAMERA][:1], STATE: batch[STATE][:1], "task": VLA_TASKS[0]}
    return policy, batch, observation


def bench_policy(name: str, warmup: int, repeats: int, accelerated: bool) -> dict[str, Any]:
    policy, train_step, infer = workload(name, accelerated)
    result = measure(train_step, infer, warmup, repeats)
    result["params"] = sum(p.numel() for p in policy.parameters())
    return result


def profile(name: str, accelerated: bool) -> None:
    from torch.profiler import profile as torch_profile

    _, train_step, _ = workload(name, accelerated)
    for _ in range(2):
        train_step()
    with torch_profile() as prof:
        for _ in range(3):
            train_step()
    print(f"## {name} train step\n")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))


def run_json(command: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One measuring process; its last stdout line is the JSON result."""
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_over_rounds(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    return {
        name: {key: statistics.median(run[name][key] for run in runs) for key in KEYS} for name in runs[0]
    }


def markdown(results: dict[str, Any]) -> str:
    measured = results.get("reference")
    rows = [
        "| policy | measure | stock | accelerated | LeRobot 0.6.1 | speed-up stock | speed-up accelerated |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in results["stock"]:
        ref = measured.get(name) if measured else ISSUE_REFERENCE.get(name)
        for key, label, digits in (
            ("train_step_s", "train step (s)", 3),
            ("inference_ms", "inference (ms)", 1),
        ):
            stock, fast = results["stock"][name][key], results["accelerated"][name][key]
            if (
                ref is None
            ):  # no figure for this policy: --reference-python, or one the reference cannot build
                rows.append(f"| {name} | {label} | {stock:.{digits}f} | {fast:.{digits}f} | - | - | - |")
                continue
            rows.append(
                f"| {name} | {label} | {stock:.{digits}f} | {fast:.{digits}f} | {ref[key]:.{digits}f} | "
                f"{ref[key] / stock:.2f}x | {ref[key] / fast:.2f}x |"
            )
    source = "LeRobot 0.6.1 measured in the same session" if measured else "the issue's LeRobot 0.6.1 figures"
    return "\n".join(rows) + f"\n\nreference: {source}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="few repeats, one round; results to results/tmp/"
    )
    parser.add_argument("--profile", action="store_true", help="print torch.profiler tables and exit")
    parser.add_argument("--policies", default="act,diffusion,vqbet,smolvla,pi0,pi05")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3, help="alternating measuring processes per side")
    parser.add_argument(
        "--reference-python", help="interpreter with LeRobot 0.6.1 (see reference_lerobot.py)"
    )
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)  # one measuring process
    parser.add_argument("--accelerated", action="store_true", help="with --profile: the accelerated policy")
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    names = without_missing_fixtures(args.policies.split(","))
    if args.profile:
        for name in names:
            profile(name, args.accelerated)
        return 0
    warmup, repeats, rounds = (1, 3, 1) if args.quick else (args.warmup, args.repeats, args.rounds)
    if args.worker:
        reuse_freed_memory()  # as lerobot-train runs
        accelerated = args.worker == "accelerated"
        print(json.dumps({name: bench_policy(name, warmup, repeats, accelerated) for name in names}))
        return 0

    here = Path(__file__).parent
    timing = ["--warmup", str(warmup), "--repeats", str(repeats)]
    common = ["--policies", ",".join(names), *timing]
    reference_names = [name for name in names if name not in OURS_ONLY]
    load_before = os.getloadavg()
    # The reference interpreter must import its own ``lerobot``, never ours through PYTHONPATH.
    reference_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ours_runs: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    reference_runs = []
    for round_index in range(rounds):
        for variant in VARIANTS:
            ours_runs[variant].append(
                run_json([sys.executable, str(here / "policies.py"), "--worker", variant, *common])
            )
        if args.reference_python and reference_names:
            command = [args.reference_python, str(here / "reference_lerobot.py"), "--policies"]
            reference_runs.append(run_json([*command, ",".join(reference_names), *timing], reference_env))
        print(f"round {round_index + 1}/{rounds} done", file=sys.stderr)
    results = {
        "benchmark": "policies",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": THREADS,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "note": "shared 2-core VM: wall times include the neighbours; *_cpu_* is the process's CPU time",
        },
        "settings": {
            "dtype": "float32",
            "optimizer": "policy preset: ours as lerobot-train builds it (fused kernel), the reference's own",
            "inference": "a fresh action chunk every call, batch 1, eval mode",
            "ours_only": [name for name in names if name in OURS_ONLY],
            "train_batch": BATCH,
            "warmup": warmup,
            "repeats": repeats,
            "rounds": rounds,
        },
        **{variant: median_over_rounds(runs) for variant, runs in ours_runs.items()},
        "reference": median_over_rounds(reference_runs) if reference_runs else None,
        "issue_reference_lerobot_0_6_1": ISSUE_REFERENCE,
        "runs": {**ours_runs, "reference": reference_runs},
    }
    out_dir = RESULTS / "tmp" if args.quick else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    # A subset of the policies (e.g. --policies tdmpc,tdmpc_mpc) gets its own file, beside the full table's.
    default = parser.get_default("policies")
    path = out_dir / (
        "policies.json" if args.policies == default else f"policies_{args.policies.replace(',', '_')}.json"
    )
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(path)
    print(markdown(results))
    print(f"\nload average before/after: {load_before} / {os.getloadavg()}; wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
