"""Scripted experts that solve each sim task from privileged state, for recording demonstrations.

An expert is used like a policy: ``expert.reset(env)`` after ``env.reset(seed=...)``, then
``action = expert.select_action(obs, env)`` every step. It reads the true object poses from the
environment's unwrapped instance (never from images), plans gripper waypoints once per episode and
executes them in joint space, so its actions have exactly the env's action format and can be written
to a dataset as-is. Everything is deterministic given the env's seed.

- SO-100 ``pick_cube`` / ``pick_place``: top-down grasp aligned with the cube's yaw, lift (and place).
- ALOHA ``transfer_cube`` / ``insertion``: the ACT paper's end-effector waypoints (pick with the right
  arm, hand over / meet mid-air), turned into joint targets by damped-least-squares IK on the same
  MuJoCo model instead of the paper's mocap-driven twin simulation.
- PushT: a contact-planning pusher; best effort (see :class:`PushTExpert`).
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from lerobot.envs.configs import EnvConfig, resolve_env_config
from lerobot.envs.ik import SiteIK, axis_angle_mat, mat_to_quat, quat_to_mat


@dataclass
class Waypoint:
    """Where one gripper should be at control step ``t`` (position, 3x3 orientation, gripper command)."""

    t: float
    pos: np.ndarray
    mat: np.ndarray
    gripper: float


def _slerp(q0: np.ndarray, q1: np.ndarray, s: float) -> np.ndarray:
    dot = float(np.dot(q0, q1))
    if dot < 0:
        q1, dot = -q1, -dot
    if dot > 0.9995:
        q = q0 + s * (q1 - q0)
        return q / np.linalg.norm(q)
    theta = np.arccos(dot)
    return (np.sin((1 - s) * theta) * q0 + np.sin(s * theta) * q1) / np.sin(theta)


def interpolate(waypoints: list[Waypoint], t: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Pose and gripper at step ``t``: min-jerk-like (smoothstep) in time between waypoints."""
    if t <= waypoints[0].t:
        w = waypoints[0]
        return w.pos, w.mat, w.gripper
    for a, b in zip(waypoints, waypoints[1:]):
        if t <= b.t:
            s = (t - a.t) / (b.t - a.t)
            s = s * s * (3 - 2 * s)
            mat = quat_to_mat(_slerp(mat_to_quat(a.mat), mat_to_quat(b.mat), s))
            return a.pos + s * (b.pos - a.pos), mat, a.gripper + s * (b.gripper - a.gripper)
    w = waypoints[-1]
    return w.pos, w.mat, w.gripper


class Expert:
    """Base of the scripted experts: plan on ``reset``, act on ``select_action``."""

    def __init__(self) -> None:
        self.step = 0
        self._planned = False

    def reset(self, env: gym.Env | None = None) -> None:
        """Forget the last episode; with ``env`` (already reset), plan the new one right away."""
        self.step, self._planned = 0, False
        if env is not None:
            self._plan(env.unwrapped)
            self._planned = True

    def select_action(self, obs: dict | None, env: gym.Env) -> np.ndarray:
        if not self._planned:
            self.reset(env)
        action = self._act(env.unwrapped)
        self.step += 1
        return action.astype(np.float32)

    def _plan(self, sim: gym.Env) -> None:
        raise NotImplementedError

    def _act(self, sim: gym.Env) -> np.ndarray:
        raise NotImplementedError


# ---------------------------------------------------------------------------------------------- SO-100


