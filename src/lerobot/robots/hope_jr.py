"""HopeJR humanoid arm and hand (``--robot.type=hope_jr_arm`` / ``hope_jr_hand``), Feetech servos.

The arm is a 7-DoF serial-servo chain on one Feetech bus (protocol 0), so it is the same driver as
the SO-100 with other motors: shoulder pitch on an SM8512BL (id 1), shoulder yaw / roll and elbow on
STS3250s (ids 2-4), the three wrist joints on STS3215s (ids 5-7). It connects, calibrates and records
like any arm, on hardware or on the servo emulator.

Our Feetech driver does not know the SM8512BL's model number yet; until it does, ``connect()``
refuses (before any packet is sent) and says so. ``shoulder_pitch_model="sts3250"`` runs the arm on
an STS3250 in that joint, e.g. on the emulator.

The hand's 16 SCS0009 micro-servos speak Feetech protocol 1 (big-endian SCS series), which our bus
does not implement: ``hope_jr_hand`` has its features and a ``connect()`` that says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lerobot.cameras import make_cameras_from_configs
from lerobot.motors import FeetechMotorsBus, Motor, MotorNormMode
from lerobot.motors.arm import MotorArm
from lerobot.motors.feetech import FEETECH
from lerobot.robots.motor_arm import ArmFollowerConfig, write_goal_positions
from lerobot.robots.robot import ROBOT_CONFIGS, ROBOTS, Robot, RobotConfig
from lerobot.robots.so100_follower import FEETECH_POSITION_MODE
from lerobot.robots.vendor import JointLimit, UndrivenRobot

ARM_MOTORS = (
    "shoulder_pitch",
    "shoulder_yaw",
    "shoulder_roll",
    "elbow_flex",
    "wrist_roll",
    "wrist_yaw",
    "wrist_pitch",
)
HAND_JOINTS = ("thumb_cmc", "thumb_mcp", "thumb_pip", "thumb_dip") + tuple(
    f"{finger}_{part}"
    for finger in ("index", "middle", "ring", "pinky")
    for part in ("ulnar_flexor", "radial_flexor", "pip_dip")
)


@ROBOT_CONFIGS.register("hope_jr_arm")
@dataclass(kw_only=True)
class HopeJrArmConfig(ArmFollowerConfig):
    shoulder_pitch_model: str = "sm8512bl"
    """Feetech model of the shoulder-pitch servo (the high-torque one; the other joints are STS3215)."""


@ROBOTS.register("hope_jr_arm")
class HopeJrArm(MotorArm, Robot):
    """HopeJR arm: seven position-controlled joints, no gripper (the hand is a separate device)."""

    config_class = HopeJrArmConfig
    name = "hope_jr_arm"
    bus_class = FeetechMotorsBus
    motor_models = ("sts3215",) * 6  # only for MotorArm's constructor; the real bus is built below
    full_turn_motors = ("wrist_roll",)
    config: HopeJrArmConfig

    def __init__(self, config: HopeJrArmConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        models = (
            self.config.shoulder_pitch_model,
            "sts3250",
            "sts3250",
            "sts3250",
            "sts3215",
            "sts3215",
            "sts3215",
        )
        self.missing_models = sorted({m for m in models if m not in FEETECH.models})
        mode = MotorNormMode.DEGREES if self.config.use_degrees else MotorNormMode.RANGE_M100_100
        # An unknown model is replaced by a known one of the same size only so the bus object exists;
        # connect() refuses before such a bus sends anything.
        motors = {
            name: Motor(i, model if model in FEETECH.models else "sts3250", mode)
            for i, (name, model) in enumerate(zip(ARM_MOTORS, models), start=1)
        }
        self.bus = FeetechMotorsBus(self.config.port, motors, calibration=self.calibration)
        self.cameras = make_cameras_from_configs(self.config.cameras)

    def connect(self, calibrate: bool = True) -> None:
        if self.missing_models:
            raise NotImplementedError(
                f"HopeJR arm: lerobot's Feetech driver does not know the {', '.join(self.missing_models)} "
                "servo model yet (its model number and control table must be added to "
                "lerobot.motors.feetech.FeetechProtocol.models)."
            )
        super().connect(calibrate)

    def configure(self) -> None:
        with self.bus.torque_disabled():
            self.bus.configure_motors()
            for motor in self.bus.motors:
                self.bus.write("Operating_Mode", motor, FEETECH_POSITION_MODE)

    def _get_observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = self.read_positions()
        for name, camera in self.cameras.items():
            obs[name] = camera.read_latest()
        return obs

    def read_present(self) -> dict[str, float]:
        """The joint positions, read now (no camera frame is needed to check a step)."""
        return self.read_positions()

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        goal = {key.removesuffix(".pos"): value for key, value in action.items()}
        return write_goal_positions(self, goal, self.config.max_relative_target)


@ROBOT_CONFIGS.register("hope_jr_hand")
@dataclass(kw_only=True)
class HopeJrHandConfig(RobotConfig):
    port: str = "/dev/ttyACM1"
    """Serial port of the hand's motor bus (find it with ``lerobot-find-port``)."""
    side: str = "right"
    """Which hand, ``"left"`` or ``"right"``: sets the calibration file and the mirrored joints."""


@ROBOTS.register("hope_jr_hand")
class HopeJrHand(UndrivenRobot):
    """HopeJR hand: 16 tendon servos, each 0..100 from open to closed."""

    config_class = HopeJrHandConfig
    name = "hope_jr_hand"

    @property
    def joint_limits(self) -> list[JointLimit]:
        return [JointLimit(name, 0.0, 100.0) for name in HAND_JOINTS]

    def connect(self, calibrate: bool = True) -> None:
        raise NotImplementedError(
            "HopeJR hand: its SCS0009 servos speak Feetech protocol 1 (SCS series), which lerobot's "
            "Feetech bus does not implement yet (only protocol 0, STS/SMS)."
        )
