"""``lerobot-setup-motors``: give each motor of an arm its id and the bus baud rate, one at a time.

    lerobot-setup-motors --robot.type=so100_follower --robot.port=/dev/ttyACM0
    lerobot-setup-motors --teleop.type=koch_leader --teleop.port=/dev/ttyACM1

Factory-new motors all answer as id 1 (and Dynamixels at 57600 baud), so they cannot share a bus
until each has its own id. The tool asks you to connect one motor at a time, gripper first, finds it
at whatever baud rate it uses, and writes its id and the default baud rate to its EEPROM.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.robots import RobotConfig, make_robot_from_config
from lerobot.robots.motor_arm import MotorArm
from lerobot.teleoperators import TeleoperatorConfig, make_teleoperator_from_config


@dataclass
class SetupMotorsConfig:
    robot: RobotConfig | None = None
    teleop: TeleoperatorConfig | None = None


def setup_motors(cfg: SetupMotorsConfig) -> MotorArm:
    if (cfg.robot is None) == (cfg.teleop is None):
        raise ValueError("Choose exactly one device: --robot.type=... or --teleop.type=...")
    device = make_robot_from_config(cfg.robot) if cfg.robot else make_teleoperator_from_config(cfg.teleop)
    if not isinstance(device, MotorArm):
        raise ValueError(f"{device.name} has no serial servo bus to set up.")
    device.setup_motors()
    return device


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, SetupMotorsConfig):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    aliases = {"robot_type": "robot.type", "teleop_type": "teleop.type"}
    device = setup_motors(parse_config(SetupMotorsConfig, argv, aliases))
    print(f"All {len(device.bus.motors)} motors of {device.name} are set up; daisy-chain them and calibrate.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
