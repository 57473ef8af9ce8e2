"""Compatibility alias: the user guide still imports transforms from ``lerobot.common.datasets``."""

from lerobot.datasets.transforms import (
    AddGaussianNoise,
    ColorJitter,
    ImageTransformConfig,
    ImageTransforms,
    ImageTransformsConfig,
    RandomCrop,
    SharpnessJitter,
    make_transform_from_config,
)

__all__ = [
    "AddGaussianNoise",
    "ColorJitter",
    "ImageTransformConfig",
    "ImageTransforms",
    "ImageTransformsConfig",
    "RandomCrop",
    "SharpnessJitter",
    "make_transform_from_config",
]
