"""Robots: one ``Robot`` API for real arms and their simulated twins."""

from lerobot.robots.robot import (
    ROBOT_CONFIGS,
    ROBOTS,
    Robot,
    RobotConfig,
    RobotObservation,
    make_robot_from_config,
)

__all__ = ["ROBOT_CONFIGS", "ROBOTS", "Robot", "RobotConfig", "RobotObservation", "make_robot_from_config"]

# Built-in robots register themselves on import.
from lerobot.robots import (  # noqa: E402, F401
    hope_jr,
    koch_follower,
    lekiwi,
    myrobot,
    openarm,
    reachy2,
    so100_follower,
    unitree_g1,
)

try:  # the simulated twins need the [sim] extra (MuJoCo); real robots do not
    from lerobot.robots import sim  # noqa: E402, F401
except ImportError as e:
    import logging

    logging.getLogger(__name__).debug("Simulated robots unavailable (%s); pip install 'lerobot[sim]'.", e)
