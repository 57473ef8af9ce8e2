"""LeKiwi, robot side: an SO-100 arm (ids 1-6) and three omni wheels (ids 7-9) on one Feetech bus.

This is the class that runs on the robot's computer (``--robot.type=lekiwi``); a laptop drives it
through ``lerobot-lekiwi-host`` and :class:`~lerobot.robots.lekiwi.lekiwi_client.LeKiwiClient`, or it
can be used directly when the bus is local. Arm joints are position-controlled in the SO-100's
units; the base takes a body velocity (``x.vel`` m/s, ``y.vel`` m/s, ``theta.vel`` deg/s) that
:class:`~lerobot.robots.lekiwi.kinematics.OmniBase` turns into wheel ``Goal_Velocity`` commands
(wheel motors in velocity mode), and the observed base velocity comes back from the wheels'
``Present_Velocity``.

Calibration is the SO arm's (centre, then sweep); the wheels count as full-turn joints (range = the
whole encoder), since only their speed matters.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from lerobot.cameras import make_cameras_from_configs
from lerobot.motors import FeetechMotorsBus
from lerobot.motors.arm import GRIPPER, MotorArm
from lerobot.robots.lekiwi.config import (
    ARM_MOTORS,
    BASE_KEYS,
    WHEELS,
    LeKiwiConfig,
    lekiwi_features,
    lekiwi_motors,
)
from lerobot.robots.lekiwi.kinematics import OmniBase
from lerobot.robots.motor_arm import write_goal_positions
from lerobot.robots.robot import ROBOTS, Robot
from lerobot.robots.so100_follower import SO_MOTOR_MODELS, configure_so_arm

logger = logging.getLogger(__name__)

FEETECH_VELOCITY_MODE = 1  # Operating_Mode: constant speed ("wheel") mode, servo to Goal_Velocity


@ROBOTS.register("lekiwi")
class LeKiwi(MotorArm, Robot):
    config_class = LeKiwiConfig
    name = "lekiwi"
    bus_class = FeetechMotorsBus
    motor_models = SO_MOTOR_MODELS
    full_turn_motors = ("arm_wrist_roll", *WHEELS)
    config: LeKiwiConfig

    def __init__(self, config: LeKiwiConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        # MotorArm builds a six-motor arm bus; LeKiwi's bus also carries the wheels, under LeKiwi names.
        self.bus = FeetechMotorsBus(
            self.config.port, lekiwi_motors(self.config.use_degrees), calibration=self.calibration
        )
        self.cameras = make_cameras_from_configs(self.config.cameras)
        self.base = OmniBase(
            wheel_radius_m=self.config.wheel_radius_m,
            base_radius_m=self.config.base_radius_m,
            max_wheel_speed_raw=self.config.max_wheel_speed_raw,
        )
        limit = self.config.max_relative_target
        if isinstance(limit, dict) and set(limit) != set(ARM_MOTORS):
            raise ValueError(
                f"max_relative_target names {sorted(limit)}; it must name exactly {list(ARM_MOTORS)}."
            )

    @property
    def observation_features(self) -> dict[str, type | tuple[int, ...]]:
        return lekiwi_features(self.config.cameras)[0]

    @property
    def action_features(self) -> dict[str, type]:
        return lekiwi_features(self.config.cameras)[1]

    def configure(self) -> None:
        """Arm in position mode with the SO-100's gains and gripper limits; wheels in velocity mode."""
        with self.bus.torque_disabled():
            self.bus.configure_motors()
            configure_so_arm(self.bus, list(ARM_MOTORS), f"arm_{GRIPPER}", self.config)
            for wheel in WHEELS:
                self.bus.write("Operating_Mode", wheel, FEETECH_VELOCITY_MODE)

    def _get_observation(self) -> dict[str, Any]:
        retries = self.config.num_read_retries
        arm = self.bus.sync_read("Present_Position", list(ARM_MOTORS), num_retry=retries)
        speeds = self.bus.sync_read("Present_Velocity", list(WHEELS), normalize=False, num_retry=retries)
        obs: dict[str, Any] = {f"{m}.pos": float(v) for m, v in arm.items()}
        obs |= dict(zip(BASE_KEYS, self.base.raw_to_body([speeds[w] for w in WHEELS])))
        for name, camera in self.cameras.items():
            obs[name] = camera.read_latest()
        return obs

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        """Arm goals and wheel speeds; a non-finite base velocity refuses the action before any write."""
        bad = {k: action[k] for k in BASE_KEYS if not math.isfinite(action[k])}
        if bad:
            raise ValueError(f"Refusing LeKiwi base velocities {bad}: not finite numbers; nothing was sent.")
        raw = self.base.body_to_raw(*(action[k] for k in BASE_KEYS))
        goal = {m: action[f"{m}.pos"] for m in ARM_MOTORS}
        sent = write_goal_positions(self, goal, self.config.max_relative_target)
        self.bus.sync_write("Goal_Velocity", dict(zip(WHEELS, raw)))
        return sent | dict(zip(BASE_KEYS, self.base.raw_to_body(raw)))  # after wheel-speed scaling

    def stop_base(self) -> None:
        """Zero every wheel's goal velocity (the arm holds its goal)."""
        self.bus.sync_write("Goal_Velocity", dict.fromkeys(WHEELS, 0))

    def disconnect(self) -> None:
        """Stop the wheels first (with torque kept on disconnect they would otherwise keep turning)."""
        if self.is_connected:
            try:
                self.stop_base()
            except Exception as e:  # the release below still disables torque
                logger.error("Could not stop LeKiwi's wheels before disconnecting: %s", e)
        super().disconnect()
