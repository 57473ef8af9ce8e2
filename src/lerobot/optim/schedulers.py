"""Learning-rate schedules as a factor on each parameter group's base lr: constant, cosine, one-cycle.

Every schedule may start with a linear warm-up. All are a ``LambdaLR`` over a pure function of the
step, so the scheduler state is three numbers (saved as ``scheduler_state.json``) and a resumed run
sees exactly the learning rates an uninterrupted one would. One-cycle anneals the learning rate only
(momentum stays as configured), as in Smith & Topin's schedule with cosine annealing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch.optim.lr_scheduler import LambdaLR

SCHEDULER_FILE = "scheduler_state.json"
KINDS = ("constant", "cosine", "onecycle")
# Names other libraries (and LeRobot's policy presets) use for the same schedules.
ALIASES = {
    "cosine_decay_with_warmup": "cosine",
    "diffuser": "cosine",
    "none": "constant",
    "one_cycle": "onecycle",
}


@dataclass
class SchedulerConfig:
    """Overrides of the policy's scheduler preset; a field left at None keeps the preset's value."""

    type: str | None = None
    """constant | cosine (cosine decay after warm-up) | onecycle. Default: the policy's preset, else constant."""
    num_warmup_steps: int | None = None
    """Steps of linear warm-up from lr/num_warmup_steps to lr (default 0; onecycle uses pct_start)."""
    num_decay_steps: int | None = None
    """Steps over which cosine decays (default: the run's --steps)."""
    min_lr_ratio: float | None = None
    """cosine: final lr as a fraction of the peak (default 0)."""
    pct_start: float | None = None
    """onecycle: share of the steps spent rising (default 0.3)."""
    div_factor: float | None = None
    """onecycle: the lr starts at lr/div_factor (default 25)."""
    final_div_factor: float | None = None
    """onecycle: the lr ends at lr/(div_factor*final_div_factor) (default 1e4)."""


def resolve_scheduler(
    cfg: SchedulerConfig, preset: dict[str, Any] | None, total_steps: int
) -> dict[str, Any]:
    """Preset + overrides -> a complete schedule description (``type`` is one of :data:`KINDS`)."""
    out: dict[str, Any] = {
        "type": "constant",
        "num_warmup_steps": 0,
        "num_decay_steps": total_steps,
        "min_lr_ratio": 0.0,
        "pct_start": 0.3,
        "div_factor": 25.0,
        "final_div_factor": 1e4,
    }
    preset = dict(preset or {})
    if preset.get("type") == "diffuser" and preset.get("name", "cosine") != "cosine":
        preset["type"] = preset["name"]  # diffusers' "constant" (with warm-up) and friends
    out.update({k: v for k, v in preset.items() if k in out and v is not None})
    out.update({f.name: getattr(cfg, f.name) for f in fields(cfg) if getattr(cfg, f.name) is not None})
    out["type"] = ALIASES.get(str(out["type"]).lower(), str(out["type"]).lower())
    if out["type"] not in KINDS:
        raise ValueError(f"--scheduler.type={out['type']!r} is not one of {list(KINDS)}.")
    return out


def lr_factor(resolved: dict[str, Any]) -> Callable[[int], float]:
    """step -> multiplier of the base learning rate (step 0 is the first optimizer step)."""
    kind, warmup = resolved["type"], int(resolved["num_warmup_steps"])
    if kind == "onecycle":
        total = max(1, int(resolved["num_decay_steps"]))
        rise = max(1, int(resolved["pct_start"] * total))
        start = 1.0 / resolved["div_factor"]
        end = start / resolved["final_div_factor"]

        def onecycle(step: int) -> float:
            if step < rise:
                return _cos_interp(start, 1.0, step / rise)
            return _cos_interp(1.0, end, min(1.0, (step - rise) / max(1, total - rise)))

        return onecycle

    decay = max(1, int(resolved["num_decay_steps"]) - warmup)
    floor = float(resolved["min_lr_ratio"])

    def warmup_then(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if kind == "constant":
            return 1.0
        return _cos_interp(1.0, floor, min(1.0, (step - warmup) / decay))

    return warmup_then


def _cos_interp(a: float, b: float, t: float) -> float:
    """From a (t=0) to b (t=1) along half a cosine."""
    return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * t))


def make_scheduler(optimizer: torch.optim.Optimizer, resolved: dict[str, Any]) -> LambdaLR:
    return LambdaLR(optimizer, lr_factor(resolved))


def save_scheduler_state(scheduler: LambdaLR, directory: Path) -> None:
    state = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    (directory / SCHEDULER_FILE).write_text(json.dumps(state, indent=4))


def load_scheduler_state(scheduler: LambdaLR, directory: Path) -> None:
    state = json.loads((directory / SCHEDULER_FILE).read_text())
    scheduler.load_state_dict({**state, "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
