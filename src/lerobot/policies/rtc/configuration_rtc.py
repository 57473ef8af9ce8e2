"""``RTCConfig``: a policy config's ``rtc_config`` section (real-time chunking; see :mod:`.modeling_rtc`).

``rtc_config: null`` (the default everywhere) keeps a policy's ordinary sampling. A section turns
real-time chunking on for deployment (``lerobot-deploy --async_inference=true``, the async robot
client): ``--policy.rtc_config.execution_horizon=8`` or, in ``config.json``::

    "rtc_config": {"enabled": true, "prefix_attention_schedule": "LINEAR",
                   "max_guidance_weight": 10.0, "execution_horizon": 10, "debug": false, "debug_maxlen": 100}

Field names and defaults are LeRobot 0.6's. Training ignores the section. Importing this imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from lerobot.configs.types import RTCAttentionSchedule


@dataclass
class RTCConfig:
    """How the next chunk is inpainted from the actions already committed while it is computed."""

    enabled: bool = True
    """Guide each new chunk towards the previous one's remaining actions (False: plain sampling)."""
    prefix_attention_schedule: RTCAttentionSchedule = RTCAttentionSchedule.LINEAR
    """Weight of the previous chunk's actions past the inference delay: ZEROS (only the delay's
    actions), ONES (all of the overlap), LINEAR or EXP (fading to 0 at the end of the overlap)."""
    max_guidance_weight: float = 10.0
    """Upper clip of the guidance weight, which grows without bound near pure noise (beta in the paper)."""
    execution_horizon: int = 10
    """Steps of the new chunk, from its first, that are guided towards the previous chunk (the overlap)."""
    debug: bool = False
    """Record each denoising step's guidance weight and prefix error (``policy.rtc_debug``)."""
    debug_maxlen: int = 100
    """Denoising steps kept in that record (the oldest are dropped)."""

    def __post_init__(self) -> None:
        self.prefix_attention_schedule = RTCAttentionSchedule(self.prefix_attention_schedule)
        if not self.max_guidance_weight > 0:
            raise ValueError(f"rtc_config.max_guidance_weight must be > 0, got {self.max_guidance_weight}.")
        if self.execution_horizon < 1:
            raise ValueError(f"rtc_config.execution_horizon must be >= 1, got {self.execution_horizon}.")
        if self.debug_maxlen < 1:
            raise ValueError(f"rtc_config.debug_maxlen must be >= 1, got {self.debug_maxlen}.")
