"""Forward (and damped-least-squares inverse) kinematics for small serial arms, numpy only.

Why our own few lines instead of a URDF library (placo, pinocchio, ikpy): the safety layer only needs
the end-effector position of a 5-6 joint chain, every control step, on any machine the robot runs on;
a compiled dependency and a URDF with meshes would be far more than that needs.

A chain is a URDF-like list of revolute joints. Each :class:`Joint` says where its axis sits relative
to the previous joint's frame (``offset``, metres, a pure translation: every frame keeps the base
orientation at the zero pose), which way the axis points (``axis``, a unit vector in that frame) and
how the robot's reading maps to the kinematic angle (``angle = sign * (reading - zero_deg)``). The
frame of joint ``i`` is therefore ``T_i = T_{i-1} @ Trans(offset_i) @ Rot(axis_i, angle_i)`` and the
end effector is ``T_n @ Trans(tip)``. At the zero pose the tip lies at the sum of all offsets.

Base frame convention for the ready chains: origin on the table under the shoulder-pan axis, ``+z`` up,
``+x`` forward (the direction the gripper points at the zero pose), ``+y`` to the arm's left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

Vec3 = tuple[float, float, float]


@dataclass(frozen=True)
class Joint:
    """One revolute joint: the motor it reads (``name``), where its axis is, and how it turns."""

    name: str
    axis: Vec3
    offset: Vec3
    sign: float = 1.0
    zero_deg: float = 0.0


@dataclass(frozen=True)
class KinematicChain:
    """A serial chain of revolute joints ending in a tool point ``tip`` (in the last joint's frame)."""

    name: str
    joints: tuple[Joint, ...]
    tip: Vec3 = (0.0, 0.0, 0.0)

    @property
    def joint_names(self) -> list[str]:
        return [j.name for j in self.joints]


# SO-100 / SO-101 (same geometry), approximate. Link vectors come from the public SO-ARM100 design as
# published in MuJoCo Menagerie's ``trs_so_arm100`` model (derived from TheRobotStudio's URDF):
# pan axis 0.0165 m above the base plate, shoulder-lift axis 0.1025 m above and 0.0306 m in front of
# it, upper arm 0.11257 m long with a 0.028 m dog-leg, forearm 0.1349 m (+0.0052 m), wrist-flex to
# wrist-roll 0.0601 m, wrist-roll to the fixed-jaw tip ~0.10 m. The zero pose is the middle of the
# calibrated ranges (what ``DEGREES`` normalisation reads as 0): upper arm vertical, forearm and gripper
# horizontal and pointing forward. The joint signs (positive shoulder_lift / elbow_flex / wrist_flex
# tilt the arm forward and down) are a convention, not measured on hardware: check them on your arm
# (move one joint, compare with :func:`forward_kinematics`) before relying on tight workspace bounds.
SO100_CHAIN = KinematicChain(
    name="so100",
    joints=(
        Joint("shoulder_pan", axis=(0.0, 0.0, 1.0), offset=(0.0, 0.0, 0.0165)),
        Joint("shoulder_lift", axis=(0.0, 1.0, 0.0), offset=(0.0306, 0.0, 0.1025)),
        Joint("elbow_flex", axis=(0.0, 1.0, 0.0), offset=(0.028, 0.0, 0.11257)),
        Joint("wrist_flex", axis=(0.0, 1.0, 0.0), offset=(0.1349, 0.0, 0.0052)),
        Joint("wrist_roll", axis=(1.0, 0.0, 0.0), offset=(0.0601, 0.0, 0.0)),
    ),
    tip=(0.10, 0.0, 0.0),
)

# Koch v1.1, approximate (+-1 cm): values read off the published Koch v1.1 design (jess-moss/koch-v1-1,
# derived from Alexander Koch's low-cost-robot), not from a URDF: shoulder axes ~0.055 m above the
# table, upper arm ~0.108 m, forearm ~0.100 m, wrist-flex to wrist-roll ~0.045 m, wrist-roll to the
# gripper tip ~0.07 m. Same zero-pose and sign conventions as the SO-100 chain; measure your own arm
# and pass a custom :class:`KinematicChain` where centimetres matter.
KOCH_CHAIN = KinematicChain(
    name="koch",
    joints=(
        Joint("shoulder_pan", axis=(0.0, 0.0, 1.0), offset=(0.0, 0.0, 0.025)),
        Joint("shoulder_lift", axis=(0.0, 1.0, 0.0), offset=(0.0, 0.0, 0.030)),
        Joint("elbow_flex", axis=(0.0, 1.0, 0.0), offset=(0.0, 0.0, 0.108)),
        Joint("wrist_flex", axis=(0.0, 1.0, 0.0), offset=(0.100, 0.0, 0.0)),
        Joint("wrist_roll", axis=(1.0, 0.0, 0.0), offset=(0.045, 0.0, 0.0)),
    ),
    tip=(0.07, 0.0, 0.0),
)

CHAINS: dict[str, KinematicChain] = {
    "so100": SO100_CHAIN,
    "so101": SO100_CHAIN,
    "so100_follower": SO100_CHAIN,
    "so101_follower": SO100_CHAIN,
    "so_follower": SO100_CHAIN,
    "so100_sim": SO100_CHAIN,  # the simulated twins speak their real arm's units (degrees)
    "so101_sim": SO100_CHAIN,
    "koch": KOCH_CHAIN,
    "koch_v1_1": KOCH_CHAIN,
    "koch_follower": KOCH_CHAIN,
}


def get_chain(chain: str | KinematicChain) -> KinematicChain:
    """A chain object from its name (``"so100"``, ``"koch"``, a robot type) or the object itself."""
    if isinstance(chain, KinematicChain):
        return chain
    try:
        return CHAINS[chain]
    except KeyError:
        raise ValueError(
            f"Unknown kinematic chain '{chain}'; known: {sorted(CHAINS)}, or pass a KinematicChain."
        ) from None


def chain_for_robot(robot: Any, chain: str | KinematicChain | None, needed_by: str) -> KinematicChain:
    """``chain``, or the one registered under the robot's name or type; its joints must be the robot's.

    ``needed_by`` names the setting that wants the chain, for the error when none is registered.
    """
    if chain is None:
        chain = next((n for n in (robot.name, robot.robot_type) if n in CHAINS), None)
        if chain is None:
            raise ValueError(
                f"{needed_by} need a kinematic chain and none is registered for {robot.name}; set "
                f"kinematic_chain to one of {sorted(CHAINS)} or a KinematicChain."
            )
    resolved = get_chain(chain)
    missing = [j for j in resolved.joint_names if f"{j}.pos" not in robot.action_features]
    if missing:
        raise ValueError(
            f"Kinematic chain '{resolved.name}' needs motors {missing}, which {robot.name} lacks."
        )
    return resolved


def box_bounds(bounds: Sequence[Sequence[float]], name: str) -> np.ndarray:
    """``((x_min, y_min, z_min), (x_max, y_max, z_max))`` as a checked (2, 3) array of metres."""
    box = np.asarray(bounds, dtype=np.float64)
    if box.shape != (2, 3) or not np.all(box[0] <= box[1]):
        raise ValueError(
            f"{name} must be ((x_min, y_min, z_min), (x_max, y_max, z_max)) in metres, got {bounds}."
        )
    return box


def _rotation(axis: Vec3, angle_rad: float) -> np.ndarray:
    """Rodrigues' formula: 3x3 rotation by ``angle_rad`` about ``axis`` (normalised here)."""
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(angle_rad) * k + (1.0 - np.cos(angle_rad)) * (k @ k)


def _angles(chain: KinematicChain, joint_angles_deg: Sequence[float] | Mapping[str, float]) -> np.ndarray:
    """Readings in chain order, from a sequence or a dict keyed by joint name or ``"<joint>.pos"``."""
    if isinstance(joint_angles_deg, Mapping):
        values = []
        for name in chain.joint_names:
            key = name if name in joint_angles_deg else f"{name}.pos"
            if key not in joint_angles_deg:
                raise ValueError(f"Joint angles for chain '{chain.name}' lack '{name}' (or '{name}.pos').")
            values.append(float(joint_angles_deg[key]))
        return np.asarray(values)
    q = np.asarray(joint_angles_deg, dtype=np.float64).reshape(-1)
    if len(q) != len(chain.joints):
        raise ValueError(f"Chain '{chain.name}' has {len(chain.joints)} joints, got {len(q)} angles.")
    return q


def link_frames(
    chain: KinematicChain, joint_angles_deg: Sequence[float] | Mapping[str, float]
) -> list[np.ndarray]:
    """Every frame of the chain as 4x4 homogeneous transforms in the base frame.

    Returns ``len(chain.joints) + 1`` poses: one per joint (its axis origin, already rotated by its
    angle) followed by the end effector.
    """
    readings = _angles(chain, joint_angles_deg)
    frames = []
    pose = np.eye(4)
    for joint, reading in zip(chain.joints, readings):
        step = np.eye(4)
        step[:3, :3] = _rotation(joint.axis, np.deg2rad(joint.sign * (reading - joint.zero_deg)))
        step[:3, 3] = joint.offset
        pose = pose @ step
        frames.append(pose)
    tip = np.eye(4)
    tip[:3, 3] = chain.tip
    frames.append(pose @ tip)
    return frames


def forward_kinematics(
    chain: KinematicChain, joint_angles_deg: Sequence[float] | Mapping[str, float]
) -> np.ndarray:
    """4x4 pose of the end effector in the base frame (see :func:`link_frames` for all links)."""
    return link_frames(chain, joint_angles_deg)[-1]


def inverse_kinematics(
    chain: KinematicChain,
    target_xyz: Sequence[float],
    q0: Sequence[float],
    *,
    joint_limits_deg: Sequence[tuple[float, float]] | None = None,
    damping: float = 1e-2,
    tol_m: float = 1e-5,
    max_iter: int = 200,
    max_step_m: float = 0.02,
) -> np.ndarray:
    """Joint readings (degrees, chain order) that put the tip at ``target_xyz``, starting from ``q0``.

    Damped least squares on the position error, with the Jacobian taken by finite differences of
    :func:`forward_kinematics` so any chain works without deriving it. The damping keeps steps finite
    near singularities (a stretched arm) and makes unreachable targets converge to the closest reach
    instead of blowing up; check the residual with :func:`forward_kinematics` when that matters.
    Each iteration aims at most ``max_step_m`` toward the target, where the linearisation holds.
    Readings are clipped to ``joint_limits_deg`` after every step when given.
    """
    target = np.asarray(target_xyz, dtype=np.float64)
    q = np.asarray(q0, dtype=np.float64).copy()
    lo, hi = (
        (np.array(b, dtype=np.float64) for b in zip(*joint_limits_deg)) if joint_limits_deg else (None, None)
    )
    eps_deg = 1e-4
    for _ in range(max_iter):
        pos = forward_kinematics(chain, q)[:3, 3]
        err = target - pos
        dist = np.linalg.norm(err)
        if dist < tol_m:
            break
        if dist > max_step_m:  # linearisation only holds nearby: approach far targets in short steps
            err = err * (max_step_m / dist)
        jac = np.empty((3, len(q)))
        for i in range(len(q)):
            dq = q.copy()
            dq[i] += eps_deg
            jac[:, i] = (forward_kinematics(chain, dq)[:3, 3] - pos) / eps_deg
        # Solve in metres-per-radian units so the damping weighs joints and distances comparably.
        jac_rad = jac * (180.0 / np.pi)
        step_rad = jac_rad.T @ np.linalg.solve(jac_rad @ jac_rad.T + damping**2 * np.eye(3), err)
        q = q + np.rad2deg(step_rad)
        if lo is not None:
            q = np.clip(q, lo, hi)
    return q
