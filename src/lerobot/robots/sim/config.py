"""Configs of the simulated twins, importable without MuJoCo (``--robot.type=so100_sim`` parses anywhere).

The twins themselves (:mod:`lerobot.robots.sim.twin` and the per-robot modules) need the ``[sim]``
extra; :mod:`lerobot.robots` registers them lazily, so MuJoCo loads only when a twin is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot.cameras.sim import SimCameraConfig
from lerobot.robots.robot import ROBOT_CONFIGS, RobotConfig


@dataclass(kw_only=True)
class SimTwinConfig(RobotConfig):
    """Fields every twin has; ``cameras`` maps a view of the scene to its size and rate."""

    task: str = ""
    """The scene's task (twin-specific; empty: the twin's default)."""
    fps: int = 30
    """Control rate: each ``send_action`` advances the physics by ``1 / fps`` seconds."""
    realtime: bool = True
    """True: cameras render on their threads at their fps; False: every observation renders (see module)."""
    use_degrees: bool = True
    """Arm joints in degrees; False: -100..100 over each joint's range."""
    cameras: dict[str, SimCameraConfig] = field(default_factory=dict)


@ROBOT_CONFIGS.register("so100_sim")
@dataclass(kw_only=True)
class SO100SimConfig(SimTwinConfig):
    task: str = "pick_cube"
    """``pick_cube``, ``pick_place`` (``pick_and_place`` is accepted) or ``pick_color`` (language)."""


@ROBOT_CONFIGS.register("so101_sim")
@dataclass(kw_only=True)
class SO101SimConfig(SO100SimConfig):
    """The SO-101 twin: the same arm and scene."""


@ROBOT_CONFIGS.register("koch_sim")
@dataclass(kw_only=True)
class KochSimConfig(SimTwinConfig):
    task: str = "lift_cube"
    use_degrees: bool = False  # as koch_follower


@ROBOT_CONFIGS.register("aloha_sim")
@dataclass(kw_only=True)
class AlohaSimConfig(SimTwinConfig):
    task: str = "transfer_cube"
    fps: int = 50
