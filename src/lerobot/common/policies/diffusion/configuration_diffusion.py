"""Compatibility alias of :mod:`lerobot.policies.diffusion.configuration_diffusion`."""

from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

__all__ = ["DiffusionConfig"]
