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
    end_effector,
    hope_jr,
    koch_follower,
    lekiwi,
    myrobot,
    openarm,
    reachy2,
    so100_follower,
    unitree_g1,
)

# The simulated twins need the [sim] extra (MuJoCo): their configs parse anywhere, the robots load
# (and import MuJoCo) only when one is made.
from lerobot.robots.sim import config as _sim_configs  # noqa: E402, F401

for _name, _module in {
    "so100_sim": "so100_sim",
    "so101_sim": "so100_sim",
    "koch_sim": "koch_sim",
    "aloha_sim": "aloha_sim",
}.items():
    ROBOTS.register_lazy(_name, f"lerobot.robots.sim.{_module}", "pip install 'lerobot[sim]'")
