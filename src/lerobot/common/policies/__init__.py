"""Compatibility alias: ``lerobot.common.policies`` is :mod:`lerobot.policies` (older import paths)."""

from lerobot.policies import *  # noqa: F403
from lerobot.policies import __all__, __getattr__  # noqa: F401