class SO100Expert(Expert):
    """Top-down pick (and place) for our SO-100 tasks, executed by IK on the grasp site."""

    def _plan(self, sim: gym.Env) -> None:
        from lerobot.envs import so100

        self.ik = SiteIK(sim.model, so100.MJ_JOINTS[:5], site="grasp", rot_weight=0.3)
        fps = sim.fps
        cube = sim.cube_pose
        yaw = 2 * np.arctan2(cube[6], cube[3])
        azimuth = np.arctan2(cube[1], cube[0] - 0.045)
        # Gripper yaw: a cube face normal (yaw + k * 90 deg) nearest the arm's azimuth keeps the roll small.
        psi = yaw + np.round((azimuth - yaw) / (np.pi / 2)) * (np.pi / 2)
        down = np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
        grasp_mat = axis_angle_mat([0, 0, 1], psi) @ down
        start_pos, start_mat = self.ik.pose(sim.data.qpos)
        grasp = np.array([cube[0], cube[1], cube[2] + 0.003])
        up = np.array([0.0, 0.0, 1.0])
        opened, closed = so100.GRIPPER_OPEN, so100.GRIPPER_CLOSED
        start_grip = float(sim.joint_positions[5])
        plan = [
            Waypoint(0.0, start_pos, start_mat, start_grip),
            Waypoint(1.0, grasp + 0.07 * up, grasp_mat, opened),
            Waypoint(1.6, grasp, grasp_mat, opened),
            Waypoint(2.0, grasp, grasp_mat, closed),
            Waypoint(3.0, grasp + 0.10 * up, grasp_mat, closed),
        ]
        if sim.task == "pick_place":
            place = np.array([*so100.TARGET_XY, cube[2] + 0.012])
            place_mat = axis_angle_mat([0, 0, 1], np.arctan2(place[1], place[0] - 0.045)) @ down
            plan += [
                Waypoint(4.2, place + 0.08 * up, place_mat, closed),
                Waypoint(4.9, place, place_mat, closed),
                Waypoint(5.3, place, place_mat, opened),
                Waypoint(6.0, place + 0.08 * up, place_mat, opened),
            ]
        self.plan = [Waypoint(w.t * fps, w.pos, w.mat, w.gripper) for w in plan]
        self.q = sim.data.qpos.copy()

    def _act(self, sim: gym.Env) -> np.ndarray:
        pos, mat, grip = interpolate(self.plan, self.step + 1)
        arm = self.ik.solve(self.q, pos, mat)
        self.q[self.ik.qpos_ids] = arm
        return np.concatenate([arm, [grip]])


# ---------------------------------------------------------------------------------------------- ALOHA

# ACT's end-effector waypoints refer to a point 0.1347 m ahead of each ``gripper_link`` (between the
# fingers: where gym-aloha's mocap weld sits); the right arm's mocap frame is turned 180 deg about z.
ALOHA_TOOL_POINT = (0.1347, 0.0, -0.002)
ALOHA_ARM_JOINTS = ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate")


