"""OpenArm follower: 7-DoF arm + gripper on Damiao motors over CAN (``--robot.type=openarm_follower``).

Damiao motors are driven in MIT mode (position, velocity, gains, feed-forward torque per frame) on a
SocketCAN interface through ``python-can``. ``connect()`` needs python-can and a Damiao CAN motor bus;
lerobot has the former as an optional dependency and not yet the latter, so it names whichever is
missing. Joint limits are approximations of the OpenArm v10 ranges (degrees; gripper 0..100) used to
clamp actions.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot.cameras import CameraConfig
from lerobot.robots.robot import ROBOT_CONFIGS, ROBOTS, RobotConfig
from lerobot.robots.vendor import JointLimit, UndrivenRobot, require_package

OPENARM_JOINTS = [
    JointLimit("joint_1", -80.0, 200.0),
    JointLimit("joint_2", -10.0, 190.0),
    JointLimit("joint_3", -90.0, 90.0),
    JointLimit("joint_4", 0.0, 140.0),
    JointLimit("joint_5", -90.0, 90.0),
    JointLimit("joint_6", -45.0, 45.0),
    JointLimit("joint_7", -90.0, 90.0),
    JointLimit("gripper", 0.0, 100.0),
]
DAMIAO_MOTORS = ("DM8009", "DM8009", "DM4340", "DM4340", "DM4310", "DM4310", "DM4310", "DM4310")


@ROBOT_CONFIGS.register("openarm_follower")
@dataclass(kw_only=True)
class OpenArmFollowerConfig(RobotConfig):
    port: str = "can0"
    """SocketCAN interface of the arm (``ip link set can0 up type can bitrate 1000000 dbitrate 5000000 fd on``)."""
    side: str | None = None
    """``"left"``/``"right"`` for a bimanual setup (mirrors joint 1/2 directions), ``None`` for one arm."""
    can_interface: str = "socketcan"
    """python-can interface type (``socketcan`` on Linux)."""
    use_can_fd: bool = True
    """CAN FD frames (the Damiao motors' fast mode); false for classic CAN at 1 Mbit/s."""
    disable_torque_on_disconnect: bool = True
    """Release every motor on disconnect (false: the arm keeps holding its last position)."""
    max_relative_target: float | None = None
    """Largest goal change per action, in degrees, measured from the present position."""
    cameras: dict[str, CameraConfig] = field(default_factory=dict)
    """Cameras by name, e.g. ``{"wrist": OpenCVCameraConfig(index_or_path=0, ...)}``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.side not in (None, "left", "right"):
            raise ValueError(f"OpenArm side must be 'left', 'right' or None, got {self.side!r}.")


@ROBOTS.register("openarm_follower")
class OpenArmFollower(UndrivenRobot):
    config_class = OpenArmFollowerConfig
    name = "openarm_follower"
    config: OpenArmFollowerConfig

    @property
    def joint_limits(self) -> list[JointLimit]:
        return list(OPENARM_JOINTS)

    def connect(self, calibrate: bool = True) -> None:
        require_package("can", "pip install python-can", "OpenArm (Damiao motors over CAN)")
        raise NotImplementedError(
            f"python-can is installed, but lerobot has no Damiao CAN motor bus (MIT mode, motors "
            f"{', '.join(DAMIAO_MOTORS)}) yet, so OpenArm on {self.config.port} cannot be driven."
        )
