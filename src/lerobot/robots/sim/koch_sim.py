"""Simulated Koch v1.1 follower (``--robot.type=koch_sim``): a light MuJoCo arm with a cube to lift.

No Koch model ships with our simulators, so the arm is built here from primitive shapes (capsules and
boxes) on the link lengths of :data:`lerobot.robots.kinematics.KOCH_CHAIN`: an approximation of the
real arm's geometry (+-1 cm, same zero pose and joint axes), not of its masses or looks. The task
(``lift_cube``) is a 3 cm cube at a random pose in front of the arm; success is the cube held by both
jaws, clear of the table and ``LIFT_HEIGHT`` above its resting height.

Features are the real ``koch_follower``'s: ``shoulder_pan.pos`` .. ``wrist_roll.pos`` and
``gripper.pos`` 0..100; like the real config, joints default to -100..100 over their range
(``use_degrees=False``). Camera views: the scene's ``front`` and ``top`` cameras.
"""

from __future__ import annotations

from functools import cache

import mujoco
import numpy as np

from lerobot.motors.arm import ARM_JOINTS
from lerobot.robots.kinematics import KOCH_CHAIN
from lerobot.robots.robot import ROBOTS
from lerobot.robots.sim.config import KochSimConfig
from lerobot.robots.sim.twin import JointUnits, SimTwin

CUBE_HALF = 0.015
LIFT_HEIGHT = 0.03
CUBE_X, CUBE_Y = (0.14, 0.20), (-0.05, 0.05)
JOINT_RANGE = {  # radians; the hobby servos' usable travel
    "shoulder_pan": (-1.9, 1.9),
    "shoulder_lift": (-1.8, 1.8),
    "elbow_flex": (-1.8, 1.8),
    "wrist_flex": (-1.8, 1.8),
    "wrist_roll": (-2.8, 2.8),
}
JAW_RANGE = (0.0, 1.0)  # moving jaw hinge: closed .. open
SUBSTEPS = 5


def _vec(v) -> str:
    return " ".join(f"{x:.4f}" for x in v)


@cache
def build_koch_mjcf(timestep: float) -> str:
    """The arm as nested bodies, one per ``KOCH_CHAIN`` joint, each drawing a capsule to the next joint."""
    joints = KOCH_CHAIN.joints
    ends = [j.offset for j in joints[1:]] + [(KOCH_CHAIN.tip[0] * 0.4, 0.0, 0.0)]
    xml, close = "", ""
    for joint, end in zip(joints, ends):
        lo, hi = JOINT_RANGE[joint.name]
        link = ""
        if np.linalg.norm(end) > 1e-6:
            link = f'<geom type="capsule" fromto="0 0 0 {_vec(end)}" size="0.012" rgba="0.9 0.9 0.92 1"/>'
        xml += (
            f'<body name="{joint.name}" pos="{_vec(joint.offset)}" gravcomp="1">'
            f'<joint name="{joint.name}" axis="{_vec(joint.axis)}" range="{lo} {hi}"/>{link}'
        )
        close += "</body>"
    # Gripper at the end of the wrist-roll link: a fixed jaw on -y, a jaw hinged about z on +y.
    reach = KOCH_CHAIN.tip[0]
    gripper = f"""
      <geom name="palm" type="box" pos="{reach * 0.45:.4f} 0 0" size="0.01 0.025 0.012" rgba="0.2 0.2 0.2 1"/>
      <body name="fixed_jaw" pos="{reach * 0.5:.4f} -0.022 0">
        <geom name="fixed_jaw" type="box" pos="{reach * 0.25:.4f} 0 0" size="{reach * 0.25:.4f} 0.004 0.01"
              friction="1.5 0.01 0.0001" rgba="0.2 0.2 0.2 1"/>
      </body>
      <body name="moving_jaw" pos="{reach * 0.5:.4f} 0.022 0" gravcomp="1">
        <joint name="gripper" axis="0 0 1" range="{JAW_RANGE[0]} {JAW_RANGE[1]}"/>
        <geom name="moving_jaw" type="box" pos="{reach * 0.25:.4f} 0 0" size="{reach * 0.25:.4f} 0.004 0.01"
              friction="1.5 0.01 0.0001" rgba="0.85 0.45 0.1 1"/>
      </body>"""
    actuators = "".join(
        f'<position name="{j.name}" joint="{j.name}" kp="8" forcerange="-3 3"/>' for j in joints
    )
    return f"""<mujoco model="koch_tabletop">
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <default><joint damping="0.1" armature="0.005" frictionloss="0.01"/><geom contype="0" conaffinity="0"/></default>
  <visual><quality offsamples="0"/><headlight ambient="0.5 0.5 0.5" diffuse="0.4 0.4 0.4"/></visual>
  <worldbody>
    <light pos="0.2 -0.3 1.0" dir="-0.2 0.3 -1" castshadow="false"/>
    <geom name="table" type="plane" size="0.5 0.5 0.01" pos="0.15 0 0" rgba="0.5 0.45 0.4 1"
          contype="1" conaffinity="1"/>
    <geom type="cylinder" size="0.035 0.0125" pos="0 0 0.0125" rgba="0.2 0.2 0.2 1"/>
    <body name="workspace" pos="0.16 0 0.03"/>
    <camera name="front" pos="0.45 0 0.3" mode="targetbody" target="workspace" fovy="50"/>
    <camera name="top" pos="0.16 0 0.6" xyaxes="0 -1 0 1 0 0" fovy="50"/>
    {xml}{gripper}{close}
    <body name="cube" pos="0.17 0 {CUBE_HALF}">
      <freejoint name="cube"/>
      <geom name="cube" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="0.02" condim="4"
            friction="1.2 0.01 0.0001" rgba="0.1 0.4 0.85 1" contype="1" conaffinity="1"/>
    </body>
  </worldbody>
  <contact><pair geom1="cube" geom2="fixed_jaw"/><pair geom1="cube" geom2="moving_jaw"/></contact>
  <actuator>{actuators}<position name="gripper" joint="gripper" kp="2" forcerange="-0.5 0.5"/></actuator>
</mujoco>"""


