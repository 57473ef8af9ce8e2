"""Optimizers and learning-rate schedules for training, and their checkpoint state (safetensors + JSON)."""

from lerobot.optim.optimizers import (
    OptimizerConfig,
    load_optimizer_state,
    make_optimizer,
    resolve_optimizer,
    save_optimizer_state,
)
from lerobot.optim.schedulers import (
    SchedulerConfig,
    load_scheduler_state,
    make_scheduler,
    resolve_scheduler,
    save_scheduler_state,
)

__all__ = [
    "OptimizerConfig",
    "SchedulerConfig",
    "load_optimizer_state",
    "load_scheduler_state",
    "make_optimizer",
    "make_scheduler",
    "resolve_optimizer",
    "resolve_scheduler",
    "save_optimizer_state",
    "save_scheduler_state",
]
