"""End-effector control: drive a joint-space arm with Cartesian steps (``keyboard_ee``, ``gamepad``).

:class:`EndEffectorControl` wraps an arm (real, emulated or a twin speaking degrees) whose joints
form a :mod:`~lerobot.robots.kinematics` chain. Its actions are

- ``delta_x``, ``delta_y``, ``delta_z``: metres to move the tool point this step, in the chain's base
  frame (+x forward, +y left, +z up), each capped at ``max_step_m``;
- ``gripper``: the gripper's target, in the arm's own ``gripper.pos`` units (0 closed .. 100 open).

Each step the tool point of the *last commanded* joints (not of a fresh reading: the arm sags and
lags, and re-reading it would make a held key drift) moves by the delta, is kept inside ``bounds``, and
damped-least-squares inverse kinematics, seeded with those joints, gives the new joint targets.
Joints outside the chain hold their last target. The arm's own limits (``max_relative_target``, a
:class:`~lerobot.robots.safety.SafetyLayer` around it) still apply to what is sent, and what was
actually sent is what the next step starts from. ``send_action`` returns the applied deltas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lerobot.motors.arm import GRIPPER
from lerobot.robots.kinematics import (
    KinematicChain,
    box_bounds,
    chain_for_robot,
    forward_kinematics,
    inverse_kinematics,
)
from lerobot.robots.robot import ROBOT_CONFIGS, ROBOTS, Robot, RobotWrapper
from lerobot.robots.so100_follower import SO100Follower, SO100FollowerConfig

EE_ACTION_KEYS = ("delta_x", "delta_y", "delta_z", GRIPPER)
Bounds = tuple[tuple[float, float, float], tuple[float, float, float]]


@dataclass
class EndEffectorConfig:
    kinematic_chain: str | KinematicChain | None = None
    """A chain name from :data:`~lerobot.robots.kinematics.CHAINS`, a chain, or None: the robot's."""
    bounds: Bounds | None = None
    """``((x_min, y_min, z_min), (x_max, y_max, z_max))`` in metres: the tool point stays inside."""
    max_step_m: float = 0.02
    """Largest move per step and axis; bigger deltas are capped (a stuck key never jumps the arm)."""


class EndEffectorControl(RobotWrapper):
    """Cartesian-step actions in, joint targets out (see the module docstring)."""

    def __init__(self, robot: Robot, config: EndEffectorConfig | None = None):
        super().__init__(robot)
        self.ee_config = config = config or EndEffectorConfig()
        self.chain = chain_for_robot(robot, config.kinematic_chain, "End-effector control")
        self._joint_keys = [f"{j}.pos" for j in self.chain.joint_names]
        if f"{GRIPPER}.pos" not in robot.action_features:
            raise ValueError(f"End-effector control needs a {GRIPPER}.pos action, which {robot.name} lacks.")
        if getattr(robot.config, "use_degrees", True) is False:
            raise ValueError(
                f"{robot.name} reports joints in -100..100; end-effector control needs degrees: set "
                "use_degrees=True in its config."
            )
        self._bounds = None if config.bounds is None else box_bounds(config.bounds, "bounds")
        self._targets: dict[str, float] | None = None  # the joint targets last sent

    @property
    def action_features(self) -> dict[str, type]:
        return dict.fromkeys(EE_ACTION_KEYS, float)

    def connect(self, calibrate: bool = True) -> None:
        super().connect(calibrate)
        self._targets = None

    def reset(self) -> None:
        """Start the next step from the arm's present joints (after it was moved by other means)."""
        self._targets = None

    def tool_position(self) -> np.ndarray:
        """(x, y, z) of the tool point for the last commanded joints (the present ones before any)."""
        return forward_kinematics(self.chain, self._joints())[:3, 3]

    def _joints(self) -> dict[str, float]:
        if self._targets is None:
            obs = self.robot.get_observation()
            self._targets = {k: float(obs[k]) for k in self.robot.action_features if k in obs}
        return {j: self._targets[f"{j}.pos"] for j in self.chain.joint_names}

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        start_joints = self._joints()
        start = forward_kinematics(self.chain, start_joints)[:3, 3]
        cap = self.ee_config.max_step_m
        delta = np.clip([action["delta_x"], action["delta_y"], action["delta_z"]], -cap, cap)
        target = start + delta
        if self._bounds is not None:
            target = np.clip(target, self._bounds[0], self._bounds[1])
        q0 = [start_joints[j] for j in self.chain.joint_names]
        q = inverse_kinematics(self.chain, target, q0) if np.any(target != start) else np.asarray(q0)
        goal = dict(self._targets)  # joints outside the chain (and anything else) hold
        goal.update(zip(self._joint_keys, (float(v) for v in q)))
        goal[f"{GRIPPER}.pos"] = float(action[GRIPPER])
        sent = self.robot.send_action(goal)
        self._targets = {k: float(v) for k, v in sent.items()}
        moved = self.tool_position() - start
        return {"delta_x": float(moved[0]), "delta_y": float(moved[1]), "delta_z": float(moved[2]),
                GRIPPER: self._targets[f"{GRIPPER}.pos"]}  # fmt: skip


@ROBOT_CONFIGS.register("so101_follower_end_effector")
@ROBOT_CONFIGS.register("so100_follower_end_effector")
@dataclass(kw_only=True)
class SO100FollowerEndEffectorConfig(SO100FollowerConfig):
    """An SO-100/101 follower (same port, id and calibration) driven by Cartesian steps."""

    end_effector_bounds: Bounds | None = None
    """Where the tool point may go, metres in the arm's base frame (see :class:`EndEffectorConfig`)."""
    max_step_m: float = 0.02
    """Largest tool-point move per step and axis, in metres; bigger deltas are capped."""


@ROBOTS.register("so101_follower_end_effector")
@ROBOTS.register("so100_follower_end_effector")
class SO100FollowerEndEffector(EndEffectorControl):
    config_class = SO100FollowerEndEffectorConfig

    def __init__(self, config: SO100FollowerEndEffectorConfig | None = None, **kwargs: object):
        config = self.resolve_config(config, kwargs)
        super().__init__(
            SO100Follower(config),  # the arm reads its own fields; the wrapper shares the config
            EndEffectorConfig("so100", config.end_effector_bounds, config.max_step_m),
        )
