"""xArm lift (``XarmLift-v0``): gym-xarm's lift task, ported to MuJoCo 3 on our own MJCF scene.

Why a port: gym-xarm 0.1.1 (the env of LeRobot's TD-MPC configs and of the ``lerobot/xarm_lift_medium``
datasets) requires ``mujoco<3`` and gymnasium-robotics, while our simulators pin mujoco 3.8.1, so the two
cannot share an install. The scene here is written from scratch (an xArm7-like arm of capsules with the
xArm7's link offsets, a parallel gripper, a table and a cube); what is kept from gym-xarm are the task's
facts, so that a policy or dataset made for one fits the other:

- Positions are metres relative to gym-xarm's "centre of table" point (the world origin here; the table
  top is 0.094 m below it). The gripper starts pointing down at (-0.375, -0.005, 0.099) + U(+-0.05)^3,
  the 7 cm cube at (-0.15, -0.10) + U(+-0.05)^2 on the table.
- action (4) in [-1, 1]: gripper displacement x, y, z of up to 5 cm per step (a mocap body welded to the
  hand is moved from the hand's current pose, and clamped at the workspace limits) and a gripper force
  command (+1 closes, -1 opens).
- ``agent_pos`` (4) = grasp point position + gripper closure angle (0 open .. 0.85 rad closed), named
  ``motor_0..motor_3`` as in ``lerobot/xarm_lift_medium``; ``pixels`` = one 84x84 camera
  (``observation.image``).
- success: the cube's centre reaches z = 0.08 (0.15 above gym-xarm's spawn height -0.07); the episode then
  terminates. Reward: gym-xarm's dense lift reward (reach term / 100 + pick term, see :meth:`reward`).

Control runs at ``fps`` (15 Hz, the datasets' rate) with the physics at 500 Hz.

``domain_randomization=True`` redraws each episode's lighting, colours, camera pose, the cube's mass and
friction and the gripper's gains (:mod:`lerobot.envs.domain_randomization`), reported in the reset
``info["domain_randomization"]``; the arm follows a mocap weld, so it has no servo gains to vary.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

STATE_NAMES = ["motor_0", "motor_1", "motor_2", "motor_3"]
ACTION_NAMES = ["motor_0", "motor_1", "motor_2", "motor_3"]
TASKS = ("XarmLift-v0",)

TABLE_TOP = -0.09375  # table surface height below the centre-of-table point
CUBE_HALF = 0.035
CUBE_XY = np.array([-0.15, -0.10])  # cube spawn centre; +- 0.05 in x and y
GRIPPER_START = np.array([-0.375, -0.005, 0.09875])  # grasp point at reset; +- 0.05 per axis
SPAWN_NOISE = 0.05
INIT_Z = -0.07  # gym-xarm's cube spawn height: the lift target and the reward are measured from it
LIFT_HEIGHT = 0.15
Z_TARGET = INIT_Z + LIFT_HEIGHT
STEP_SIZE = 0.05  # metres of gripper motion per unit action per step
# Workspace of the grasp point (x, y relative to the table centre; z between the floor and 1.2 m in
# gym-xarm's world, i.e. -0.436 .. 0.564 here).
X_RANGE = (-0.405, 0.045)
Y_RANGE = (-0.3, 0.3)
Z_RANGE = (0.2 - 0.63625, 1.2 - 0.63625)
DOWN_QUAT = np.array([0.0, 1.0, 0.0, 0.0])  # hand z axis pointing at the table
FINGER_TRAVEL = 0.045  # slide of each finger from open to shut
MAX_GRIPPER_ANGLE = 0.85  # the xArm gripper's knuckle range, used to report closure as an angle
# A comfortable elbow-up configuration the reset IK starts from (radians).
HOME_QPOS = np.array([0.0, -0.3, 0.0, 2.4, 0.0, 1.04, np.pi])


@cache
def build_mjcf(timestep: float) -> str:
    """The scene: table, pedestal, a 7-joint arm (xArm7 link offsets) with a parallel gripper, one cube."""

    def link(name: str, pos: str, axis: str, geom: str, child: str = "", rng: str = "-6.28 6.28") -> str:
        return (
            f'<body name="{name}" pos="{pos}" gravcomp="1">'
            f'<joint name="j_{name}" axis="{axis}" range="{rng}"/>{geom}{child}</body>'
        )

    def capsule(to: str, size: float = 0.045) -> str:
        return f'<geom type="capsule" fromto="0 0 0 {to}" size="{size}" material="arm" class="visual"/>'

    pad = (
        '<geom type="box" size="0.012 0.008 0.025" material="finger" friction="1.5 0.01 0.0001" '
        'condim="4" solimp="0.95 0.99 0.001" solref="0.004 1"/>'
    )
    hand = f"""
      <body name="hand" pos="0.076 0 0.097" gravcomp="1">
        <joint name="j_link7" axis="0 0 1" range="-6.28 6.28"/>
        <geom type="cylinder" fromto="0 0 0 0 0 0.06" size="0.04" material="arm" mass="0.5" class="visual"/>
        <geom type="box" pos="0 0 0.09" size="0.02 0.065 0.03" material="dark" mass="0.3"/>
        <site name="grasp" pos="0 0 0.16" size="0.006" rgba="1 0 0 0"/>
        <body name="finger_left" pos="0 0.055 0.16" gravcomp="1">
          <joint name="finger_left" type="slide" axis="0 -1 0" range="0 {FINGER_TRAVEL}" damping="40"/>
          {pad}
        </body>
        <body name="finger_right" pos="0 -0.055 0.16" gravcomp="1">
          <joint name="finger_right" type="slide" axis="0 1 0" range="0 {FINGER_TRAVEL}" damping="40"/>
          {pad}
        </body>
      </body>"""
    # xArm7 offsets: shoulder 0.267 above the base, upper arm 0.293 (elbow offset 0.0525), forearm 0.3425
    # (offset 0.0775), wrist-to-flange (0.076, 0.097); the grasp point 0.16 beyond the flange.
    wrist = link("link6", "0.0775 0 0.3425", "0 1 0", capsule("0.076 0 0.097", 0.035), hand, "-1.69 3.14")
    forearm = link("link5", "0 0 0", "0 0 1", capsule("0.0775 0 0.3425", 0.04), wrist)
    joint_housing = '<geom type="sphere" size="0.05" material="dark" class="visual"/>'
    elbow = link("link4", "0.0525 0 0.293", "0 1 0", joint_housing, forearm, "-0.19 3.93")
    upper = link("link3", "0 0 0", "0 0 1", capsule("0.0525 0 0.293"), elbow)
    shoulder = link("link2", "0 0 0", "0 1 0", joint_housing, upper, "-2.06 2.09")
    arm = link("link1", "0 0 0.267", "0 0 1", capsule("0 0 -0.1", 0.05), shoulder)
    table_centre = f"-0.155 -0.225 {TABLE_TOP - 0.2}"
    return f"""<mujoco model="xarm_lift">
  <compiler angle="radian"/>
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="5"/>
  <visual><quality offsamples="0"/><headlight ambient="0.4 0.4 0.4" diffuse="0.5 0.5 0.5"/></visual>
  <default>
    <joint armature="0.1" damping="5"/>
    <geom density="500"/>
    <!-- Arm links never touch anything in this task (as in our so100 scene): only the hand and fingers collide. -->
    <default class="visual"><geom contype="0" conaffinity="0"/></default>
  </default>
  <asset>
    <material name="arm" rgba="0.86 0.87 0.88 1"/>
    <material name="dark" rgba="0.2 0.2 0.22 1"/>
    <material name="finger" rgba="0.1 0.1 0.1 1"/>
    <material name="table" rgba="0.95 0.95 0.95 1"/>
    <material name="block" rgba="0.373 0.678 0.627 1"/>
  </asset>
  <worldbody>
    <light pos="0 0 2" dir="0.2 0.2 -0.8" directional="true" diffuse="0.5 0.5 0.5" castshadow="false"/>
    <geom name="floor" type="plane" pos="0 0 -0.63625" size="3 3 0.1" rgba="0.05 0.06 0.05 1"/>
    <geom name="table" type="box" pos="{table_centre}" size="0.3 0.6 0.2" material="table" friction="1 0.005 0.0001"/>
    <geom name="pedestal" type="box" pos="-0.565 -0.02 -0.31" size="0.1 0.1 0.32" rgba="0.705 0.585 0.405 1"/>
    <body name="base" pos="-0.565 -0.02 0.01875">
      <geom type="cylinder" fromto="0 0 0 0 0 0.16" size="0.06" material="arm" class="visual"/>
      {arm}
    </body>
    <body name="mocap" mocap="true" pos="{GRIPPER_START[0]} {GRIPPER_START[1]} 0.3"/>
    <body name="cube" pos="{CUBE_XY[0]} {CUBE_XY[1]} {TABLE_TOP + CUBE_HALF}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="0.2" material="block"
            condim="4" friction="1 0.005 0.0001" solimp="0.95 0.99 0.001" solref="0.004 1"/>
    </body>
    <camera name="camera0" pos="-0.7 0.7 0.46" mode="targetbody" target="workspace" fovy="50"/>
    <body name="workspace" pos="-0.2 -0.05 -0.05"/>
  </worldbody>
  <equality>
    <weld body1="mocap" body2="hand" relpose="0 0 0 1 0 0 0" solref="0.02 1" solimp="0.9 0.95 0.001"/>
    <joint joint1="finger_left" joint2="finger_right"/>
  </equality>
  <contact>
    <exclude body1="finger_left" body2="finger_right"/>
  </contact>
  <actuator>
    <motor name="finger_left" joint="finger_left" ctrlrange="-1 1" gear="20"/>
    <motor name="finger_right" joint="finger_right" ctrlrange="-1 1" gear="20"/>
  </actuator>
