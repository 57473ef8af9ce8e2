"""``lerobot-setup-motors``: give each motor of an arm its id and the bus baud rate, one at a time.

    lerobot-setup-motors --robot.type=so100_follower --robot.port=/dev/ttyACM0
    lerobot-setup-motors --teleop.type=koch_leader --teleop.port=/dev/ttyACM1

Factory-new motors all answer as id 1 (and Dynamixels at 57600 baud), so they cannot share a bus
until each has its own id. The tool asks you to connect one motor at a time, gripper first, finds it
at whatever baud rate it uses, and writes its id and the default baud rate to its EEPROM.
"""

from __future__ import annotations

from lerobot.motors.arm import MotorArm
from lerobot.scripts.device_choice import OneDeviceConfig, one_device_main
from lerobot.utils.cli import console_main

SetupMotorsConfig = OneDeviceConfig


def setup_motors(cfg: SetupMotorsConfig) -> MotorArm:
    device = cfg.make_device()
    if not isinstance(device, MotorArm):
        raise ValueError(f"{device.name} has no serial servo bus to set up.")
    device.setup_motors()
    return device


@console_main
def main(argv: list[str] | None = None) -> int:
    return one_device_main(argv, __doc__, setup_motors, _report)


def _report(arm: MotorArm) -> str:
    return f"All {len(arm.bus.motors)} motors of {arm.name} are set up; daisy-chain them and calibrate."


if __name__ == "__main__":
    raise SystemExit(main())
