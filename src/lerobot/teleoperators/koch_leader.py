"""Koch v1.1 leader arm on Dynamixel XL330-M077 servos (``--teleop.type=koch_leader``).

All joints are limp except the gripper, which holds ``gripper_open_pos`` with a bounded current: it
acts as a spring-loaded trigger that the operator squeezes and that reopens by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from lerobot.motors.arm import GRIPPER, ArmConfig
from lerobot.robots.koch_follower import KochArm
from lerobot.teleoperators.teleoperator import (
    TELEOPERATOR_CONFIGS,
    TELEOPERATORS,
    Teleoperator,
    TeleoperatorConfig,
)


@TELEOPERATOR_CONFIGS.register("koch_leader")
@dataclass(kw_only=True)
class KochLeaderConfig(TeleoperatorConfig, ArmConfig):
    use_degrees: bool = False
    gripper_open_pos: float = 50.0
    """Where the trigger gripper rests, 0 (closed) .. 100 (open)."""


@TELEOPERATORS.register("koch_leader")
class KochLeader(KochArm, Teleoperator):
    config_class = KochLeaderConfig
    name = "koch_leader"
    motor_models = ("xl330-m077",) * 6
    inverted_motors = ("elbow_flex",)  # mounted mirrored on the leader
    config: KochLeaderConfig

    def configure(self) -> None:
        self.bus.disable_torque()
        self.bus.configure_motors()
        self._set_operating_modes()
        self.bus.enable_torque(GRIPPER)
        if self.bus.is_calibrated:  # an uncalibrated gripper has no 0..100 scale to aim at
            self.bus.write("Goal_Position", GRIPPER, self.config.gripper_open_pos)

    def get_action(self) -> dict[str, float]:
        return self.read_positions()
