"""Compatibility alias of :mod:`lerobot.policies.diffusion.modeling_diffusion`."""

from lerobot.policies.diffusion.modeling_diffusion import (
    EMA,
    DiffusionConditionalUnet1d,
    DiffusionModel,
    DiffusionPolicy,
    DiffusionRgbEncoder,
    SpatialSoftmax,
)

__all__ = [
    "EMA",
    "DiffusionConditionalUnet1d",
    "DiffusionModel",
    "DiffusionPolicy",
    "DiffusionRgbEncoder",
    "SpatialSoftmax",
]