class KochScene:
    """The Koch arm, a table and a cube: ``reset(seed)``, ``step(targets)``, ``is_success()``."""

    def __init__(self, fps: int):
        self.model = mujoco.MjModel.from_xml_string(build_koch_mjcf(1.0 / (fps * SUBSTEPS)))
        self.data = mujoco.MjData(self.model)
        names = [*ARM_JOINTS, "gripper"]
        self.qpos_ids = np.array([self.model.joint(n).qposadr[0] for n in names])
        self.ranges = np.array([self.model.joint(n).range for n in names])
        self._cube = self.model.joint("cube").qposadr[0]
        self._geoms = {n: self.model.geom(n).id for n in ("cube", "table", "fixed_jaw", "moving_jaw")}

    def reset(self, seed: int | None = None) -> None:
        rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        yaw = rng.uniform(-np.pi / 8, np.pi / 8)
        self.data.qpos[self._cube : self._cube + 7] = [
            rng.uniform(*CUBE_X), rng.uniform(*CUBE_Y), CUBE_HALF, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)
        ]  # fmt: skip
        mujoco.mj_forward(self.model, self.data)

    def step(self, targets: np.ndarray) -> None:
        self.data.ctrl[:] = targets
        mujoco.mj_step(self.model, self.data, nstep=SUBSTEPS)

    @property
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self.qpos_ids].copy()

    def is_success(self) -> bool:
        g = self._geoms
        touching = set()
        for c in self.data.contact[: self.data.ncon]:
            if g["cube"] in (c.geom1, c.geom2):
                touching.add(c.geom2 if c.geom1 == g["cube"] else c.geom1)
        held = g["fixed_jaw"] in touching and g["moving_jaw"] in touching
        height = self.data.qpos[self._cube + 2]
        return held and g["table"] not in touching and height > CUBE_HALF + LIFT_HEIGHT


@ROBOTS.register("koch_sim")
class KochSim(SimTwin):
    """Twin of ``koch_follower`` on an approximate primitive-shape model (see the module docstring)."""

    config_class = KochSimConfig
    name = "koch_sim"
    sim_kind = "koch"

    def _make_sim(self) -> KochScene:
        if self.config.task not in ("", "lift_cube"):
            raise ValueError(f"Unknown koch_sim task {self.config.task!r}; tasks: lift_cube.")
        return KochScene(self.config.fps)

    def _joint_units(self) -> list[JointUnits]:
        names = [*ARM_JOINTS, "gripper"]
        return [
            JointUnits(f"{n}.pos", float(lo), float(hi), self._units_kind(n))
            for n, (lo, hi) in zip(names, self.sim.ranges)
        ]

    def _sim_joints(self) -> np.ndarray:
        return self.sim.joint_positions

    def check_task_completion(self) -> bool:
        with self.lock:
            return self.sim.is_success()
