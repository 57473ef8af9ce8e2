"""LeKiwi: SO-100 arm on a three-wheel omni base; ``lekiwi`` on the robot, ``lekiwi_client`` on a laptop."""

from lerobot.robots.lekiwi.config import LeKiwiClientConfig, LeKiwiConfig
from lerobot.robots.lekiwi.kinematics import OmniBase
from lerobot.robots.lekiwi.lekiwi import LeKiwi
from lerobot.robots.lekiwi.lekiwi_client import LeKiwiClient

__all__ = ["LeKiwi", "LeKiwiClient", "LeKiwiClientConfig", "LeKiwiConfig", "OmniBase"]
