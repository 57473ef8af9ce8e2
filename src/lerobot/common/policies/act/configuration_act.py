"""Compatibility alias of :mod:`lerobot.policies.act.configuration_act`."""

from lerobot.policies.act.configuration_act import ACTConfig

__all__ = ["ACTConfig"]
