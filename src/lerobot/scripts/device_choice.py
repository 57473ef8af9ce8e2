"""``--robot.*`` or ``--teleop.*``: the one device a set-up tool (calibrate, setup-motors) works on."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.robots import RobotConfig, make_robot_from_config
from lerobot.teleoperators import TeleoperatorConfig, make_teleoperator_from_config
from lerobot.utils.device import Device

DEVICE_FLAG_ALIASES = {"robot_type": "robot.type", "teleop_type": "teleop.type"}


@dataclass
class OneDeviceConfig:
    robot: RobotConfig | None = None
    """The robot to work on (--robot.type=so100_follower --robot.port=...); or give --teleop.*."""
    teleop: TeleoperatorConfig | None = None
    """The teleoperator to work on (--teleop.type=so100_leader --teleop.port=...); or give --robot.*."""

    def make_device(self) -> Device:
        """The robot or teleoperator the flags describe (not connected yet)."""
        if (self.robot is None) == (self.teleop is None):
            raise ValueError("Choose exactly one device: --robot.type=... or --teleop.type=...")
        if self.robot is not None:
            return make_robot_from_config(self.robot)
        return make_teleoperator_from_config(self.teleop)


D = TypeVar("D", bound=Device)


def one_device_main(
    argv: Sequence[str] | None,
    doc: str | None,
    work: Callable[[OneDeviceConfig], D],
    report: Callable[[D], str],
) -> int:
    """The ``main`` of a one-device tool: ``--help``, the flags, ``work(config)``, one line of ``report``."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if print_help_if_asked(argv, doc, OneDeviceConfig, DEVICE_FLAG_ALIASES):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    device = work(parse_config(OneDeviceConfig, argv, DEVICE_FLAG_ALIASES))
    print(report(device))
    return 0
