"""A simulated leader arm (``--teleop.type=sim_leader``): a person's arm motion, scripted.

With no hardware there is no hand on a leader arm, so this one moves by itself: every joint sways
around its start pose (a sum of two sines per joint at incommensurate frequencies, so the motion
never repeats exactly and covers the workspace smoothly) and the gripper opens and closes. A user
sees the follower or twin move as under teleoperation, and recordings get varied, smooth motion.

Bound to a robot (``bind(robot)``, done by ``lerobot-record`` / ``collect_demonstrations``, or
``reset(observation)``), it starts from that robot's present pose, so the first action is no jump.
The motion is a function of the step count and ``seed``: deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lerobot.motors.arm import ARM_JOINTS, GRIPPER
from lerobot.teleoperators.teleoperator import (
    TELEOPERATOR_CONFIGS,
    TELEOPERATORS,
    Teleoperator,
    TeleoperatorConfig,
)
from lerobot.utils.errors import DeviceNotConnectedError


@TELEOPERATOR_CONFIGS.register("sim_leader")
@dataclass(kw_only=True)
class SimLeaderConfig(TeleoperatorConfig):
    action_keys: list[str] = field(default_factory=lambda: [f"{j}.pos" for j in (*ARM_JOINTS, GRIPPER)])
    """The follower's action keys (``robot.action_features``); grippers are the keys naming ``gripper``."""
    amplitude: float = 15.0
    """Sway of each joint around its start pose, in the follower's joint units (degrees)."""
    period_s: float = 4.0
    """Period of the slowest sway."""
    fps: float = 30.0
    """Steps per second of the script (one step per ``get_action``)."""
    seed: int = 0
    """Seed of the sway's phases, so a scripted session repeats exactly."""


@TELEOPERATORS.register("sim_leader")
class SimLeader(Teleoperator):
    """Scripted leader arm (see the module docstring)."""

    config_class = SimLeaderConfig
    name = "sim_leader"
    config: SimLeaderConfig

    def __init__(self, config: SimLeaderConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self._home = dict.fromkeys(self.config.action_keys, 0.0)
        self._step = 0
        self._connected = False
        self._phases = np.zeros((len(self.config.action_keys), 2))
        self.reset(seed=self.config.seed)

    @property
    def action_features(self) -> dict[str, type]:
        return dict.fromkeys(self.config.action_keys, float)

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def bind(self, robot: Any) -> None:
        """Start from ``robot``'s present pose."""
        self.reset(observation=robot.get_observation())

    def reset(self, seed: int | None = None, observation: dict[str, Any] | None = None) -> None:
        """Restart the script (new phases from ``seed``), from ``observation``'s pose if given."""
        if seed is not None:
            self._phases = np.random.default_rng(seed).uniform(0, 2 * np.pi, self._phases.shape)
        if observation is not None:
            self._home = {k: float(observation.get(k, self._home[k])) for k in self._home}
        self._step = 0

    def get_action(self) -> dict[str, float]:
        if not self._connected:
            raise DeviceNotConnectedError(f"{self.name} is not connected; call connect() first.")
        self._step += 1
        t = self._step / self.config.fps
        w = 2 * np.pi / self.config.period_s
        ramp = min(1.0, t / self.config.period_s)  # ease in from the start pose
        action = {}
        for i, key in enumerate(self.config.action_keys):
            sway = np.sin(w * t + self._phases[i, 0]) + 0.5 * np.sin(w * 1.618 * t + self._phases[i, 1])
            if key.removesuffix(".pos").endswith(GRIPPER):
                action[key] = float(np.clip(self._home[key] + ramp * 40.0 * sway, 0.0, 100.0))
            else:
                action[key] = float(self._home[key] + ramp * self.config.amplitude * sway / 1.5)
        return action
