"""Serial servo buses (Feetech, Dynamixel), their calibration, and an emulator to test without hardware."""

from lerobot.motors.dynamixel import DynamixelMotorsBus
from lerobot.motors.feetech import FeetechMotorsBus
from lerobot.motors.motors_bus import (
    Motor,
    MotorCalibration,
    MotorNormMode,
    MotorsBus,
    load_calibration,
    save_calibration,
)

__all__ = [
    "DynamixelMotorsBus",
    "FeetechMotorsBus",
    "Motor",
    "MotorCalibration",
    "MotorNormMode",
    "MotorsBus",
    "load_calibration",
    "save_calibration",
]
