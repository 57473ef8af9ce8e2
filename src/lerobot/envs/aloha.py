"""Bimanual ALOHA tasks (``AlohaTransferCube-v0``, ``AlohaInsertion-v0``) on gym-aloha's MJCF scenes.

Why not gym-aloha's own ``AlohaEnv``: its dm_control task renders three 480x640 cameras on every step
(even ones nobody asked for), has no state-only observation and seeds objects through a module-level
global. This env loads the same MJCF files and reproduces the same action/observation conventions and
reward stages, directly on ``mujoco``: it renders only the ``top`` camera, only when images are
requested, at any size, and adds ``obs_type="state"`` (joint state + object poses).

Conventions (identical to gym-aloha, so LeRobot's ``aloha_sim_*`` datasets and policies fit):

- action (14) = [left arm 6 joint targets (rad), left gripper (0 closed .. 1 open), right arm 6, right
  gripper]; ``agent_pos`` (14) has the same layout with measured values. Control at 50 Hz, physics at
  500 Hz (the scene's 2 ms timestep).
- reward 0-4 by stage (transfer cube: touched, lifted, attempted hand-over, transferred; insertion:
  both touched, both grasped, peg touches socket, peg touches pin); success is reward 4.
- object poses: transfer cube x in [0, 0.2], y in [0.4, 0.6]; insertion peg x in [0.1, 0.2], socket x
  in [-0.2, -0.1], same y range; drawn from the env's seeded generator.
- ``domain_randomization=True`` redraws lighting, colours (the red objects keep their hue), camera
  poses, object mass and friction and the servos' gains every episode
  (:mod:`lerobot.envs.domain_randomization`), reported in the reset ``info["domain_randomization"]``.
  The scene has no materials or textures, so colours vary per geom only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from lerobot.utils.gl import preload_video_decoder

JOINT_NAMES = [
    f"{side}_{joint}"
    for side in ("left", "right")
    for joint in ("waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate", "gripper")
]
START_ARM_POSE = np.array([0, -0.96, 1.16, 0, -0.3, 0, 0.02239, -0.02239] * 2)
FINGER_OPEN, FINGER_CLOSED = 0.05800, 0.01844  # puppet finger positions (m) for gripper 1 and 0
TASKS = {"AlohaTransferCube-v0": "transfer_cube", "AlohaInsertion-v0": "insertion"}
SOCKET_GEOMS = ("socket-1", "socket-2", "socket-3", "socket-4")


def gym_aloha_assets() -> Path:
    try:
        import gym_aloha
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("The aloha sim env loads gym-aloha's MJCF scenes: pip install gym-aloha") from e
    return Path(gym_aloha.__file__).parent / "assets"


class AlohaEnv(gym.Env):
    """Two ViperX 300s arms on gym-aloha's table; see the module docstring for the conventions."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        task: str = "AlohaTransferCube-v0",
        obs_type: str = "pixels_agent_pos",
        render_mode: str | None = "rgb_array",
        image_size: tuple[int, int] = (480, 640),
        fps: int = 50,
        domain_randomization: bool = False,
    ):
        if task not in TASKS:
            raise ValueError(f"Unknown aloha task {task!r}; available tasks: {', '.join(TASKS)}.")
        if obs_type not in ("state", "pixels_agent_pos", "pixels"):
            raise ValueError(
                f"aloha obs_type must be 'state', 'pixels' or 'pixels_agent_pos', got {obs_type!r}."
            )
        self.task, self.obs_type, self.render_mode = TASKS[task], obs_type, render_mode
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.model = mujoco.MjModel.from_xml_path(
            str(gym_aloha_assets() / f"bimanual_viperx_{self.task}.xml")
        )
        self.model.vis.global_.offwidth = max(self.model.vis.global_.offwidth, self.image_size[1])
        self.model.vis.global_.offheight = max(self.model.vis.global_.offheight, self.image_size[0])
        self.data = mujoco.MjData(self.model)
        self.fps = fps
        self.substeps = max(1, round(1.0 / (fps * self.model.opt.timestep)))
        self.metadata = {**self.metadata, "render_fps": fps}
        self._renderer: mujoco.Renderer | None = None
        self.n_objects = 1 if self.task == "transfer_cube" else 2
        geom = self.model.geom
        self._geom_ids = {
            name: geom(name).id
            for name in (
                "table",
                "red_box" if self.task == "transfer_cube" else "red_peg",
                "vx300s_left/10_left_gripper_finger",
                "vx300s_right/10_right_gripper_finger",
                *(SOCKET_GEOMS + ("pin",) if self.task == "insertion" else ()),
            )
        }

        self.randomization: dict[str, np.ndarray] = {}
        self._randomizer = None
        if domain_randomization:
            from lerobot.envs.domain_randomization import DomainRandomizer

            objects = ["box"] if self.task == "transfer_cube" else ["peg", "socket"]
            bodies = {self.model.body(name).id for name in objects}
            colored = [
                self.model.geom(i).name
                for i in range(self.model.ngeom)
                if self.model.geom_bodyid[i] in bodies
            ]
            self._randomizer = DomainRandomizer(self.model, objects=objects, keep_hue=colored)

        self.action_space = spaces.Box(-np.pi, np.pi, (14,), np.float32)
        obs: dict[str, spaces.Space] = {}
        if obs_type != "pixels":
            obs["agent_pos"] = spaces.Box(-np.inf, np.inf, (14,), np.float32)
        if obs_type == "state":
            obs["environment_state"] = spaces.Box(-np.inf, np.inf, (7 * self.n_objects,), np.float32)
        else:
            obs["pixels"] = spaces.Dict({"top": spaces.Box(0, 255, (*self.image_size, 3), np.uint8)})
        self.observation_space = spaces.Dict(obs)

    # ------------------------------------------------------------------ privileged state

    @property
    def object_poses(self) -> np.ndarray:
        """Position + quaternion of each object (cube; or peg then socket), 7 per object."""
        return self.data.qpos[16 : 16 + 7 * self.n_objects].copy()

    @property
    def joint_state(self) -> np.ndarray:
        q = self.data.qpos
        grip = [(q[i] - FINGER_CLOSED) / (FINGER_OPEN - FINGER_CLOSED) for i in (6, 14)]
        return np.concatenate([q[0:6], grip[:1], q[8:14], grip[1:]])

    def reward(self) -> int:
        g = self._geom_ids
        pairs = {frozenset((int(c.geom1), int(c.geom2))) for c in self.data.contact[: self.data.ncon]}

        def touch(a: str, *others: str) -> bool:
            return any(frozenset((g[a], g[o])) in pairs for o in others)

        left, right = "vx300s_left/10_left_gripper_finger", "vx300s_right/10_right_gripper_finger"
        if self.task == "transfer_cube":
            on_table = touch("red_box", "table")
            if touch("red_box", left):
                return 4 if not on_table else 3
            if touch("red_box", right):
                return 2 if not on_table else 1
            return 0
        if touch("red_peg", "pin"):
            return 4
        off_table = not touch("red_peg", "table") and not any(touch(s, "table") for s in SOCKET_GEOMS)
        if touch("red_peg", *SOCKET_GEOMS) and off_table:
            return 3
        if touch("red_peg", right) and any(touch(s, left) for s in SOCKET_GEOMS):
            return 2 if off_table else 1
        return 0

    # ------------------------------------------------------------------ gym API

    def _sample_objects(self) -> np.ndarray:
        rng = self.np_random
        quat = [1.0, 0.0, 0.0, 0.0]
        if self.task == "transfer_cube":
            return np.array([rng.uniform(0.0, 0.2), rng.uniform(0.4, 0.6), 0.05, *quat])
        peg = [rng.uniform(0.1, 0.2), rng.uniform(0.4, 0.6), 0.05, *quat]
        socket = [rng.uniform(-0.2, -0.1), rng.uniform(0.4, 0.6), 0.05, *quat]
        return np.array(peg + socket)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        objects = self._sample_objects()
        info: dict[str, Any] = {"is_success": False}
        if self._randomizer is not None:
            # Drawn after the objects, so a seed places them alike with randomisation on or off.
            self.randomization = self._randomizer.apply(self.np_random, self.data)
            info["domain_randomization"] = self.randomization
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:16] = START_ARM_POSE
        self.data.ctrl[:] = START_ARM_POSE
        self.data.qpos[16 : 16 + 7 * self.n_objects] = objects
        mujoco.mj_forward(self.model, self.data)
        return self._observation(), info

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (14,):
            raise ValueError(
                f"aloha action must have 14 values (2 x (6 joints + gripper)), got shape {action.shape}."
            )
        fingers = [FINGER_CLOSED + g * (FINGER_OPEN - FINGER_CLOSED) for g in (action[6], action[13])]
        self.data.ctrl[:] = np.concatenate(
            [action[0:6], [fingers[0], -fingers[0]], action[7:13], [fingers[1], -fingers[1]]]
        )
        mujoco.mj_step(self.model, self.data, nstep=self.substeps)
        reward = self.reward()
        success = reward == 4
        return self._observation(), float(reward), success, False, {"is_success": success}

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        if self.obs_type != "pixels":
            obs["agent_pos"] = self.joint_state.astype(np.float32)
        if self.obs_type == "state":
            obs["environment_state"] = self.object_poses.astype(np.float32)
        else:
            obs["pixels"] = {"top": self.render()}
        return obs

    def render(self) -> np.ndarray:
        if self._renderer is None:
            preload_video_decoder()
            self._renderer = mujoco.Renderer(self.model, *self.image_size)
        self._renderer.update_scene(self.data, camera="top")
        return self._renderer.render().copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
