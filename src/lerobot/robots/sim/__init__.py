"""Simulated twins of the real robots (MuJoCo): same ``Robot`` class, features and units, no hardware.

``so100_sim`` / ``so101_sim``, ``koch_sim``, ``aloha_sim``; see :mod:`lerobot.robots.sim.twin` for how
physics, cameras and threads work.
"""

from lerobot.robots.sim.aloha_sim import AlohaSim, AlohaSimConfig
from lerobot.robots.sim.koch_sim import KochSim, KochSimConfig
from lerobot.robots.sim.so100_sim import SO100Sim, SO100SimConfig, SO101SimConfig
from lerobot.robots.sim.twin import SimTwin, SimTwinConfig

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
