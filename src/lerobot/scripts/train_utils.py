"""The training loop's plumbing: data order that survives a restart, checkpoints, several processes.

Checkpoint layout (LeRobot 0.6's, so its tools read ours)::

    <output_dir>/checkpoints/<step:06d>/pretrained_model/   config.json, model.safetensors, processor files,
                                                            train_config.json
    <output_dir>/checkpoints/<step:06d>/training_state/     optimizer_state.safetensors, optimizer_param_groups.json,
                                                            scheduler_state.json, rng_state.safetensors,
                                                            training_step.json (+ ema_state.safetensors and
                                                            live_model.safetensors for a policy with an EMA)
    <output_dir>/checkpoints/last -> <step:06d>             relative symlink (a copy where links are refused)

A checkpoint is written into a hidden temporary folder and renamed into place, so an interrupted save
never leaves a half checkpoint behind ``last``.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lerobot.optim.optimizers import load_optimizer_state, save_optimizer_state
from lerobot.optim.schedulers import load_scheduler_state, save_scheduler_state
from lerobot.policies.config import PreTrainedConfig
from lerobot.scripts.train_config import (
    CHECKPOINTS_DIR,
    LAST_CHECKPOINT,
    PRETRAINED_DIR,
    TRAINING_STATE_DIR,
    TrainPipelineConfig,
)
from lerobot.utils.random_utils import RNG_FILE, load_rng_state, save_rng_state

STEP_FILE = "training_step.json"
SCALER_FILE = "grad_scaler.json"
EMA_FILE = "ema_state.safetensors"
LIVE_WEIGHTS_FILE = "live_model.safetensors"


# ---- data ---------------------------------------------------------------------------------------
class ResumableShuffleSampler(torch.utils.data.Sampler[int]):
    """An endless stream of dataset indices whose order is a function of (seed, position) only.

    Epoch ``e`` is a permutation of ``indices`` (the allowed sample starts) drawn from ``(seed, e)``;
    the streams of all processes interleave (process ``r`` of ``W`` takes global positions
    ``r, r + W, ...``), so a run restarted at global position ``start`` sees exactly the samples an
    uninterrupted run would have seen.
    """

    def __init__(self, indices: Sequence[int], seed: int, start: int = 0, rank: int = 0, world_size: int = 1):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.num_samples = len(self.indices)
        if self.num_samples < 1:
            raise ValueError("Cannot sample from an empty dataset.")
        self.seed, self.start = seed, start
        self.rank, self.world_size = rank, world_size

    def _permutation(self, epoch: int) -> np.ndarray:
        return self.indices[np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)]

    def __iter__(self) -> Iterator[int]:
        position = self.start + self.rank
        epoch, perm = -1, None
        while True:
            e, i = divmod(position, self.num_samples)
            if e != epoch:
                epoch, perm = e, self._permutation(e)
            yield int(perm[i])
            position += self.world_size

    def __len__(self) -> int:  # DataLoader asks; the stream itself never ends
        return self.num_samples


def delta_timestamps_for(
    policy_cfg: PreTrainedConfig, fps: int, features: dict[str, Any]
) -> dict[str, list[float]]:
    """Which past / future frames each sample carries, in seconds, from the policy's delta indices."""
    out: dict[str, list[float]] = {}
    for key in features:
        if key == "next.reward":
            indices = policy_cfg.reward_delta_indices
        elif key == "action":
            indices = policy_cfg.action_delta_indices
        elif key.startswith("observation."):
            indices = policy_cfg.observation_delta_indices
        else:
            continue
        if indices is not None:
            out[key] = [i / fps for i in indices]
    return out


