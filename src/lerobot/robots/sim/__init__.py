"""Simulated twins of the real robots (MuJoCo): same ``Robot`` class, features and units, no hardware.

``so100_sim`` / ``so101_sim``, ``koch_sim``, ``aloha_sim``; see :mod:`lerobot.robots.sim.twin` for how
physics, cameras and threads work.
"""

from __future__ import annotations

from lerobot.robots.sim.config import (
    AlohaSimConfig,
    KochSimConfig,
    SimTwinConfig,
    SO100SimConfig,
    SO101SimConfig,
)
from lerobot.utils.lazy import lazy_attributes

# The twins import MuJoCo, so they load on first use; the configs above do not need it.
_TWINS = {
    "AlohaSim": f"{__name__}.aloha_sim",
    "KochSim": f"{__name__}.koch_sim",
    "SO100Sim": f"{__name__}.so100_sim",
    "SimTwin": f"{__name__}.twin",
}
__getattr__ = lazy_attributes(__name__, _TWINS)

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
