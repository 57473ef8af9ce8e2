"""The optimizer: the policy's preset (``config.get_optimizer_preset()``) with any ``--optimizer.*`` overrides.

Checkpoint state uses LeRobot 0.6's files, so either library can resume the other's run:
``optimizer_state.safetensors`` holds the tensors of ``optimizer.state_dict()["state"]`` flattened
as ``state/<param_index>/<name>``, and ``optimizer_param_groups.json`` holds ``param_groups``.
Nothing is pickled.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam, "sgd": torch.optim.SGD}
STATE_FILE = "optimizer_state.safetensors"
GROUPS_FILE = "optimizer_param_groups.json"


@dataclass
class OptimizerConfig:
    """Overrides of the policy's optimizer preset; a field left at None keeps the preset's value."""

    type: str | None = None
    """adamw | adam | sgd (default: the policy's preset, else adamw)."""
    lr: float | None = None
    """Learning rate of the main parameter group (guide: --training.learning_rate)."""
    weight_decay: float | None = None
    """Decoupled (adamw) or L2 (adam, sgd) weight decay."""
    betas: tuple[float, float] | None = None
    """adam/adamw: decay rates of the gradient's running mean and of its square, e.g. '[0.9, 0.999]'."""
    eps: float | None = None
    """adam/adamw: added to the denominator for numerical stability."""
    grad_clip_norm: float | None = None
    """Clip the global gradient norm to this (<= 0: measure only). Preset default 10."""


def resolve_optimizer(cfg: OptimizerConfig, preset: dict[str, Any] | None) -> dict[str, Any]:
    """Preset + overrides -> ``{"type", "lr", "weight_decay", "betas", "eps", "grad_clip_norm"}``."""
    out: dict[str, Any] = {
        "type": "adamw",
        "lr": 1e-4,
        "weight_decay": 0.0,
        "betas": (0.9, 0.999),
        "eps": 1e-8,
        "grad_clip_norm": 10.0,
    }
    out.update({k: v for k, v in (preset or {}).items() if v is not None})
    out.update({f.name: getattr(cfg, f.name) for f in fields(cfg) if getattr(cfg, f.name) is not None})
    if out["type"] not in OPTIMIZERS:
        raise ValueError(f"--optimizer.type={out['type']!r} is not one of {sorted(OPTIMIZERS)}.")
    if out["lr"] <= 0:
        raise ValueError(f"The learning rate must be positive, got {out['lr']}.")
    out["betas"] = tuple(out["betas"])
    return out


def make_optimizer(params: Any, resolved: dict[str, Any]) -> torch.optim.Optimizer:
    """``params`` is a list of tensors or of param-group dicts (groups may set their own ``lr``).

    Adam/AdamW use PyTorch's fused kernel wherever it exists (float parameters on CPU or CUDA):
    on CPU the default multi-tensor path runs each elementwise op over every parameter in turn and
    is about 10x slower, a large share of a training step for a 30 M-parameter ACT.
    """
    params = [dict(p, params=list(p["params"])) if isinstance(p, dict) else p for p in params]
    kind = resolved["type"]
    kwargs: dict[str, Any] = {"lr": resolved["lr"], "weight_decay": resolved["weight_decay"]}
    if kind == "sgd":
        kwargs["momentum"] = resolved.get("momentum", 0.9)
    else:
        kwargs.update(betas=resolved["betas"], eps=resolved["eps"], fused=_fused_kernel_fits(params))
    return OPTIMIZERS[kind](params, **kwargs)


def _fused_kernel_fits(params: list[Any]) -> bool:
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    return bool(tensors) and all(t.device.type in ("cpu", "cuda") and t.is_floating_point() for t in tensors)


def save_optimizer_state(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    state = optimizer.state_dict()
    tensors = {
        f"state/{index}/{name}": torch.as_tensor(value).detach().cpu().contiguous()
        for index, per_param in state["state"].items()
        for name, value in per_param.items()
    }
    save_file(tensors, str(directory / STATE_FILE))
    (directory / GROUPS_FILE).write_text(json.dumps(state["param_groups"], indent=4))


def load_optimizer_state(optimizer: torch.optim.Optimizer, directory: Path) -> None:
    """Restore what :func:`save_optimizer_state` wrote into an optimizer built the same way."""
    groups = json.loads((directory / GROUPS_FILE).read_text())
    current = optimizer.state_dict()["param_groups"]
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in current]:
        raise ValueError(
            f"{directory / GROUPS_FILE} describes parameter groups of sizes {[len(g['params']) for g in groups]} "
            f"but this policy has {[len(g['params']) for g in current]}: the checkpoint is of another model."
        )
    for group in groups:  # JSON turned tuples into lists; torch compares betas as tuples
        if isinstance(group.get("betas"), list):
            group["betas"] = tuple(group["betas"])
    per_param: dict[int, dict[str, torch.Tensor]] = {}
    for key, tensor in load_file(str(directory / STATE_FILE)).items():
        _, index, name = key.split("/", 2)
        per_param.setdefault(int(index), {})[name] = tensor
    optimizer.load_state_dict({"state": per_param, "param_groups": groups})