def split_episodes(episodes: list[int], val_split: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, val) episode lists: ``val_split`` of the episodes, chosen by ``seed``, held out.

    No split when it would leave no val episode or fewer than two train episodes.
    """
    n_val = int(round(val_split * len(episodes)))
    if n_val < 1 or len(episodes) - n_val < 2:
        return list(episodes), []
    picked = set(np.random.default_rng(seed).choice(episodes, size=n_val, replace=False).tolist())
    return [e for e in episodes if e not in picked], sorted(picked)


# ---- several processes --------------------------------------------------------------------------
@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str) -> DistInfo:
    """Join the process group when launched by torchrun / accelerate (WORLD_SIZE > 1); gloo on CPU, nccl on CUDA."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo()
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if not dist.is_initialized():
        if device.startswith("cuda"):
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return info


def shard_with_fsdp(policy: torch.nn.Module) -> torch.nn.Module:
    """Shard ``policy`` in place over the process group (torch's FSDP2 ``fully_shard``).

    One unit per module that holds trainable parameters of its own and no submodules (Linear,
    Embedding, norms...), then the rest as the root unit. Units at the layer level would gather fewer,
    bigger pieces, but VLAs run their VLM and expert layers piece by piece (``layer.self_attn.q_proj(...)``
    without ``layer(...)``), which never triggers a layer unit's gather; a leaf's own forward always runs.
    """
    from torch.distributed.fsdp import fully_shard

    for module in policy.modules():
        own = list(module.parameters(recurse=False))
        if module is not policy and not list(module.children()) and any(p.requires_grad for p in own):
            fully_shard(module)
    fully_shard(policy)
    return policy


def is_fsdp(module: torch.nn.Module) -> bool:
    from torch.distributed.fsdp import FSDPModule

    return isinstance(module, FSDPModule)


