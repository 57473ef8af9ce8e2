"""Compatibility alias of :mod:`lerobot.policies.act`."""

from lerobot.policies.act import ACTConfig, __getattr__  # noqa: F401

__all__ = ["ACTConfig", "ACTPolicy"]
