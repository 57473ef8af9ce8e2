"""The workloads of ``policies.py``, shared with ``reference_lerobot.py``.

Plain torch, no ``lerobot`` import: the reference runner executes under Hugging Face LeRobot's own
interpreter, where ``lerobot`` is their package, and both runners must time exactly this.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

BATCH, IMAGE, STATE_DIM, ACTION_DIM = 8, (3, 96, 96), 6, 6
CAMERA, STATE = "observation.images.top", "observation.state"
THREADS = 2
CONFIGS: dict[str, dict[str, Any]] = {
    # fp32; ResNet18 without pretrained weights; one 96x96 camera + 6-D state, 6-D action.
    "act": {"dim_model": 256, "chunk_size": 20, "n_action_steps": 20, "pretrained_backbone_weights": None},
    "diffusion": {
        "crop_shape": (84, 84),
        "down_dims": (64, 128, 256),
        "horizon": 16,
        "n_obs_steps": 2,
        "n_action_steps": 8,
        "noise_scheduler_type": "DDIM",
        "num_inference_steps": 10,
        "pretrained_backbone_weights": None,
    },
}

# ---- VQ-BeT (issue 21): the peer fixture's config (shared/fixtures/wave2/peer_vqbet_checkpoint) ---------
# Its camera is 64x96 (cropped to 56x84); timed in the GPT phase (tokenizer marked trained, as there).
CONFIGS["vqbet"] = {
    "n_obs_steps": 2,
    "n_action_pred_token": 3,
    "action_chunk_size": 3,
    "crop_shape": (56, 84),
    "pretrained_backbone_weights": None,
    "use_group_norm": False,
    "spatial_softmax_num_keypoints": 8,
    "vqvae_n_embed": 8,
    "vqvae_embedding_dim": 16,
    "vqvae_enc_hidden_dim": 16,
    "gpt_block_size": 32,
    "gpt_input_dim": 32,
    "gpt_output_dim": 32,
    "gpt_n_layer": 2,
    "gpt_n_head": 2,
    "gpt_hidden_dim": 32,
}
IMAGES = {"vqbet": (3, 64, 96)}  # camera shape per policy where it is not IMAGE


def mark_tokenizer_trained(policy: Any) -> None:
    """VQ-BeT in its second (GPT) training phase, the one that runs for most of training and at inference:
    the same buffers in both libraries (their names are the checkpoint's)."""
    tokenizer = policy.vqbet.action_head.vqvae_model
    tokenizer.discretized.fill_(True)
    tokenizer.vq_layer.freeze_codebook.fill_(True)


# ---- TD-MPC (its own inputs: one square camera named observation.image, sequences with rewards) ----
TDMPC_IMAGE, TDMPC_IMAGE_SHAPE = "observation.image", (3, 64, 64)
# The fixture's config (../shared/fixtures/wave2/peer_tdmpc_checkpoint): "tdmpc" acts with the policy
# prior (use_mpc false, as saved); "tdmpc_mpc" is the same network planning with MPPI (the default
# 6 iterations of 512 Gaussian + 51 prior samples), which is what it costs to run TD-MPC on a robot.
_TDMPC_FIXTURE = {
    "latent_dim": 16, "mlp_dim": 32, "state_encoder_hidden_dim": 32, "image_encoder_hidden_dim": 8,
    "q_ensemble_size": 3, "horizon": 5, "n_action_repeats": 2, "n_action_steps": 1,
}  # fmt: skip
CONFIGS["tdmpc"] = {**_TDMPC_FIXTURE, "use_mpc": False}
CONFIGS["tdmpc_mpc"] = {**_TDMPC_FIXTURE, "use_mpc": True}


def is_tdmpc(name: str) -> bool:
    return name.startswith("tdmpc")


def make_tdmpc_batch(name: str, batch_size: int) -> dict[str, torch.Tensor]:
    """horizon + 1 frames, horizon actions in [-1, 1] and rewards per sample, no padding."""
    gen = torch.Generator().manual_seed(0)
    steps = CONFIGS[name]["horizon"]
    return {
        TDMPC_IMAGE: torch.rand((batch_size, steps + 1, *TDMPC_IMAGE_SHAPE), generator=gen),
        STATE: torch.rand((batch_size, steps + 1, STATE_DIM), generator=gen),
        "action": torch.rand((batch_size, steps, ACTION_DIM), generator=gen) * 2 - 1,
        "next.reward": torch.rand((batch_size, steps), generator=gen),
        **{f"{k}_is_pad": torch.zeros(batch_size, steps + 1, dtype=torch.bool) for k in (TDMPC_IMAGE, STATE)},
        **{
            f"{k}_is_pad": torch.zeros(batch_size, steps, dtype=torch.bool) for k in ("action", "next.reward")
        },
        "index": torch.arange(batch_size),  # the reference's forward reads the batch size from it
    }


# ---- vision-language-action policies (issue 20): raw samples with a task string, in robot units ------------
# SmolVLA is the shared fixture checkpoint (LeRobot 0.6.1 wrote it; both libraries load it): SmolVLM2's
# architecture cut to 4 text layers of width 64, expert width 48, chunk 10, 4 Euler steps, one 64x96 camera
# ``observation.images.front``, 6-D state and action, ``train_expert_only`` as saved. π0 / π0.5 are ours only
# (LeRobot builds them only at 3B), at the π0 fixture's tiny sizes (``policies.py``).
SMOLVLA_FIXTURE = (
    Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "wave2" / "peer_smolvla_checkpoint"
)
SMOLVLA_CAMERA, SMOLVLA_IMAGE, SMOLVLA_CHUNK = "observation.images.front", (3, 64, 96), 10
VLA_TASKS = ("pick up the red cube", "place the cube in the bin")
OURS_ONLY = ("pi0", "pi05")  # LeRobot 0.6.1 builds π0 / π0.5 only at 3B
VLAS = ("smolvla", *OURS_ONLY)


def without_missing_fixtures(names: list[str]) -> list[str]:
    """``names`` less SmolVLA when its fixture is absent (``../shared`` is not in every clone), said on stderr."""
    if "smolvla" in names and not SMOLVLA_FIXTURE.is_dir():
        print(f"smolvla skipped: its fixture {SMOLVLA_FIXTURE} is absent (../shared).", file=sys.stderr)
        return [name for name in names if name != "smolvla"]
    return names


def make_smolvla_batch(batch_size: int = BATCH) -> dict[str, Any]:
    """A training batch as the dataset yields it: state and action in robot units, images in [0, 1], tasks."""
    gen = torch.Generator().manual_seed(0)
    return {
        STATE: torch.rand(batch_size, STATE_DIM, generator=gen) * 4,
        SMOLVLA_CAMERA: torch.rand(batch_size, *SMOLVLA_IMAGE, generator=gen),
        "action": torch.rand(batch_size, SMOLVLA_CHUNK, ACTION_DIM, generator=gen) * 4,
        "task": [VLA_TASKS[i % 2] for i in range(batch_size)],
    }


def make_smolvla_observation() -> dict[str, Any]:
    """One control step: batch 1 and the instruction."""
    batch = make_smolvla_batch(1)
    return {STATE: batch[STATE], SMOLVLA_CAMERA: batch[SMOLVLA_CAMERA], "task": VLA_TASKS[0]}


# ---- shared by all workloads ------------------------------------------------------------------------------
def camera_shape(name: str) -> tuple[int, int, int]:
    return IMAGES.get(name, IMAGE)


def chunk_length(name: str) -> int:
    """Actions in one training sample."""
    config = CONFIGS[name]
    if name == "vqbet":
        return config["n_obs_steps"] + config["n_action_pred_token"] + config["action_chunk_size"] - 2
    return config["horizon"] if name == "diffusion" else config["chunk_size"]


def make_batch(name: str, batch_size: int = BATCH) -> dict[str, torch.Tensor]:
    """A training batch: observations in [0, 1] (with a history axis where the policy keeps one), actions
    in [-1, 1]."""
    if is_tdmpc(name):
        return make_tdmpc_batch(name, batch_size)
    gen = torch.Generator().manual_seed(0)
    history = (CONFIGS[name]["n_obs_steps"],) if "n_obs_steps" in CONFIGS[name] else ()
    chunk = chunk_length(name)
    return {
        CAMERA: torch.rand((batch_size, *history, *camera_shape(name)), generator=gen),
        STATE: torch.rand((batch_size, *history, STATE_DIM), generator=gen),
        "action": torch.rand((batch_size, chunk, ACTION_DIM), generator=gen) * 2 - 1,
        "action_is_pad": torch.zeros(batch_size, chunk, dtype=torch.bool),
    }


def make_observation(name: str) -> dict[str, torch.Tensor]:
    """One control step's observation, batch 1, a single frame (policies keep their own history)."""
    batch = make_batch(name, 1)
    if is_tdmpc(name):
        return {TDMPC_IMAGE: batch[TDMPC_IMAGE][:, 0], STATE: batch[STATE][:, 0]}
    if "n_obs_steps" in CONFIGS[name]:
        return {CAMERA: batch[CAMERA][:, -1], STATE: batch[STATE][:, -1]}
    return {CAMERA: batch[CAMERA], STATE: batch[STATE]}


def make_stats(config: Any) -> dict[str, dict[str, torch.Tensor]]:
    """The normalisation statistics both sides use, for every feature of a policy config of either library
    (a camera's are per channel, (C, 1, 1))."""
    stats = {}
    for name, ft in {**config.input_features, **config.output_features}.items():
        shape = (ft.shape[0], 1, 1) if getattr(ft.type, "value", ft.type) == "VISUAL" else tuple(ft.shape)
        stats[name] = {
            "mean": torch.full(shape, 0.5),
            "std": torch.full(shape, 0.25),
            "min": torch.full(shape, -1.0),
            "max": torch.full(shape, 1.0),
        }
    return stats


def timed(fn: Callable[[], Any], warmup: int, repeats: int) -> dict[str, float]:
    """Wall-clock median/min/max, plus the median CPU time of this process (all threads).

    On a shared machine wall time also measures the neighbours; CPU time is the work we did.
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


def measure(
    train_step: Callable[[], Any], infer: Callable[[], Any], warmup: int, repeats: int
) -> dict[str, float]:
    """Both timings of one policy, in the result schema both runners report."""
    train = timed(train_step, warmup, repeats)
    inference = timed(infer, warmup, repeats * 2)
    return {
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
