"""The optimizer: the policy's preset (``config.get_optimizer_preset()``) with any ``--optimizer.*`` overrides.

Checkpoint state uses LeRobot 0.6's files, so either library can resume the other's run:
``optimizer_state.safetensors`` holds the tensors of ``optimizer.state_dict()["state"]`` flattened
as ``state/<param_index>/<name>``, and ``optimizer_param_groups.json`` holds ``param_groups``.
Nothing is pickled.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors.torch import load_file, save_file

from lerobot.utils.registry import Registry

logger = logging.getLogger(__name__)
STATE_FILE = "optimizer_state.safetensors"
GROUPS_FILE = "optimizer_param_groups.json"
OPTIMIZER_PRESETS: Registry[type[OptimizerPreset]] = Registry("optimizer")


@dataclass(frozen=True)
class OptimizerPreset:
    """A complete optimizer setting: what a policy declares (``get_optimizer_preset()``) and training builds.

    One registered subclass per optimizer kind holds exactly the hyper-parameters that kind takes,
    so a preset cannot name an optimizer that does not exist or carry a setting it ignores.
    """

    lr: float = 1e-4
    """Learning rate of the main parameter group (groups may set their own)."""
    weight_decay: float = 0.0
    """Decoupled (adamw) or L2 (adam, sgd) weight decay."""
    grad_clip_norm: float = 10.0
    """Clip the global gradient norm to this before each update (<= 0: measure only)."""
    type: ClassVar[str] = ""

    def __post_init__(self) -> None:
        if not self.lr > 0:
            raise ValueError(f"The learning rate must be positive, got {self.lr}.")

    def build(self, params: list[Any]) -> torch.optim.Optimizer:
        raise NotImplementedError


@OPTIMIZER_PRESETS.register("adam")
@dataclass(frozen=True)
class AdamConfig(OptimizerPreset):
    betas: tuple[float, float] = (0.9, 0.999)
    """Decay rates of the gradient's running mean and of its square."""
    eps: float = 1e-8
    """Added to the denominator for numerical stability."""
    optimizer_class: ClassVar[type[torch.optim.Optimizer]] = torch.optim.Adam

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def build(self, params: list[Any]) -> torch.optim.Optimizer:
        """Adam/AdamW use PyTorch's fused kernel wherever it exists (float parameters on CPU or CUDA):
        the default multi-tensor path runs each elementwise op over every parameter in turn, a large
        share of a CPU training step for a 30 M-parameter ACT.
        """
        return self.optimizer_class(
            params,
            lr=self.lr,
            weight_decay=self.weight_decay,
            betas=self.betas,
            eps=self.eps,
            fused=_fused_kernel_fits(params),
        )


@OPTIMIZER_PRESETS.register("adamw")
@dataclass(frozen=True)
class AdamWConfig(AdamConfig):
    optimizer_class: ClassVar[type[torch.optim.Optimizer]] = torch.optim.AdamW


@OPTIMIZER_PRESETS.register("sgd")
@dataclass(frozen=True)
class SGDConfig(OptimizerPreset):
    momentum: float = 0.9
    """Share of the previous update kept in the next one."""

    def build(self, params: list[Any]) -> torch.optim.Optimizer:
        return torch.optim.SGD(params, lr=self.lr, weight_decay=self.weight_decay, momentum=self.momentum)


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


def resolve_optimizer(cfg: OptimizerConfig, preset: OptimizerPreset | None) -> OptimizerPreset:
    """The policy's preset (default: ``AdamWConfig()``) with the ``--optimizer.*`` overrides applied.

    ``--optimizer.type`` may switch the kind; the settings both kinds have (lr, weight decay,
    clipping) carry over from the preset.
    """
    preset = preset if preset is not None else AdamWConfig()
    kind = OPTIMIZER_PRESETS.get(cfg.type) if cfg.type is not None else type(preset)
    return kind(**override_preset(preset, kind, cfg, "optimizer"))


def override_preset(preset: Any, kind: type, overrides: Any, section: str) -> dict[str, Any]:
    """Keyword arguments of ``kind``: ``preset``'s values, then the non-None fields of ``overrides``.

    An override the kind has no field for is ignored with a warning (a saved run configured before
    it switched kinds still loads), as is a preset setting the new kind does not take.
    """
    names = {f.name for f in fields(kind)}
    given = {f.name: getattr(overrides, f.name) for f in fields(overrides) if f.name != "type"}
    given = {k: v for k, v in given.items() if v is not None}
    for name in sorted(set(given) - names):
        logger.warning("--%s.%s does not apply to the %s %s; ignored.", section, name, kind.type, section)
    carried = {f.name: getattr(preset, f.name) for f in fields(preset) if f.name in names}
    return {**carried, **{k: v for k, v in given.items() if k in names}}


def make_optimizer(params: Any, preset: OptimizerPreset) -> torch.optim.Optimizer:
    """``params`` is a list of tensors or of param-group dicts (groups may set their own ``lr``)."""
    params = [dict(p, params=list(p["params"])) if isinstance(p, dict) else p for p in params]
    return preset.build(params)


def _fused_kernel_fits(params: list[Any]) -> bool:
    tensors = [t for p in params for t in (p["params"] if isinstance(p, dict) else [p])]
    return bool(tensors) and all(t.device.type in ("cpu", "cuda") and t.is_floating_point() for t in tensors)


def save_optimizer_state(
    optimizer: torch.optim.Optimizer, directory: Path, state: dict | None = None
) -> None:
    """Write ``optimizer.state_dict()`` (or ``state``, the same layout gathered elsewhere, e.g. from FSDP shards)."""
    state = optimizer.state_dict() if state is None else state
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
