"""What the flow-matching VLA configs (SmolVLA, π0, π0.5) share beyond their fields.

A mixin of methods only: each config keeps declaring its own fields in the order its checkpoints'
``config.json`` lists them (which a shared dataclass base would change).
"""

from __future__ import annotations

from lerobot.optim.optimizers import AdamWConfig
from lerobot.optim.schedulers import CosineSchedule


class FlowVLAPresets:
    """One observation per step, an action chunk of ``chunk_size``, AdamW with a warm-up + cosine schedule.

    Mixed in before ``PreTrainedConfig``, whose ``adam_preset_from_fields`` makes the optimizer of the
    config's ``optimizer_*`` fields; the config supplies those, ``chunk_size`` and the ``scheduler_*`` fields.
    """

    chunk_size: int
    optimizer_lr: float
    scheduler_warmup_steps: int
    scheduler_decay_steps: int
    scheduler_decay_lr: float

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.chunk_size))

    def get_optimizer_preset(self) -> AdamWConfig:
        return self.adam_preset_from_fields(AdamWConfig)

    def get_scheduler_preset(self) -> CosineSchedule:
        """Linear warm-up, then cosine decay to ``scheduler_decay_lr``."""
        return CosineSchedule(
            num_warmup_steps=self.scheduler_warmup_steps,
            num_decay_steps=self.scheduler_decay_steps,
            min_lr_ratio=self.scheduler_decay_lr / self.optimizer_lr,
        )
