"""Damped-least-squares inverse kinematics on a MuJoCo model, for the scripted experts.

Why IK on the simulated model itself (not a separate URDF chain): the expert must command exactly the
joint angles whose forward kinematics in *this* simulation put the gripper where the waypoint says,
so the Jacobians come from ``mj_jac`` on a scratch ``MjData`` that never touches the running episode.
The solve is warm-started from the previous solution, so a smoothly moving target yields a smoothly
moving, deterministic joint trajectory.
"""

from __future__ import annotations

from collections.abc import Sequence

import mujoco
import numpy as np


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Axis-angle-like 3-vector turning ``current`` (3x3) towards ``target`` (3x3), world frame."""
    return 0.5 * sum(np.cross(current[:, i], target[:, i]) for i in range(3))


def quat_to_mat(quat: Sequence[float]) -> np.ndarray:
    mat = np.zeros(9)
    mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
    return mat.reshape(3, 3)


def mat_to_quat(mat: np.ndarray) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, np.ascontiguousarray(mat, dtype=np.float64).reshape(9))
    return quat


def axis_angle_mat(axis: Sequence[float], angle: float) -> np.ndarray:
    quat = np.zeros(4)
    mujoco.mju_axisAngle2Quat(quat, np.asarray(axis, dtype=np.float64), float(angle))
    return quat_to_mat(quat)


class SiteIK:
    """Solve joint angles that bring one site (or a point ``offset`` on a body) to a target pose."""

    def __init__(
        self,
        model: mujoco.MjModel,
        joint_names: Sequence[str],
        site: str | None = None,
        body: str | None = None,
        rot_weight: float = 0.5,
        damping: float = 1e-3,
        offset: Sequence[float] = (0.0, 0.0, 0.0),
    ):
        if (site is None) == (body is None):
            raise ValueError("SiteIK needs exactly one of site= or body=.")
        self.model = model
        self.data = mujoco.MjData(model)
        self.site_id = model.site(site).id if site is not None else -1
        self.body_id = model.body(body).id if body is not None else -1
        joints = [model.joint(name) for name in joint_names]
        self.qpos_ids = np.array([j.qposadr[0] for j in joints])
        self.dof_ids = np.array([j.dofadr[0] for j in joints])
        self.lower = np.array([j.range[0] for j in joints])
        self.upper = np.array([j.range[1] for j in joints])
        self.rot_weight = rot_weight
        self.damping = damping
        self.offset = np.asarray(offset, dtype=np.float64)  # tracked point in the body's frame

    def pose(self, qpos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Forward kinematics: (position, 3x3 rotation) of the tracked frame for a full ``qpos``."""
        self.data.qpos[:] = qpos
        mujoco.mj_kinematics(self.model, self.data)
        return self._frame()

    def _frame(self) -> tuple[np.ndarray, np.ndarray]:
        if self.site_id >= 0:
            return self.data.site_xpos[self.site_id].copy(), self.data.site_xmat[self.site_id].reshape(
                3, 3
            ).copy()
        mat = self.data.xmat[self.body_id].reshape(3, 3).copy()
        return self.data.xpos[self.body_id] + mat @ self.offset, mat

    def solve(
        self,
        qpos: np.ndarray,
        target_pos: np.ndarray,
        target_mat: np.ndarray | None,
        iterations: int = 30,
        tol: float = 1e-4,
    ) -> np.ndarray:
        """Return the joint values (for ``joint_names``) reaching the target, starting from ``qpos``."""
        self.data.qpos[:] = qpos
        jacp = np.zeros((3, self.model.nv))
        jacr = np.zeros((3, self.model.nv))
        q = self.data.qpos[self.qpos_ids].copy()
        for _ in range(iterations):
            mujoco.mj_kinematics(self.model, self.data)
            mujoco.mj_comPos(self.model, self.data)
            pos, mat = self._frame()
            err_p = target_pos - pos
            if self.site_id >= 0:
                mujoco.mj_jacSite(self.model, self.data, jacp, jacr, self.site_id)
            else:
                mujoco.mj_jac(self.model, self.data, jacp, jacr, pos, self.body_id)
            if target_mat is None:
                err, jac = err_p, jacp[:, self.dof_ids]
            else:
                err_r = rotation_error(mat, target_mat) * self.rot_weight
                err = np.concatenate([err_p, err_r])
                jac = np.vstack([jacp[:, self.dof_ids], jacr[:, self.dof_ids] * self.rot_weight])
            if np.linalg.norm(err) < tol:
                break
            dq = jac.T @ np.linalg.solve(jac @ jac.T + self.damping * np.eye(len(err)), err)
            q = np.clip(q + dq, self.lower, self.upper)
            self.data.qpos[self.qpos_ids] = q
        return q
