"""SO-100 / SO-101 leader arm (``--teleop.type=so100_leader``/``so101_leader``): moved by hand, torque off."""

from __future__ import annotations

from dataclasses import dataclass

from lerobot.motors import FeetechMotorsBus
from lerobot.motors.arm import ArmConfig, MotorArm
from lerobot.robots.so100_follower import FEETECH_POSITION_MODE, SO_MOTOR_MODELS
from lerobot.teleoperators.teleoperator import (
    TELEOPERATOR_CONFIGS,
    TELEOPERATORS,
    Teleoperator,
    TeleoperatorConfig,
)


@TELEOPERATOR_CONFIGS.register("so100_leader")
@dataclass(kw_only=True)
class SO100LeaderConfig(TeleoperatorConfig, ArmConfig):
    pass


@TELEOPERATOR_CONFIGS.register("so101_leader")
@dataclass(kw_only=True)
class SO101LeaderConfig(SO100LeaderConfig):
    """The SO-101 leader: same motors as the SO-100 leader."""


@TELEOPERATORS.register("so101_leader")
@TELEOPERATORS.register("so100_leader")
class SO100Leader(MotorArm, Teleoperator):
    """SO-100/101 leader: its joint positions, in the follower's units, are the action."""

    config_class = SO100LeaderConfig
    name = "so_leader"
    bus_class = FeetechMotorsBus
    motor_models = SO_MOTOR_MODELS
    config: SO100LeaderConfig

    def configure(self) -> None:
        """Torque off (the arm is moved by hand) and position mode, so readings use the calibration."""
        self.bus.disable_torque()
        self.bus.configure_motors()
        for motor in self.bus.motors:
            self.bus.write("Operating_Mode", motor, FEETECH_POSITION_MODE)

    def get_action(self) -> dict[str, float]:
        return self.read_positions()
