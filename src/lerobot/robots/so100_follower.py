"""SO-100 / SO-101 follower arm: six Feetech STS3215 servos (``--robot.type=so100_follower``/``so101_follower``).

The two arms share motors, ids, wiring and firmware settings, so one class drives both; only the
registered names differ (the dataset's ``robot_type`` is ``so_follower`` either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from lerobot.motors import FeetechMotorsBus
from lerobot.motors.arm import GRIPPER
from lerobot.robots.motor_arm import ArmFollower, ArmFollowerConfig
from lerobot.robots.robot import ROBOT_CONFIGS, ROBOTS

SO_MOTOR_MODELS = ("sts3215",) * 6
FEETECH_POSITION_MODE = 0  # Operating_Mode: servo to Goal_Position


@ROBOT_CONFIGS.register("so100_follower")
@dataclass(kw_only=True)
class SO100FollowerConfig(ArmFollowerConfig):
    position_p_coefficient: int = 16
    """P gain of the arm servos' position loop (factory 32; lower so the arm does not shake)."""
    position_i_coefficient: int = 0
    """I gain of the arm servos' position loop."""
    position_d_coefficient: int = 32
    """D gain of the arm servos' position loop (damps overshoot)."""


@ROBOT_CONFIGS.register("so101_follower")
@dataclass(kw_only=True)
class SO101FollowerConfig(SO100FollowerConfig):
    """The SO-101 follower: same motors and settings as the SO-100."""


@ROBOTS.register("so101_follower")
@ROBOTS.register("so100_follower")
class SO100Follower(ArmFollower):
    """SO-100/101 follower: joints in degrees (or -100..100), gripper 0..100 (closed..open)."""

    config_class = SO100FollowerConfig
    name = "so_follower"
    bus_class = FeetechMotorsBus
    motor_models = SO_MOTOR_MODELS
    config: SO100FollowerConfig

    def configure(self) -> None:
        with self.bus.torque_disabled():
            self.bus.configure_motors()
            configure_so_arm(self.bus, list(self.bus.motors), GRIPPER, self.config)


class PositionGains(Protocol):
    position_p_coefficient: int
    position_i_coefficient: int
    position_d_coefficient: int


def configure_so_arm(bus: FeetechMotorsBus, motors: list[str], gripper: str, gains: PositionGains) -> None:
    """Position mode and PID gains on ``motors``; a gentler ``gripper`` so a grasp never overheats it.

    Shared by the SO-100/101 follower and LeKiwi's arm (same servos, other motor names). Call with
    torque disabled.
    """
    for motor in motors:
        bus.write("Operating_Mode", motor, FEETECH_POSITION_MODE)
        bus.write("P_Coefficient", motor, gains.position_p_coefficient)
        bus.write("I_Coefficient", motor, gains.position_i_coefficient)
        bus.write("D_Coefficient", motor, gains.position_d_coefficient)
    # Half the torque, and a current/overload protection that trips before the motor heats up while
    # squeezing an object.
    bus.write("Max_Torque_Limit", gripper, 500)
    bus.write("Protection_Current", gripper, 250)
    bus.write("Overload_Torque", gripper, 25)
