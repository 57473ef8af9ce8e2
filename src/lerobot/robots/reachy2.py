"""Pollen Robotics Reachy 2 (``--robot.type=reachy2``), driven through the vendor's ``reachy2_sdk``.

The robot runs its own gRPC server; ``reachy2_sdk.ReachySDK(host=ip_address)`` connects to it, and
every joint is an SDK object with ``present_position`` / ``goal_position`` in degrees (the gripper in
percent of opening) addressed as ``reachy.joints["r_arm.shoulder.pitch"]``. Feature names are the
reference library's (``r_shoulder_pitch.pos``, ``neck_yaw.pos``, ``r_gripper.pos``...), so Reachy 2
datasets match.

Joint limits below are conservative approximations of Reachy 2's published ranges, used to clamp
actions before they reach the SDK; the robot's own controller enforces the exact ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot.cameras import CameraConfig
from lerobot.robots.robot import ROBOT_CONFIGS, ROBOTS, RobotConfig
from lerobot.robots.vendor import JointLimit, JointSpaceRobot, require_package
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError

SDK_INSTALL = "pip install reachy2-sdk"

ARM_JOINTS = [  # (our name without side prefix, SDK name within the arm, lower deg, upper deg)
    ("shoulder_pitch", "shoulder.pitch", -180.0, 90.0),
    ("shoulder_roll", "shoulder.roll", -180.0, 180.0),
    ("elbow_yaw", "elbow.yaw", -180.0, 180.0),
    ("elbow_pitch", "elbow.pitch", -130.0, 10.0),
    ("wrist_roll", "wrist.roll", -25.0, 25.0),
    ("wrist_pitch", "wrist.pitch", -25.0, 25.0),
    ("wrist_yaw", "wrist.yaw", -180.0, 180.0),
]
NECK_JOINTS = [("neck_yaw", "head.neck.yaw", -90.0, 90.0), ("neck_pitch", "head.neck.pitch", -25.0, 25.0),
               ("neck_roll", "head.neck.roll", -25.0, 25.0)]  # fmt: skip
ANTENNAS = [("l_antenna", "head.l_antenna", -80.0, 80.0), ("r_antenna", "head.r_antenna", -80.0, 80.0)]


@ROBOT_CONFIGS.register("reachy2")
@dataclass(kw_only=True)
class Reachy2RobotConfig(RobotConfig):
    ip_address: str = "localhost"
    """Address of the robot (or of the Reachy 2 simulator) the SDK connects to."""
    with_neck: bool = True
    """Observe and command the neck (roll, pitch, yaw)."""
    with_l_arm: bool = True
    """Observe and command the left arm and gripper."""
    with_r_arm: bool = True
    """Observe and command the right arm and gripper."""
    with_antennas: bool = True
    """Observe and command the two antennas."""
    disable_torque_on_disconnect: bool = True
    """Turn the robot's motors off on disconnect (false: it keeps holding its pose)."""
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    """Cameras by name (the head's teleop cameras come through the SDK)."""


def reachy2_joints(config: Reachy2RobotConfig) -> list[tuple[JointLimit, str]]:
    """``(limit, SDK joint name)`` of every enabled part, in the reference library's order."""
    out: list[tuple[JointLimit, str]] = []
    if config.with_neck:
        out += [(JointLimit(n, lo, hi), sdk) for n, sdk, lo, hi in NECK_JOINTS]
    for side, enabled in (("r", config.with_r_arm), ("l", config.with_l_arm)):
        if enabled:
            out += [(JointLimit(f"{side}_{n}", lo, hi), f"{side}_arm.{sdk}") for n, sdk, lo, hi in ARM_JOINTS]
            out.append((JointLimit(f"{side}_gripper", 0.0, 100.0), f"{side}_arm.gripper"))
    if config.with_antennas:
        out += [(JointLimit(n, lo, hi), sdk) for n, sdk, lo, hi in ANTENNAS]
    return out


@ROBOTS.register("reachy2")
class Reachy2Robot(JointSpaceRobot):
    """Reachy 2: ``Reachy2Robot(ip_address="192.168.1.42")``; needs ``reachy2_sdk`` only to connect."""

    config_class = Reachy2RobotConfig
    name = "reachy2"
    config: Reachy2RobotConfig

    def __init__(self, config: Reachy2RobotConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self._joints = reachy2_joints(self.config)
        self._reachy: Any = None

    @property
    def joint_limits(self) -> list[JointLimit]:
        return [limit for limit, _ in self._joints]

    @property
    def is_connected(self) -> bool:
        return self._reachy is not None

    def connect(self, calibrate: bool = True) -> None:
        if self.is_connected:
            raise DeviceAlreadyConnectedError("Reachy 2 is already connected.")
        sdk = require_package("reachy2_sdk", SDK_INSTALL, "Reachy 2")
        reachy = sdk.ReachySDK(host=self.config.ip_address)
        if not reachy.is_connected():
            raise ConnectionError(
                f"Reachy 2 at {self.config.ip_address} does not answer; check the address and that the robot "
                "(or its simulator) is running."
            )
        reachy.turn_on()
        self._reachy = reachy

    def _require(self) -> Any:
        if self._reachy is None:
            raise DeviceNotConnectedError("Reachy 2 is not connected; call connect() first.")
        return self._reachy

    def _get_observation(self) -> dict[str, Any]:
        joints = self._require().joints
        return {f"{limit.name}.pos": float(joints[sdk].present_position) for limit, sdk in self._joints}

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        reachy = self._require()
        safe = self.clamp(action)
        for limit, sdk in self._joints:
            reachy.joints[sdk].goal_position = safe[f"{limit.name}.pos"]
        reachy.send_goal_positions()
        return safe

    def disconnect(self) -> None:
        reachy = self._require()
        if self.config.disable_torque_on_disconnect:
            reachy.turn_off_smoothly()
        reachy.disconnect()
        self._reachy = None
