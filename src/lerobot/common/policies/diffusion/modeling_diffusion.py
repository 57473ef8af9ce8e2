"""Compatibility alias of :mod:`lerobot.policies.diffusion.modeling_diffusion`."""

from lerobot.policies.backbones import SpatialSoftmax
from lerobot.policies.diffusion.modeling_diffusion import DiffusionModel, DiffusionPolicy
from lerobot.policies.diffusion.unet import DiffusionConditionalUnet1d
from lerobot.policies.diffusion.vision_encoder import DiffusionRgbEncoder
from lerobot.policies.ema import EMA

__all__ = [
    "EMA",
    "DiffusionConditionalUnet1d",
    "DiffusionModel",
    "DiffusionPolicy",
    "DiffusionRgbEncoder",
    "SpatialSoftmax",
]
