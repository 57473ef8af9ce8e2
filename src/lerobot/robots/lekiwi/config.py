"""LeKiwi configs and feature names, shared by the robot host (``lekiwi``) and the laptop client.

Motor and feature names are the reference library's (``arm_shoulder_pan.pos`` ... ``x.vel``), so
datasets recorded here and there have the same columns and a policy trained on one drives the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot.cameras import CameraConfig, Cv2Rotation, OpenCVCameraConfig
from lerobot.motors import Motor, MotorNormMode
from lerobot.motors.arm import ARM_JOINTS, GRIPPER
from lerobot.robots.motor_arm import ArmFollowerConfig
from lerobot.robots.robot import ROBOT_CONFIGS, RobotConfig

ARM_MOTORS = tuple(f"arm_{name}" for name in (*ARM_JOINTS, GRIPPER))  # ids 1-6
WHEELS = ("base_left_wheel", "base_back_wheel", "base_right_wheel")  # ids 7-9, velocity mode
BASE_KEYS = ("x.vel", "y.vel", "theta.vel")  # m/s, m/s, deg/s


def default_cameras() -> dict[str, CameraConfig]:
    """LeKiwi's stock cameras: front (upside down) and wrist (portrait, 90 deg)."""
    return {
        "front": OpenCVCameraConfig(
            "/dev/video0", fps=30, width=640, height=480, rotation=Cv2Rotation.ROTATE_180
        ),
        "wrist": OpenCVCameraConfig(
            "/dev/video2", fps=30, width=480, height=640, rotation=Cv2Rotation.ROTATE_90
        ),
    }


def lekiwi_motors(use_degrees: bool) -> dict[str, Motor]:
    """Arm (position mode) then wheels (velocity mode), all STS3215, ids 1-9 on one bus."""
    joint_mode = MotorNormMode.DEGREES if use_degrees else MotorNormMode.RANGE_M100_100
    motors = {
        name: Motor(i, "sts3215", MotorNormMode.RANGE_0_100 if name.endswith(GRIPPER) else joint_mode)
        for i, name in enumerate(ARM_MOTORS, start=1)
    }
    # Wheels never use position normalisation; the mode only satisfies the calibration file format.
    motors |= {
        name: Motor(i, "sts3215", MotorNormMode.RANGE_M100_100) for i, name in enumerate(WHEELS, start=7)
    }
    return motors


def lekiwi_features(cameras: dict[str, CameraConfig]) -> tuple[dict, dict]:
    """``(observation_features, action_features)`` of a LeKiwi with these cameras."""
    action: dict[str, type | tuple[int, ...]] = {f"{m}.pos": float for m in ARM_MOTORS}
    action |= dict.fromkeys(BASE_KEYS, float)
    cams = {name: (cfg.height, cfg.width, 3) for name, cfg in cameras.items()}
    return {**action, **cams}, dict(action)


@ROBOT_CONFIGS.register("lekiwi")
@dataclass(kw_only=True)
class LeKiwiConfig(ArmFollowerConfig):
    """The robot side (Raspberry Pi): owns the motor bus and the cameras."""

    port: str = "/dev/ttyACM0"
    cameras: dict[str, CameraConfig] = field(default_factory=default_cameras)
    position_p_coefficient: int = 16
    """P gain of the arm servos' position loop (factory 32; lower so the arm does not shake)."""
    position_i_coefficient: int = 0
    """I gain of the arm servos' position loop."""
    position_d_coefficient: int = 32
    """D gain of the arm servos' position loop (damps overshoot)."""
    wheel_radius_m: float = 0.05
    """Radius of the omni wheels, for base velocity <-> wheel speed."""
    base_radius_m: float = 0.125
    """Distance from the base's centre to each wheel."""
    max_wheel_speed_raw: int = 3000
    """Fastest wheel command in encoder steps/s (3000 ~ 264 deg/s); faster base commands are scaled down."""


@ROBOT_CONFIGS.register("lekiwi_client")
@dataclass(kw_only=True)
class LeKiwiClientConfig(RobotConfig):
    """The laptop side: talks to ``lerobot-lekiwi-host`` over ZeroMQ.

    ``cameras`` must describe the host's cameras (only their names and sizes are used here), so the
    client knows its features, and hence a dataset's, before the first frame arrives.
    """

    remote_ip: str
    """Address of the Raspberry Pi running ``lerobot-lekiwi-host``."""
    port_zmq_cmd: int = 5555
    """TCP port the host reads actions on (its ``--port_zmq_cmd``)."""
    port_zmq_observations: int = 5556
    """TCP port the host publishes observations on (its ``--port_zmq_observations``)."""
    cameras: dict[str, CameraConfig] = field(default_factory=default_cameras)
    polling_timeout_ms: int = 15
    """How long ``get_observation`` waits for a fresh message before returning the last one."""
    connect_timeout_s: float = 5.0
    """How long ``connect()`` waits for the host's first observation before giving up."""
    auth_token: str | None = field(default=None, repr=False)
    """The host's token (better ``$LEROBOT_LEKIWI_TOKEN``); required when the host has one."""
    max_observation_mb: float | None = None
    """Largest observation message accepted (``ZMQ_MAXMSGSIZE``; default: twice the cameras' raw frame
    bytes + 1 MiB, far above their JPEGs). A bigger one drops the connection for good."""
    max_observation_age_s: float = 2.0
    """``get_observation`` raises once the newest valid observation is older than this, rather than
    handing a control loop an ever older one (host gone, connection dropped, only bad messages)."""

    def max_observation_bytes(self) -> int:
        if self.max_observation_mb is not None:
            return int(self.max_observation_mb * 2**20)
        return 2 * sum(cam.height * cam.width * 3 for cam in self.cameras.values()) + 2**20
