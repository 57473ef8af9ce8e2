"""Unitree G1 humanoid, 29 joints (``--robot.type=unitree_g1``), through ``unitree_sdk2py`` (DDS).

Joint order and limits (radians) are those of Unitree's published ``g1_29dof`` model: legs (6 per
side), waist (3), arms (7 per side). ``<joint>.pos`` is in radians, as the G1's low-level state is.

Low-level control of a humanoid means streaming ``rt/lowcmd`` at 500 Hz with per-joint gains and a
CRC, plus a balance controller for the legs: far more than a joint-position ``send_action`` can do
safely without testing on the robot. So ``connect()`` checks the SDK and then refuses with an
explanation; the features and limits here are what recordings, policies and a future driver need.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot.cameras import CameraConfig
from lerobot.robots.robot import ROBOT_CONFIGS, ROBOTS, RobotConfig
from lerobot.robots.vendor import JointLimit, UndrivenRobot, require_package

SDK_INSTALL = (
    "pip install unitree_sdk2py  (needs CycloneDDS: see github.com/unitreerobotics/unitree_sdk2_python)"
)


def _side(side: str, sign: float) -> list[JointLimit]:
    """One leg and one arm; roll limits are mirrored between the sides."""
    roll = (-0.5236, 2.9671) if sign > 0 else (-2.9671, 0.5236)
    shoulder_roll = (-1.5882, 2.2515) if sign > 0 else (-2.2515, 1.5882)
    return [
        JointLimit(f"{side}_hip_pitch", -2.5307, 2.8798),
        JointLimit(f"{side}_hip_roll", *roll),
        JointLimit(f"{side}_hip_yaw", -2.7576, 2.7576),
        JointLimit(f"{side}_knee", -0.0873, 2.8798),
        JointLimit(f"{side}_ankle_pitch", -0.8727, 0.5236),
        JointLimit(f"{side}_ankle_roll", -0.2618, 0.2618),
    ], [
        JointLimit(f"{side}_shoulder_pitch", -3.0892, 2.6704),
        JointLimit(f"{side}_shoulder_roll", *shoulder_roll),
        JointLimit(f"{side}_shoulder_yaw", -2.618, 2.618),
        JointLimit(f"{side}_elbow", -1.0472, 2.0944),
        JointLimit(f"{side}_wrist_roll", -1.9722, 1.9722),
        JointLimit(f"{side}_wrist_pitch", -1.6144, 1.6144),
        JointLimit(f"{side}_wrist_yaw", -1.6144, 1.6144),
    ]


_LEFT_LEG, _LEFT_ARM = _side("left", 1.0)
_RIGHT_LEG, _RIGHT_ARM = _side("right", -1.0)
WAIST = [JointLimit("waist_yaw", -2.618, 2.618), JointLimit("waist_roll", -0.52, 0.52),
         JointLimit("waist_pitch", -0.52, 0.52)]  # fmt: skip
G1_JOINTS = [*_LEFT_LEG, *_RIGHT_LEG, *WAIST, *_LEFT_ARM, *_RIGHT_ARM]  # motor index order 0..28


@ROBOT_CONFIGS.register("unitree_g1")
@dataclass(kw_only=True)
class UnitreeG1Config(RobotConfig):
    network_interface: str = "eth0"
    """Network interface wired to the robot (DDS domain 0)."""
    control_arms_only: bool = True
    """Features cover the 14 arm joints + waist only (legs stay under Unitree's balance controller)."""
    cameras: dict[str, CameraConfig] = field(default_factory=dict)


@ROBOTS.register("unitree_g1")
class UnitreeG1(UndrivenRobot):
    config_class = UnitreeG1Config
    name = "unitree_g1"
    config: UnitreeG1Config

    @property
    def joint_limits(self) -> list[JointLimit]:
        if self.config.control_arms_only:
            return [*WAIST, *_LEFT_ARM, *_RIGHT_ARM]
        return list(G1_JOINTS)

    def connect(self, calibrate: bool = True) -> None:
        require_package("unitree_sdk2py", SDK_INSTALL, "Unitree G1")
        raise NotImplementedError(
            "unitree_sdk2py is installed, but lerobot does not stream G1 low-level commands yet (500 Hz "
            "rt/lowcmd with gains and CRC, untested without a robot). Use Unitree's high-level SDK for "
            "now; this class provides the features and joint limits for datasets and policies."
        )
