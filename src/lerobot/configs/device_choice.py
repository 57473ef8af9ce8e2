"""``--robot.*`` or ``--teleop.*``: the one device a set-up tool (calibrate, setup-motors) works on."""

from __future__ import annotations

from dataclasses import dataclass

from lerobot.robots import RobotConfig, make_robot_from_config
from lerobot.teleoperators import TeleoperatorConfig, make_teleoperator_from_config
from lerobot.utils.device import Device

DEVICE_FLAG_ALIASES = {"robot_type": "robot.type", "teleop_type": "teleop.type"}


@dataclass
class OneDeviceConfig:
    robot: RobotConfig | None = None
    teleop: TeleoperatorConfig | None = None

    def make_device(self) -> Device:
        """The robot or teleoperator the flags describe (not connected yet)."""
        if (self.robot is None) == (self.teleop is None):
            raise ValueError("Choose exactly one device: --robot.type=... or --teleop.type=...")
        if self.robot is not None:
            return make_robot_from_config(self.robot)
        return make_teleoperator_from_config(self.teleop)
