"""Follower arms: a :class:`~lerobot.motors.arm.MotorArm` that is a ``Robot``.

:class:`ArmFollower` (SO-100/101, Koch followers) observes joint positions and camera frames and
writes goal positions; :func:`write_goal_positions` is how every ``MotorArm`` robot (followers,
LeKiwi, HopeJR) sends goals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot.cameras import CameraConfig, make_cameras_from_configs
from lerobot.motors.arm import ArmConfig, MotorArm
from lerobot.robots.robot import Robot, RobotConfig
from lerobot.robots.safety import ensure_safe_goal_position


@dataclass(kw_only=True)
class ArmFollowerConfig(RobotConfig, ArmConfig):
    max_relative_target: float | dict[str, float] | None = None
    """Largest goal change per action, in the joints' units (one value, or one per motor name)."""
    cameras: dict[str, CameraConfig] = field(default_factory=dict)


def write_goal_positions(
    arm: MotorArm, goal: dict[str, float], max_relative_target: float | dict[str, float] | None
) -> dict[str, float]:
    """Write ``{motor: goal}`` and return what was written, keyed ``"<motor>.pos"``.

    With ``max_relative_target`` each goal is first limited around the position read now, not
    around an observation the caller may have taken a while ago (the arm has moved since); if
    that read fails the error propagates and nothing is written. The bus then refuses NaN and
    infinity and clamps each goal to the calibrated range, and what it wrote is what a robot's
    ``send_action`` reports.
    """
    if max_relative_target is not None:
        names = list(goal)
        present = arm.bus.sync_read("Present_Position", names, num_retry=arm.config.num_read_retries)
        goal = ensure_safe_goal_position(
            goal, {name: float(present[name]) for name in names}, max_relative_target
        )
    written = arm.bus.sync_write("Goal_Position", goal)
    return {f"{name}.pos": float(value) for name, value in written.items()}


class ArmFollower(MotorArm, Robot):
    """A follower arm: observations are joint positions (+ camera frames), actions are goal positions."""

    config: ArmFollowerConfig

    def __init__(self, config: ArmFollowerConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.cameras = make_cameras_from_configs(self.config.cameras)
        limit = self.config.max_relative_target
        if isinstance(limit, dict) and set(limit) != set(self.bus.motors):
            raise ValueError(
                f"max_relative_target names {sorted(limit)}; it must name exactly {list(self.bus.motors)}."
            )

    def _get_observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = self.read_positions()
        for name, camera in self.cameras.items():
            obs[name] = camera.read_latest()  # never blocks the control loop on a slow camera
        return obs

    def read_present(self) -> dict[str, float]:
        """The joint positions, read now (no camera frame is needed to check a step)."""
        return self.read_positions()

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        goal = {key.removesuffix(".pos"): value for key, value in action.items()}
        return write_goal_positions(self, goal, self.config.max_relative_target)
