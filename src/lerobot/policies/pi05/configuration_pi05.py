"""π0.5 configuration (Physical Intelligence 2025, "π0.5: a Vision-Language-Action Model with Open-World
Generalization", https://arxiv.org/abs/2504.16054).

The fields are π0's (:class:`~lerobot.policies.pi0.configuration_pi0.PaliGemmaVLAConfig`, including
``variant_sizes``); LeRobot 0.6's π0.5 differs only in its defaults: quantile normalisation of state and
action (``q01``/``q99`` -> [-1, 1], which the discretised state in the prompt relies on) and a longer
prompt (``tokenizer_max_length=200``) that holds the state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot.configs.types import NormalizationMode
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.pi0.configuration_pi0 import PaliGemmaVLAConfig


@PreTrainedConfig.register_subclass("pi05")
@dataclass
class PI05Config(PaliGemmaVLAConfig):
    """π0.5: π0's two experts; the state is written into the prompt, the time enters the expert's norms."""

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.QUANTILES,
            "ACTION": NormalizationMode.QUANTILES,
        }
    )
    """How each feature type is normalised (quantiles: q01 -> -1, q99 -> 1)."""
    tokenizer_max_length: int = 200
    """Prompt tokens: the task and the discretised state (padded or truncated to this length)."""