</mujoco>"""


class XarmEnv(gym.Env):
    """The lift task; see the module docstring for spaces, reward and success."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 15}

    def __init__(
        self,
        task: str = "XarmLift-v0",
        obs_type: str = "pixels_agent_pos",
        render_mode: str | None = "rgb_array",
        image_size: tuple[int, int] = (84, 84),
        visualization_size: tuple[int, int] = (384, 384),
        fps: int = 15,
        domain_randomization: bool = False,
    ):
        if task not in TASKS:
            raise ValueError(f"Unknown xarm task {task!r}; available tasks: {', '.join(TASKS)}.")
        if obs_type not in ("state", "pixels_agent_pos", "pixels"):
            raise ValueError(
                f"xarm obs_type must be 'state', 'pixels' or 'pixels_agent_pos', got {obs_type!r}."
            )
        self.task, self.obs_type, self.render_mode = task, obs_type, render_mode
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.visualization_size = (int(visualization_size[0]), int(visualization_size[1]))
        timestep = 0.002
        self.fps = fps
        self.substeps = max(1, round(1.0 / (fps * timestep)))
        self.metadata = {**self.metadata, "render_fps": fps}
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(timestep))
        vis = self.model.vis.global_
        vis.offwidth = max(vis.offwidth, self.image_size[1], self.visualization_size[1])
        vis.offheight = max(vis.offheight, self.image_size[0], self.visualization_size[0])
        self.data = mujoco.MjData(self.model)
        self._arm_qpos = np.array([self.model.joint(f"j_link{i}").qposadr[0] for i in range(1, 8)])
        self._fingers = np.array([self.model.joint(n).qposadr[0] for n in ("finger_left", "finger_right")])
        self._cube_qpos = self.model.joint("cube").qposadr[0]
        self._hand = self.model.body("hand").id
        self._grasp = self.model.site("grasp").id
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._last_action = np.zeros(4)
        self._ik = None
        self._start_qpos = HOME_QPOS
        self.randomization: dict[str, np.ndarray] = {}
        self._randomizer = None
        if domain_randomization:
            from lerobot.envs.domain_randomization import DomainRandomizer, free_bodies

            self._randomizer = DomainRandomizer(self.model, objects=free_bodies(self.model))

        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        obs: dict[str, spaces.Space] = {}
        if obs_type != "pixels":
            obs["agent_pos"] = spaces.Box(-np.inf, np.inf, (len(STATE_NAMES),), np.float32)
        if obs_type == "state":
            obs["environment_state"] = spaces.Box(-np.inf, np.inf, (7,), np.float32)
        else:
            obs["pixels"] = spaces.Box(0, 255, (*self.image_size, 3), np.uint8)
        self.observation_space = spaces.Dict(obs)

    # ------------------------------------------------------------------ state

    @property
    def eef(self) -> np.ndarray:
        """The grasp point (between the finger pads), metres relative to the table centre."""
        return self.data.site_xpos[self._grasp].copy()

    @property
    def gripper_angle(self) -> float:
        closure = float(np.mean(self.data.qpos[self._fingers])) / FINGER_TRAVEL
        return MAX_GRIPPER_ANGLE * float(np.clip(closure, 0.0, 1.0))

    @property
    def cube_pose(self) -> np.ndarray:
        """Cube centre (3) and quaternion (w, x, y, z)."""
        return self.data.qpos[self._cube_qpos : self._cube_qpos + 7].copy()

    @property
    def robot_state(self) -> np.ndarray:
        return np.append(self.eef, self.gripper_angle)

    def is_success(self) -> bool:
        return bool(self.cube_pose[2] >= Z_TARGET)

    def reward(self) -> float:
        """gym-xarm's dense lift reward: approach the cube (closing the gripper near it), then raise it."""
        obj, eef = self.cube_pose[:3], self.eef
        reach = float(np.linalg.norm(obj - eef))
        reach_xy = float(np.linalg.norm(obj[:2] - eef[:2]))
        if reach < 0.05:
            reach_reward = -reach + max(float(self._last_action[3]), 0.0) / 50
        elif reach_xy < 0.05:
            reach_reward = -reach
        else:
            reach_reward = -reach - 2 * abs(float(obj[2] - eef[2]))
        lifted = obj[2] > INIT_Z + 0.005
        dropped = not lifted and reach > 0.02
        if obj[2] >= Z_TARGET - 0.01 and not dropped:
            pick_reward = Z_TARGET
        elif reach < 0.1 and lifted:
            pick_reward = min(Z_TARGET, float(obj[2]))
        else:
            pick_reward = 0.0
        return reach_reward / 100 + pick_reward

    # ------------------------------------------------------------------ gym API

    def _place_arm(self, target: np.ndarray) -> None:
        """Joint angles putting the grasp point at ``target`` pointing down (IK from the home pose)."""
        from lerobot.envs.ik import SiteIK, quat_to_mat

        down = quat_to_mat(DOWN_QUAT)
        qpos = self.data.qpos.copy()
        if self._ik is None:
            self._ik = SiteIK(self.model, [f"j_link{i}" for i in range(1, 8)], site="grasp", rot_weight=1.0)
            # The solution at the nominal start, found once; each reset starts from it (5 cm away at most).
            qpos[self._arm_qpos] = HOME_QPOS
            self._start_qpos = self._ik.solve(qpos, GRIPPER_START, down, iterations=200)
        qpos[self._arm_qpos] = self._start_qpos
        self.data.qpos[self._arm_qpos] = self._ik.solve(qpos, target, down, iterations=50)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        rng = self.np_random
        gripper = GRIPPER_START + rng.uniform(-SPAWN_NOISE, SPAWN_NOISE, 3)
        cube_xy = CUBE_XY + rng.uniform(-SPAWN_NOISE, SPAWN_NOISE, 2)
        info: dict[str, Any] = {"is_success": False}
        if self._randomizer is not None:
            # Drawn after the layout, so a seed places the gripper and cube alike with randomisation on or off.
            self.randomization = self._randomizer.apply(rng, self.data)
            info["domain_randomization"] = self.randomization
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._cube_qpos : self._cube_qpos + 7] = [*cube_xy, TABLE_TOP + CUBE_HALF, 1, 0, 0, 0]
        self._place_arm(gripper)
        mujoco.mj_forward(self.model, self.data)
        self.data.mocap_pos[0] = self.data.xpos[self._hand]
        self.data.mocap_quat[0] = self.data.xquat[self._hand]
        self.data.ctrl[:] = -1.0  # open
        mujoco.mj_step(self.model, self.data, nstep=10)
        self._last_action = np.zeros(4)
        return self._observation(), info

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (4,):
            raise ValueError(
                f"xarm action must have 4 values (dx, dy, dz, gripper), got shape {action.shape}."
            )
        if not np.all(np.isfinite(action)):
            raise ValueError(f"xarm action must be finite, got {action}.")
        action = np.clip(action, -1.0, 1.0)
        self._last_action = action
        move = action[:3].copy()
        for axis, (lo, hi) in enumerate((X_RANGE, Y_RANGE, Z_RANGE)):
            if self.eef[axis] >= hi:
                move[axis] = min(move[axis], 0.0)
            if self.eef[axis] <= lo:
                move[axis] = max(move[axis], 0.0)
        # Drive from where the hand is (not where the mocap was), so pushing against the table does not
        # wind up the weld; the hand keeps pointing down.
        self.data.mocap_pos[0] = self.data.xpos[self._hand] + STEP_SIZE * move
        self.data.mocap_quat[0] = DOWN_QUAT
        self.data.ctrl[:] = action[3]
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        success = self.is_success()
        return self._observation(), self.reward(), success, False, {"is_success": success}

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        if self.obs_type != "pixels":
            obs["agent_pos"] = self.robot_state.astype(np.float32)
        if self.obs_type == "state":
            obs["environment_state"] = self.cube_pose.astype(np.float32)
        else:
            obs["pixels"] = self._render(self.image_size)
        return obs

    def _render(self, size: tuple[int, int]) -> np.ndarray:
        renderer = self._renderers.get(size)
        if renderer is None:
            renderer = self._renderers[size] = mujoco.Renderer(self.model, *size)
        renderer.update_scene(self.data, camera="camera0")
        return renderer.render().copy()

    def render(self) -> np.ndarray:
        return self._render(self.visualization_size)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
