"""Simulated twins of the real robots (MuJoCo): same ``Robot`` class, features and units, no hardware.

``so100_sim`` / ``so101_sim``, ``koch_sim``, ``aloha_sim``; see :mod:`lerobot.robots.sim.twin` for how
physics, cameras and threads work.
"""

from __future__ import annotations

import importlib
from typing import Any

from lerobot.robots.sim.config import (
    AlohaSimConfig,
    KochSimConfig,
    SimTwinConfig,
    SO100SimConfig,
    SO101SimConfig,
)

_TWINS = {"AlohaSim": "aloha_sim", "KochSim": "koch_sim", "SO100Sim": "so100_sim", "SimTwin": "twin"}

__all__ = [
    "AlohaSim",
    "AlohaSimConfig",
    "KochSim",
    "KochSimConfig",
    "SO100Sim",
    "SO100SimConfig",
    "SO101SimConfig",
    "SimTwin",
    "SimTwinConfig",
]


def __getattr__(name: str) -> Any:
    """The twins import MuJoCo, so they load on first use; the configs above do not need it."""
    if name in _TWINS:
        return getattr(importlib.import_module(f"{__name__}.{_TWINS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
