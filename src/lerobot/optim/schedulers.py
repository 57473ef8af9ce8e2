"""Learning-rate schedules as a factor on each parameter group's base lr: constant, cosine, one-cycle.

A policy declares its schedule as a typed preset (``ConstantSchedule``, ``CosineSchedule``,
``OneCycleSchedule``); ``--scheduler.*`` flags override it (:func:`resolve_scheduler`).

Constant and cosine may start with a linear warm-up. All are a ``LambdaLR`` over a pure function of the
step, so the scheduler state is three numbers (saved as ``scheduler_state.json``) and a resumed run
sees exactly the learning rates an uninterrupted one would. One-cycle anneals the learning rate only
(momentum stays as configured), as in Smith & Topin's schedule with cosine annealing.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch.optim.lr_scheduler import LambdaLR

from lerobot.optim.optimizers import override_preset
from lerobot.utils.registry import Registry

SCHEDULER_FILE = "scheduler_state.json"
SCHEDULE_PRESETS: Registry[type[SchedulePreset]] = Registry("scheduler")
# Names other libraries (and LeRobot's policy presets) use for the same schedules.
ALIASES = {
    "cosine_decay_with_warmup": "cosine",
    "diffuser": "cosine",
    "none": "constant",
    "one_cycle": "onecycle",
}


@dataclass(frozen=True)
class SchedulePreset:
    """A complete schedule: what a policy declares (``get_scheduler_preset()``) and training runs.

    One registered subclass per kind holds exactly the settings that kind reads.
    """

    type: ClassVar[str] = ""

    def lr_factor(self) -> Callable[[int], float]:
        """step -> multiplier of the base learning rate (step 0 is the first optimizer step)."""
        raise NotImplementedError


@SCHEDULE_PRESETS.register("constant")
@dataclass(frozen=True)
class ConstantSchedule(SchedulePreset):
    num_warmup_steps: int = 0
    """Steps of linear warm-up from lr/num_warmup_steps to lr."""

    def lr_factor(self) -> Callable[[int], float]:
        return self._after_warmup(lambda step: 1.0)

    def _after_warmup(self, then: Callable[[int], float]) -> Callable[[int], float]:
        warmup = int(self.num_warmup_steps)
        return lambda step: (step + 1) / warmup if step < warmup else then(step - warmup)


@SCHEDULE_PRESETS.register("cosine")
@dataclass(frozen=True)
class CosineSchedule(ConstantSchedule):
    num_decay_steps: int | None = None
    """Steps from the start over which the lr decays (None: the run's --steps)."""
    min_lr_ratio: float = 0.0
    """Final lr as a fraction of the peak."""

    def lr_factor(self) -> Callable[[int], float]:
        decay = max(1, int(self.num_decay_steps or 1) - int(self.num_warmup_steps))
        floor = float(self.min_lr_ratio)
        return self._after_warmup(lambda t: _cos_interp(1.0, floor, min(1.0, t / decay)))


@SCHEDULE_PRESETS.register("onecycle")
@dataclass(frozen=True)
class OneCycleSchedule(SchedulePreset):
    num_decay_steps: int | None = None
    """Length of the whole cycle (None: the run's --steps)."""
    pct_start: float = 0.3
    """Share of the steps spent rising."""
    div_factor: float = 25.0
    """The lr starts at lr/div_factor."""
    final_div_factor: float = 1e4
    """The lr ends at lr/(div_factor*final_div_factor)."""

    def lr_factor(self) -> Callable[[int], float]:
        total = max(1, int(self.num_decay_steps or 1))
        rise = max(1, int(self.pct_start * total))
        start = 1.0 / self.div_factor
        end = start / self.final_div_factor

        def onecycle(step: int) -> float:
            if step < rise:
                return _cos_interp(start, 1.0, step / rise)
            return _cos_interp(1.0, end, min(1.0, (step - rise) / max(1, total - rise)))

        return onecycle


def schedule_kind(name: str) -> type[SchedulePreset]:
    """The schedule class of a name, ours or another library's (``cosine_decay_with_warmup``)."""
    name = str(name).lower()
    return SCHEDULE_PRESETS.get(ALIASES.get(name, name))


@dataclass
class SchedulerConfig:
    """Overrides of the policy's scheduler preset; a field left at None keeps the preset's value."""

    type: str | None = None
    """constant | cosine (cosine decay after warm-up) | onecycle. Default: the policy's preset, else constant."""
    num_warmup_steps: int | None = None
    """constant, cosine: steps of linear warm-up from lr/num_warmup_steps to lr (default 0)."""
    num_decay_steps: int | None = None
    """cosine, onecycle: steps over which the lr decays (default: the run's --steps)."""
    min_lr_ratio: float | None = None
    """cosine: final lr as a fraction of the peak (default 0)."""
    pct_start: float | None = None
    """onecycle: share of the steps spent rising (default 0.3)."""
    div_factor: float | None = None
    """onecycle: the lr starts at lr/div_factor (default 25)."""
    final_div_factor: float | None = None
    """onecycle: the lr ends at lr/(div_factor*final_div_factor) (default 1e4)."""


def resolve_scheduler(
    cfg: SchedulerConfig, preset: SchedulePreset | None, total_steps: int
) -> SchedulePreset:
    """The policy's preset (default: ``ConstantSchedule()``) with the ``--scheduler.*`` overrides applied.

    ``--scheduler.type`` may switch the kind; the settings both kinds have carry over from the
    preset. An unset ``num_decay_steps`` becomes ``total_steps``.
    """
    preset = preset if preset is not None else ConstantSchedule()
    kind = schedule_kind(cfg.type) if cfg.type is not None else type(preset)
    out = kind(**override_preset(preset, kind, cfg, "scheduler"))
    if getattr(out, "num_decay_steps", 0) is None:
        out = dataclasses.replace(out, num_decay_steps=total_steps)
    return out


def lr_factor(resolved: SchedulePreset) -> Callable[[int], float]:
    """step -> multiplier of the base learning rate (step 0 is the first optimizer step)."""
    return resolved.lr_factor()


def _cos_interp(a: float, b: float, t: float) -> float:
    """From a (t=0) to b (t=1) along half a cosine."""
    return b + (a - b) * 0.5 * (1.0 + math.cos(math.pi * t))


def make_scheduler(optimizer: torch.optim.Optimizer, resolved: SchedulePreset) -> LambdaLR:
    return LambdaLR(optimizer, resolved.lr_factor())


def save_scheduler_state(scheduler: LambdaLR, directory: Path) -> None:
    state = {k: v for k, v in scheduler.state_dict().items() if k != "lr_lambdas"}
    (directory / SCHEDULER_FILE).write_text(json.dumps(state, indent=4))


def load_scheduler_state(scheduler: LambdaLR, directory: Path) -> None:
    state = json.loads((directory / SCHEDULER_FILE).read_text())
    scheduler.load_state_dict({**state, "lr_lambdas": [None] * len(scheduler.lr_lambdas)})
