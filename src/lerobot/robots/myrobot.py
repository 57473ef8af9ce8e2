"""Template for adding your own robot: copy this file, replace the three marked hardware calls.

Everything a robot needs is here and nowhere else: a config dataclass registered under a
``--robot.type`` name, a ``Robot`` subclass registered under the same name that declares its
features, and the flat ``_get_observation`` / ``_send_action``. The base class adds the guide's
structured view (``obs["joint_positions"]``, ``send_action({"joint_positions": ..., "gripper": ...})``),
the action checks, and ``make_robot_from_config``.

So that the template runs (and is tested) without hardware, its "hardware" is a kinematic model
of a 6-joint arm with a gripper (the guide's ``joint_positions`` has six values): each joint moves
toward its goal at most ``max_speed_deg_s`` per second. Cameras are real ``config.cameras``
(``"type": "sim"`` for a simulated one), read without blocking the control loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lerobot.cameras import make_cameras_from_configs
from lerobot.robots.robot import ROBOT_CONFIGS, ROBOTS, Robot, RobotConfig


@ROBOT_CONFIGS.register("myrobot")
@dataclass(kw_only=True)
class MyRobotConfig(RobotConfig):
    port: str | None = None
    """Where your hardware is (unused by the kinematic stand-in)."""
    joints: list[str] = field(default_factory=lambda: [*(f"joint_{i}" for i in range(1, 7)), "gripper"])
    """Joint names; each becomes a ``<name>.pos`` observation and action key."""
    max_speed_deg_s: float = 180.0
    """Fastest joint motion of the stand-in, in degrees per second (goals further away take longer)."""


@ROBOTS.register("myrobot")
class MyRobot(Robot):
    config_class = MyRobotConfig
    name = "myrobot"
    config: MyRobotConfig

    def __init__(self, config: MyRobotConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        config = self.config
        self._connected = False
        self._position = np.zeros(len(config.joints))
        self._goal = np.zeros(len(config.joints))
        self._last = time.monotonic()
        self.cameras = make_cameras_from_configs(config.cameras)

    @property
    def action_features(self) -> dict[str, type]:
        return {f"{j}.pos": float for j in self.config.joints}

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        if self._connected:
            raise ConnectionError(f"{self.name} is already connected.")
        # HARDWARE 1/3: open your port / SDK session here (self.config.port).
        opened = []
        try:
            for camera in self.cameras.values():
                camera.connect()
                opened.append(camera)
        except BaseException:
            for camera in opened:
                camera.disconnect()
            raise
        self._connected = True
        self._last = time.monotonic()

    def _advance(self) -> None:
        now = time.monotonic()
        step = np.deg2rad(self.config.max_speed_deg_s) * (now - self._last)
        self._position += np.clip(self._goal - self._position, -step, step)
        self._last = now

    def _get_observation(self) -> dict[str, float]:
        if not self._connected:
            raise ConnectionError(f"{self.name} is not connected; call connect() first.")
        # HARDWARE 2/3: read your joint positions here.
        self._advance()
        obs = {f"{j}.pos": float(p) for j, p in zip(self.config.joints, self._position)}
        for name, camera in self.cameras.items():
            obs[name] = camera.read_latest()  # the newest frame: never waits for the camera
        return obs

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        if not self._connected:
            raise ConnectionError(f"{self.name} is not connected; call connect() first.")
        # HARDWARE 3/3: write goal positions here.
        self._advance()
        self._goal = np.array([action[f"{j}.pos"] for j in self.config.joints])
        return action

    def disconnect(self) -> None:
        self._connected = False
        for camera in self.cameras.values():
            if camera.is_connected:
                camera.disconnect()
