"""Optimizers and learning-rate schedules for training (typed presets a policy declares, overridden by
``--optimizer.*`` / ``--scheduler.*``), and their checkpoint state (safetensors + JSON)."""

from lerobot.optim.optimizers import (
    OPTIMIZER_PRESETS,
    AdamConfig,
    AdamWConfig,
    OptimizerConfig,
    OptimizerPreset,
    SGDConfig,
    load_optimizer_state,
    make_optimizer,
    resolve_optimizer,
    save_optimizer_state,
)
from lerobot.optim.schedulers import (
    SCHEDULE_PRESETS,
    ConstantSchedule,
    CosineSchedule,
    OneCycleSchedule,
    SchedulePreset,
    SchedulerConfig,
    load_scheduler_state,
    make_scheduler,
    resolve_scheduler,
    save_scheduler_state,
)

__all__ = [
    "OPTIMIZER_PRESETS",
    "SCHEDULE_PRESETS",
    "AdamConfig",
    "AdamWConfig",
    "ConstantSchedule",
    "CosineSchedule",
    "OneCycleSchedule",
    "OptimizerConfig",
    "OptimizerPreset",
    "SGDConfig",
    "SchedulePreset",
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