def gather_fsdp_state(policy: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """The full model and optimizer state dicts from the shards (a collective: every rank calls it), in the
    layouts ``save_pretrained`` and ``save_optimizer_state`` write, so FSDP checkpoints match DDP's."""
    from torch.distributed.checkpoint.state_dict import (
        StateDictOptions,
        get_model_state_dict,
        get_optimizer_state_dict,
    )

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    weights = get_model_state_dict(policy, options=options)
    named = get_optimizer_state_dict(policy, optimizer, options=options)
    if not named:  # with cpu_offload only rank 0 receives the gathered tensors
        return weights, named
    # Parameter names -> the indices torch's own optimizer.state_dict() uses (order of the param groups).
    index: dict[str, int] = {}
    groups = []
    for group in named["param_groups"]:
        ids = [index.setdefault(name, len(index)) for name in group["params"]]
        groups.append({**group, "params": ids})
    state = {index[name]: value for name, value in named["state"].items()}
    return weights, {"state": state, "param_groups": groups}


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


# ---- checkpoints --------------------------------------------------------------------------------
def checkpoint_name(step: int, total_steps: int) -> str:
    return f"{step:0{max(6, len(str(total_steps)))}d}"


def rng_file(rank: int) -> str:
    return RNG_FILE if rank == 0 else f"rng_state_rank_{rank}.safetensors"


def save_checkpoint(
    cfg: TrainPipelineConfig,
    step: int,
    policy: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
    info: DistInfo,
) -> Path:
    """Write ``checkpoints/<step>`` (every process adds its RNG state) and point ``last`` at it."""
    root = Path(cfg.output_dir) / CHECKPOINTS_DIR
    final = root / checkpoint_name(step, cfg.steps)
    tmp = root / f".tmp_{final.name}"
    state_dir = tmp / TRAINING_STATE_DIR
    weights, optim_state = gather_fsdp_state(policy, optimizer) if is_fsdp(policy) else (None, None)
    if info.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        state_dir.mkdir(parents=True)
        adapter_only = cfg.peft is not None and cfg.peft.save_adapter_only
        policy.save_pretrained(tmp / PRETRAINED_DIR, weights=weights, adapter_only=adapter_only)
        cfg.save(tmp / PRETRAINED_DIR)
        save_optimizer_state(optimizer, state_dir, optim_state)
        save_scheduler_state(scheduler, state_dir)
        if scaler is not None and scaler.is_enabled():
            (state_dir / SCALER_FILE).write_text(json.dumps(scaler.state_dict(), indent=4))
        step_info = {
            "step": step,
            "num_processes": info.world_size,
            "batch_size": cfg.batch_size,
            "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        }
        (state_dir / STEP_FILE).write_text(json.dumps(step_info, indent=4))
        _save_ema(policy, state_dir)
    barrier(info)
    save_rng_state(state_dir / rng_file(info.rank))
    barrier(info)
    if info.is_main:
        if final.exists():
            shutil.rmtree(final)
        tmp.replace(final)
        _point_last_at(root, final.name)
    barrier(info)
    return final


def _save_ema(policy: Any, state_dir: Path) -> None:
    """A policy with an EMA (``policy.ema``) saves its averaged weights as ``pretrained_model``; a resumed
    run also needs the live weights and the average's state, so both go into ``training_state``."""
    ema = getattr(policy, "ema", None)
    if ema is None:
        return
    state = ema.state_dict()
    if state["shadow"] is not None:
        shadow = {k: v.detach().cpu().contiguous() for k, v in state["shadow"].items()}
        save_file(shadow, str(state_dir / EMA_FILE), metadata={"step": str(state["step"])})
    live = {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()}
    save_file(live, str(state_dir / LIVE_WEIGHTS_FILE))


def load_ema(checkpoint: Path, policy: Any) -> None:
    """Undo what loading ``pretrained_model`` did to an EMA policy: live weights back, average restored."""
    state_dir = checkpoint / TRAINING_STATE_DIR
    if getattr(policy, "ema", None) is None or not (state_dir / LIVE_WEIGHTS_FILE).is_file():
        return
    policy.load_state_dict(load_file(str(state_dir / LIVE_WEIGHTS_FILE), device=str(policy.device)))
    if (state_dir / EMA_FILE).is_file():
        with safe_open(str(state_dir / EMA_FILE), "pt", device=str(policy.device)) as f:
            step = int(f.metadata()["step"])
            shadow = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
        policy.ema.load_state_dict({"step": step, "shadow": shadow})


def _point_last_at(root: Path, name: str) -> None:
    last, tmp_link = root / LAST_CHECKPOINT, root / f".{LAST_CHECKPOINT}_tmp"
    tmp_link.unlink(missing_ok=True)
    try:
        tmp_link.symlink_to(name, target_is_directory=True)
    except OSError:  # no symlinks here (some Windows setups, some network drives): keep a copy instead
        shutil.rmtree(tmp_link, ignore_errors=True)
        shutil.copytree(root / name, tmp_link)
        if last.is_dir() and not last.is_symlink():
            shutil.rmtree(last)
    tmp_link.replace(last)


def load_training_state(
    checkpoint: Path,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    scaler: torch.amp.GradScaler | None,
) -> dict[str, Any]:
    """Restore optimizer, scheduler and grad scaler; returns ``training_step.json`` (RNG comes later)."""
    state_dir = checkpoint / TRAINING_STATE_DIR
    if not (state_dir / STEP_FILE).is_file():
        raise FileNotFoundError(f"{state_dir} has no {STEP_FILE}: not a training checkpoint.")
    load_optimizer_state(optimizer, state_dir)
    load_scheduler_state(scheduler, state_dir)
    if scaler is not None and scaler.is_enabled() and (state_dir / SCALER_FILE).is_file():
        scaler.load_state_dict(json.loads((state_dir / SCALER_FILE).read_text()))
    return json.loads((state_dir / STEP_FILE).read_text())


def load_rng(checkpoint: Path, info: DistInfo) -> None:
    """Each process continues its own random streams (a process the checkpoint lacks takes rank 0's)."""
    state_dir = checkpoint / TRAINING_STATE_DIR
    path = state_dir / rng_file(info.rank)
    load_rng_state(path if path.is_file() else state_dir / RNG_FILE)
