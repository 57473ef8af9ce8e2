"""Koch v1.1 follower arm on Dynamixel X-series servos (``--robot.type=koch_follower``).

Motors: XL430-W250 for the two shoulder joints (ids 1-2), XL330-M288 for the rest (ids 3-6). The arm
joints run in *extended-position* mode, so a horn assembled near the 0/4095 wrap point still reads
continuously instead of jumping a full turn; the gripper runs in *current-based position* mode, so it
closes on an object with bounded current instead of stalling at full torque.

Emulator coverage (``lerobot.motors.emulator``): the operating modes, gains and drive mode are
written and read back like on hardware, but the emulator moves every motor as a plain position
servo clipped to 0..4095 and the calibrated limits; multi-turn travel and current limiting are not
emulated.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from lerobot.motors import DynamixelMotorsBus
from lerobot.motors.arm import GRIPPER, MotorArm
from lerobot.robots.motor_arm import ArmFollower, ArmFollowerConfig
from lerobot.robots.robot import ROBOT_CONFIGS, ROBOTS

EXTENDED_POSITION_MODE = 4  # Operating_Mode: multi-turn position control
CURRENT_POSITION_MODE = 5  # Operating_Mode: position control with a current limit


class KochArm(MotorArm):
    """What the Koch follower and leader share: Dynamixel bus, operating modes, calibration prep."""

    bus_class = DynamixelMotorsBus
    full_turn_motors: ClassVar[tuple[str, ...]] = ("shoulder_pan", "wrist_roll")

    def _prepare_calibration(self) -> None:
        """Extended-position mode while homing (offsets may exceed one turn), and the drive modes."""
        for motor in self.bus.motors:
            self.bus.write("Operating_Mode", motor, EXTENDED_POSITION_MODE)
            mode = int(self.bus.read("Drive_Mode", motor))
            self.bus.write("Drive_Mode", motor, (mode & ~1) | int(motor in self.inverted_motors))

    def _set_operating_modes(self) -> None:
        """Arm joints multi-turn, gripper current-limited (call with torque off: EEPROM registers)."""
        for motor in self.bus.motors:
            mode = CURRENT_POSITION_MODE if motor == GRIPPER else EXTENDED_POSITION_MODE
            self.bus.write("Operating_Mode", motor, mode)


@ROBOT_CONFIGS.register("koch_follower")
@dataclass(kw_only=True)
class KochFollowerConfig(ArmFollowerConfig):
    use_degrees: bool = False


@ROBOTS.register("koch_follower")
class KochFollower(KochArm, ArmFollower):
    """Koch v1.1 follower: joints in -100..100 of their range (or degrees), gripper 0..100."""

    config_class = KochFollowerConfig
    name = "koch_follower"
    motor_models = ("xl430-w250",) * 2 + ("xl330-m288",) * 4
    config: KochFollowerConfig

    def configure(self) -> None:
        with self.bus.torque_disabled():
            self.bus.configure_motors()
            self._set_operating_modes()
            # The elbow carries the forearm's weight: a stiffer P and some D keep it from sagging.
            self.bus.write("Position_P_Gain", "elbow_flex", 1500)
            self.bus.write("Position_I_Gain", "elbow_flex", 0)
            self.bus.write("Position_D_Gain", "elbow_flex", 600)