def _rot(axis: str, degrees: float) -> np.ndarray:
    return axis_angle_mat({"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1]}[axis], np.deg2rad(degrees))


class AlohaExpert(Expert):
    """ACT-paper waypoints for both ALOHA tasks, tracked by per-arm IK in joint space."""

    def _plan(self, sim: gym.Env) -> None:
        self.iks = [
            SiteIK(
                sim.model,
                [f"vx300s_{side}/{j}" for j in ALOHA_ARM_JOINTS],
                body=f"vx300s_{side}/gripper_link",
                offset=ALOHA_TOOL_POINT,
                rot_weight=0.5,
            )
            for side in ("left", "right")
        ]
        starts = [(*ik.pose(sim.data.qpos), 0.0) for ik in self.iks]
        objects = sim.object_poses
        left, right = self._waypoints(sim.task, objects)
        self.plans = []
        for start, (plan, flip) in zip(starts, ((left, False), (right, True))):
            first = Waypoint(0, start[0], start[1], start[2])
            # Waypoint orientations are ACT's mocap frames; the right gripper's frame is that turned by 180 deg.
            rest = [
                Waypoint(t, np.asarray(p, float), m @ _rot("z", 180) if flip else m, g) for t, p, m, g in plan
            ]
            self.plans.append([first, *rest])
        self.q = sim.data.qpos.copy()

    @staticmethod
    def _waypoints(task: str, objects: np.ndarray) -> tuple[list, list]:
        """(t, position, mocap orientation, gripper) per arm, excluding the start pose."""
        eye = np.eye(3)
        if task == "transfer_cube":
            box = objects[:3]
            meet = np.array([0.0, 0.5, 0.25])
            pick, meet_left = _rot("y", -60), _rot("x", 90)
            left = [
                (100, meet + [-0.1, 0, -0.02], meet_left, 1.0),
                (260, meet + [0.02, 0, -0.02], meet_left, 1.0),
                (310, meet + [0.02, 0, -0.02], meet_left, 0.0),
                (360, meet + [-0.1, 0, -0.02], eye, 0.0),
                (400, meet + [-0.1, 0, -0.02], eye, 0.0),
            ]
            right = [
                (90, box + [0, 0, 0.08], pick, 1.0),
                (130, box + [0, 0, -0.015], pick, 1.0),
                (170, box + [0, 0, -0.015], pick, 0.0),
                (200, meet + [0.05, 0, 0], eye, 0.0),
                (220, meet, eye, 0.0),
                (310, meet, eye, 1.0),
                (360, meet + [0.1, 0, 0], pick, 1.0),
                (400, meet + [0.1, 0, 0], pick, 1.0),
            ]
            return left, right
        peg, socket = objects[:3], objects[7:10]
        meet, lift_right = np.array([0.0, 0.5, 0.15]), 0.00715
        pick_left, pick_right = _rot("y", 60), _rot("y", -60)

        def arm(obj: np.ndarray, quat: np.ndarray, meet_far: np.ndarray, meet_near: np.ndarray) -> list:
            return [
                (120, obj + [0, 0, 0.08], quat, 1.0),
                (170, obj + [0, 0, -0.03], quat, 1.0),
                (220, obj + [0, 0, -0.03], quat, 0.0),
                (285, meet_far, quat, 0.0),
                (340, meet_near, quat, 0.0),
                (400, meet_near, quat, 0.0),
            ]

        left = arm(socket, pick_left, meet + [-0.1, 0, 0], meet + [-0.05, 0, 0])
        right = arm(peg, pick_right, meet + [0.1, 0, lift_right], meet + [0.05, 0, lift_right])
        return left, right

    def _act(self, sim: gym.Env) -> np.ndarray:
        action = []
        for ik, plan in zip(self.iks, self.plans):
            pos, mat, grip = interpolate(plan, self.step + 1)
            arm = ik.solve(self.q, pos, mat)
            self.q[ik.qpos_ids] = arm
            action += [*arm, grip]
        return np.array(action)


# ---------------------------------------------------------------------------------------------- PushT


def _wrap(angle: float) -> float:
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


class PushTExpert(Expert):
    """A geometric pusher for gym-pusht: rotate the T by pushing a bar end, then push it through its centre.

    Best effort: success needs 95% area overlap, i.e. a pose within a couple of pixels and degrees, which
    open-loop pushes rarely hit exactly; see ``benchmarks/results/experts.json`` for its measured rate.
    """

    AGENT_RADIUS = 15.0
    ANGLE_TOL = 0.05
    POS_TOL = 2.0

    def _plan(self, sim: gym.Env) -> None:
        self.pushing = 0
        self.push_dir = np.zeros(2)

    def _state(self, sim: gym.Env) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray]:
        block = sim.block
        rot = np.array(
            [[np.cos(block.angle), -np.sin(block.angle)], [np.sin(block.angle), np.cos(block.angle)]]
        )
        verts = np.array([np.array(v) for shape in sim._block_shapes for v in shape.get_vertices()])
        com = np.array(block.position) + rot @ np.array(block.center_of_gravity)
        return (
            np.array(sim.agent.position),
            com,
            float(block.angle),
            rot,
            verts @ rot.T + np.array(block.position),
        )

    def _goal(self, sim: gym.Env) -> tuple[np.ndarray, float]:
        gx, gy, gth = sim.goal_pose
        block = sim.block
        rot = np.array([[np.cos(gth), -np.sin(gth)], [np.sin(gth), np.cos(gth)]])
        return np.array([gx, gy]) + rot @ np.array(block.center_of_gravity), float(gth)

    def _contact(self, sim: gym.Env) -> tuple[np.ndarray, np.ndarray, float] | None:
        """(pre-contact point, push direction, push length) for the next push, or None when placed."""
        agent, com, angle, rot, verts = self._state(sim)
        goal_com, goal_angle = self._goal(sim)
        d_angle = _wrap(goal_angle - angle)
        d_pos = goal_com - com
        dist = float(np.linalg.norm(d_pos))
        if abs(d_angle) > self.ANGLE_TOL and dist < 30:
            # Push a bar end along the block's local +y (the side without the stem): torque sign = side.
            side = np.sign(d_angle)
            local = np.array([55.0 * side, -self.AGENT_RADIUS - 6.0])
            pre = np.array(sim.block.position) + rot @ local
            if self._inside(pre):
                return pre, rot @ np.array([0.0, 1.0]), float(np.clip(abs(d_angle) * 40, 4, 20))
        if dist < self.POS_TOL:
            return None
        # Push through the centre towards the goal; near a wall, the nearest direction whose start is reachable.
        for turn in (0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -1.5):
            direction = axis_angle_mat([0, 0, 1], turn)[:2, :2] @ (d_pos / dist)
            reach = float(np.max((verts - com) @ -direction))
            pre = com - direction * (reach + self.AGENT_RADIUS + 6.0)
            if self._inside(pre):
                return pre, direction, float(np.clip(dist, 2, 25))
        return None

    @staticmethod
    def _inside(point: np.ndarray, margin: float = 25.0) -> bool:
        return bool(np.all(point > margin) and np.all(point < 512 - margin))

    def _act(self, sim: gym.Env) -> np.ndarray:
        agent, com, *_ = self._state(sim)
        if self.pushing > 0:
            self.pushing -= 1
            self.target = self.target + self.push_dir * self.push_len
            return np.clip(self.target, 10, 500)
        plan = self._contact(sim)
        if plan is None:
            return agent
        pre, direction, length = plan
        if np.linalg.norm(agent - pre) < 4.0:
            self.pushing, self.push_dir, self.push_len = 2, direction, length / 2 + 6.0
            self.target = agent + direction * 6.0
            return self.target
        return np.clip(self._detour(agent, pre, com), 10, 500)

    @staticmethod
    def _detour(agent: np.ndarray, pre: np.ndarray, com: np.ndarray, clearance: float = 95.0) -> np.ndarray:
        """Next agent target towards ``pre`` that goes around the block instead of through it."""
        seg = pre - agent
        t = np.clip(np.dot(com - agent, seg) / max(np.dot(seg, seg), 1e-9), 0, 1)
        if np.linalg.norm(agent + t * seg - com) > clearance * 0.8 or np.linalg.norm(agent - com) < 1e-6:
            step = seg if np.linalg.norm(seg) < 40 else seg / np.linalg.norm(seg) * 40
            return agent + step
        a_agent = np.arctan2(*(agent - com)[::-1])
        a_pre = np.arctan2(*(pre - com)[::-1])
        turn = np.clip(_wrap(a_pre - a_agent), -0.6, 0.6)
        a = a_agent + turn
        return com + clearance * np.array([np.cos(a), np.sin(a)])


# ---------------------------------------------------------------------------------------------- factory

EXPERTS: dict[str, type[Expert]] = {"so100": SO100Expert, "aloha": AlohaExpert, "pusht": PushTExpert}


def make_expert(cfg_or_name: EnvConfig | str | None = None, **overrides) -> Expert:
    """The scripted expert for an env config or type name (``make_expert("so100")``)."""
    cfg = resolve_env_config(cfg_or_name, **overrides)
    if cfg.type not in EXPERTS:
        raise ValueError(
            f"No scripted expert for env type {cfg.type!r}; experts exist for: {', '.join(EXPERTS)}."
        )
    return EXPERTS[cfg.type]()
