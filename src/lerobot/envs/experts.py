"""Scripted experts that solve each sim task from privileged state, for recording demonstrations.

An expert is used like a policy: ``expert.reset(env)`` after ``env.reset(seed=...)``, then
``action = expert.select_action(obs, env)`` every step. It reads the true object poses from the
environment's unwrapped instance (never from images), plans gripper waypoints once per episode and
executes them in joint space, so its actions have exactly the env's action format and can be written
to a dataset as-is. Everything is deterministic given the env's seed.

- SO-100 ``pick_cube`` / ``pick_place`` / ``pick_color``: top-down grasp aligned with the yaw of the
  cube the task asks for (in ``pick_color`` the instructed one), lift (and place).
- ALOHA ``transfer_cube`` / ``insertion``: the ACT paper's end-effector waypoints (pick with the right
  arm, hand over / meet mid-air), turned into joint targets by damped-least-squares IK on the same
  MuJoCo model instead of the paper's mocap-driven twin simulation.
- PushT: a model-based pusher that checks every push on a replica of the env's physics before making
  it (:mod:`lerobot.envs.pusht_planner`).
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
    """Top-down pick (and place) for our SO-100 tasks, or the move above the cube for ``reach``, executed by
    IK on the grasp site."""

    def _plan(self, sim: gym.Env) -> None:
        from lerobot.envs import so100

        self.ik = SiteIK(sim.model, so100.MJ_JOINTS[:5], site="grasp", rot_weight=0.3)
        fps = sim.fps
        cube = sim.target_cube_pose
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
        plan = [Waypoint(0.0, start_pos, start_mat, start_grip)]
        if sim.task == "reach":  # straight to the point above the cube, gripper down, and hold it there
            plan.append(Waypoint(1.0, cube[:3] + so100.REACH_HEIGHT * up, grasp_mat, start_grip))
        else:
            plan += [
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

        def arm(obj: np.ndarray, quat: np.ndarray, side: float, lift: float) -> list:
            # ACT stops the grippers 0.05 m from the middle, where the peg's tip only just reaches the
            # pin's end (both 0.06 m from centres 0.1 m apart, pin half-length 0.04): about half the
            # episodes then never touch it. Pressing on to 0.025 m slides the peg 2.5 cm onto the pin.
            return [
                (120, obj + [0, 0, 0.08], quat, 1.0),
                (170, obj + [0, 0, -0.03], quat, 1.0),
                (220, obj + [0, 0, -0.03], quat, 0.0),
                (285, meet + [side * 0.1, 0, lift], quat, 0.0),
                (340, meet + [side * 0.05, 0, lift], quat, 0.0),
                (380, meet + [side * 0.025, 0, lift], quat, 0.0),
                (400, meet + [side * 0.025, 0, lift], quat, 0.0),
            ]

        return arm(socket, pick_left, -1.0, 0.0), arm(peg, pick_right, 1.0, lift_right)

    def _act(self, sim: gym.Env) -> np.ndarray:
        action = []
        for ik, plan in zip(self.iks, self.plans):
            pos, mat, grip = interpolate(plan, self.step + 1)
            arm = ik.solve(self.q, pos, mat)
            self.q[ik.qpos_ids] = arm
            action += [*arm, grip]
        return np.array(action)


# ---------------------------------------------------------------------------------------------- PushT


class PushTExpert(Expert):
    """Model-based pusher: plans each push on a replica of gym-pusht's physics (:mod:`.pusht_planner`).

    Per push it walks around the T to the chosen contact, re-simulates that contact's variants from its
    actual state on arrival, and plays the best one; then it plans the next push from the new pose.
    """

    ARRIVED = 10.0  # pixels from an intermediate way point before heading to the next one
    MOVED = 0.5  # block displacement (pixels or centi-radians) that invalidates the current plan

    def _plan(self, sim: gym.Env) -> None:
        from lerobot.envs.pusht_planner import PushTPlanner

        self.planner = PushTPlanner(sim)
        self.push = None
        self.path: list[np.ndarray] = []
        self.queue: list[np.ndarray] = []
        self.planned_pose = np.zeros(3)
        self.failed: set[int] = set()

    def _act(self, sim: gym.Env) -> np.ndarray:
        if self.queue:
            return self.queue.pop(0)
        agent, velocity = np.array(sim.agent.position), np.array(sim.agent.velocity)
        pose = np.array([*sim.block.position, sim.block.angle])
        if np.any(np.abs(pose - self.planned_pose) * [1, 1, 100] > self.MOVED):
            self.push, self.failed = None, set()
        cost = self.planner.cost(pose)
        # Pushes of a pixel or two only come out as simulated when started where simulated, at rest.
        at_start = 1.5 if cost < 10 else 4.0
        while True:
            if self.push is None:
                planned = self.planner.plan(agent, pose, self.failed)
                if planned is None:
                    return agent
                self.push, self.path = planned
                self.planned_pose = pose
            while len(self.path) > 1 and np.linalg.norm(self.path[0] - agent) < self.ARRIVED:
                self.path.pop(0)
            if len(self.path) > 1 or np.linalg.norm(self.path[0] - agent) > at_start:
                return self.path[0]
            push = self.planner.refine(self.push, agent, velocity, pose)
            if push is not None:
                self.push, self.queue = None, list(push.targets)
                return self.queue.pop(0)
            # From where the agent really is, this contact no longer helps: plan without it.
            self.failed.add(self.push.contact)
            self.push = None


# ---------------------------------------------------------------------------------------------- xArm


class XarmLiftExpert(Expert):
    """Closed-loop lift for the xarm env: hover over the cube, descend, close, raise past the target."""

    HOVER, GRASP_DEPTH, CLOSE_STEPS = 0.08, 0.005, 4

    def _plan(self, sim: gym.Env) -> None:
        self.phase, self.closing = 0, 0
        self.grasp_xy = sim.cube_pose[:2].copy()

    def _act(self, sim: gym.Env) -> np.ndarray:
        from lerobot.envs import xarm

        cube, eef = sim.cube_pose[:3], sim.eef
        if self.phase < 2:
            self.grasp_xy = cube[:2].copy()
        if self.phase == 0:  # above the cube, open
            target, grip = np.append(cube[:2], cube[2] + self.HOVER), -1.0
            if np.linalg.norm(target - eef) < 0.01:
                self.phase = 1
        elif self.phase == 1:  # down around it
            target, grip = np.append(cube[:2], cube[2] - self.GRASP_DEPTH), -1.0
            if np.linalg.norm(target - eef) < 0.008:
                self.phase = 2
        elif self.phase == 2:  # close in place
            target, grip = eef, 1.0
            self.closing += 1
            if self.closing >= self.CLOSE_STEPS:
                self.phase = 3
        else:  # lift above the success height
            target, grip = np.append(self.grasp_xy, xarm.Z_TARGET + 0.05), 1.0
        move = np.clip((target - eef) / xarm.STEP_SIZE, -1.0, 1.0)
        return np.append(move, grip)


# ---------------------------------------------------------------------------------------------- Meta-World


class MetaworldExpert(Expert):
    """Meta-World's own scripted policy for the episode's task (``metaworld.policies``), on its 39-D state."""

    def _plan(self, sim: gym.Env) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        self.policy = ENV_POLICY_MAP[sim.task]()

    def _act(self, sim: gym.Env) -> np.ndarray:
        return np.clip(self.policy.get_action(sim.raw_obs), -1.0, 1.0)


# ---------------------------------------------------------------------------------------------- factory

EXPERTS: dict[str, type[Expert]] = {
    "so100": SO100Expert,
    "aloha": AlohaExpert,
    "pusht": PushTExpert,
    "xarm": XarmLiftExpert,
    "metaworld": MetaworldExpert,
}


def make_expert(cfg_or_name: EnvConfig | str | None = None, **overrides) -> Expert:
    """The scripted expert for an env config or type name (``make_expert("so100")``)."""
    cfg = resolve_env_config(cfg_or_name, **overrides)
    if cfg.type not in EXPERTS:
        raise ValueError(
            f"No scripted expert for env type {cfg.type!r}; experts exist for: {', '.join(EXPERTS)}."
        )
    return EXPERTS[cfg.type]()
