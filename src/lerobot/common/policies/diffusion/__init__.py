"""Compatibility alias of :mod:`lerobot.policies.diffusion`."""

from lerobot.policies.diffusion import DiffusionConfig, __getattr__  # noqa: F401

__all__ = ["DiffusionConfig", "DiffusionPolicy"]
