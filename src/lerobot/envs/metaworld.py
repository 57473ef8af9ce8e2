"""Meta-World (``--env.type=metaworld``): the 50 Sawyer tasks of Meta-World 3.x, one task or an MT-style list.

Task names: Meta-World 3.x names (``reach-v3``), the v2 names the guide and older checkpoints use
(``reach-v2``, mapped to the v3 task of the same name: 3.x ships only v3, the v2 tasks with their reward
bugs fixed), LeRobot's ``metaworld-push-v2`` spelling, comma lists (``reach-v3,push-v3``) and the
benchmark groups ``mt10`` and ``mt50``. With several tasks, episode ``seed`` runs task
``tasks[seed % len(tasks)]`` (``reset(options={"task": name})`` picks one explicitly), so consecutive
seeds cycle through the tasks and ``n_episodes = k * len(tasks)`` gives each task ``k`` episodes;
``info["task"]`` names the task of the episode.

Every task is goal-observable (the MT protocol), with the object and goal positions drawn from the env's
seeded generator at each reset. Observations follow LeRobot's metaworld env: ``agent_pos`` (4: hand
x, y, z and gripper opening), ``pixels`` (one image from the ``corner2`` camera, turned upright, ->
``observation.image``); ``obs_type="state"`` gives the full 39-D Meta-World observation as
``environment_state``. action (4) in [-1, 1]: hand displacement and gripper effort. Episodes end on
success (``info["is_success"]``) or at ``episode_length`` steps.

``domain_randomization=True`` redraws each episode's lighting, colours, camera pose, the mass and friction
of every free-moving object and the gripper's servo gains (:mod:`lerobot.envs.domain_randomization`;
the draws are in the reset ``info["domain_randomization"]``). What it cannot vary here: the arm's
gains, since Meta-World moves the hand by a mocap weld rather than by joint servos, and the object and
goal layout, which Meta-World draws itself (from the episode's seed, as without randomisation).

Meta-World 3.1.1 pins mujoco 3.3.0 but runs on our mujoco 3.8.1 (checked: all of MT10 with their
scripted policies); see ``docs/benchmark_envs.md`` for the two ways to install it.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# Meta-World 3.x's 50 tasks (its ALL_V3_ENVIRONMENTS order) and its MT10 selection.
MT50 = (
    "assembly-v3", "basketball-v3", "bin-picking-v3", "box-close-v3", "button-press-topdown-v3",
    "button-press-topdown-wall-v3", "button-press-v3", "button-press-wall-v3", "coffee-button-v3",
    "coffee-pull-v3", "coffee-push-v3", "dial-turn-v3", "disassemble-v3", "door-close-v3", "door-lock-v3",
    "door-open-v3", "door-unlock-v3", "hand-insert-v3", "drawer-close-v3", "drawer-open-v3",
    "faucet-open-v3", "faucet-close-v3", "hammer-v3", "handle-press-side-v3", "handle-press-v3",
    "handle-pull-side-v3", "handle-pull-v3", "lever-pull-v3", "pick-place-wall-v3", "pick-out-of-hole-v3",
    "pick-place-v3", "plate-slide-v3", "plate-slide-side-v3", "plate-slide-back-v3",
    "plate-slide-back-side-v3", "peg-insert-side-v3", "peg-unplug-side-v3", "soccer-v3", "stick-push-v3",
    "stick-pull-v3", "push-v3", "push-wall-v3", "push-back-v3", "reach-v3", "reach-wall-v3",
    "shelf-place-v3", "sweep-into-v3", "sweep-v3", "window-open-v3", "window-close-v3",
)  # fmt: skip
MT10 = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
)  # fmt: skip
GROUPS = {"mt10": MT10, "mt50": MT50}
STATE_NAMES = ["hand_x", "hand_y", "hand_z", "gripper"]
ACTION_NAMES = ["dx", "dy", "dz", "gripper"]
OBS_DIM = 39
CAMERA = "corner2"
INSTALL_HINT = (
    "The metaworld env needs Meta-World: pip install 'lerobot[metaworld]' in its own environment (it pins "
    "mujoco 3.3.0), or beside lerobot[sim]: pip install --no-deps 'metaworld==3.1.1' (it runs on mujoco "
    "3.8.1). See docs/benchmark_envs.md."
)


def canonical_task(name: str) -> str | None:
    """The Meta-World 3.x name for ``reach-v3`` / ``reach-v2`` / ``metaworld-reach-v2`` (None if unknown)."""
    name = name.strip().lower().removeprefix("metaworld-")
    for suffix in ("-goal-observable", "-goal-hidden"):
        name = name.removesuffix(suffix)
    if name.endswith("-v2"):
        name = name[: -len("-v2")] + "-v3"
    return name if name in MT50 else None


def expand_tasks(spec: str) -> tuple[str, ...]:
    """``"reach-v2,push-v3"`` / ``"mt10"`` -> Meta-World 3.x task names; raises ``ValueError`` naming
    the unknown entries and the valid ones."""
    tasks: list[str] = []
    unknown: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if item.lower() in GROUPS:
            tasks.extend(GROUPS[item.lower()])
        elif (name := canonical_task(item)) is not None:
            tasks.append(name)
        else:
            unknown.append(item)
    if unknown or not tasks:
        raise ValueError(
            f"Unknown Meta-World task(s) {unknown or [spec]}. Valid: {', '.join(MT50)} (v2 names such as "
            f"reach-v2 are accepted too), comma lists of them, or the groups {', '.join(GROUPS)}."
        )
    return tuple(dict.fromkeys(tasks))


def _metaworld():
    try:
        import metaworld.env_dict
        import metaworld.policies
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return metaworld


class MetaworldEnv(gym.Env):
    """One or several Meta-World tasks behind one Gymnasium env (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 80}

    def __init__(
        self,
        tasks: tuple[str, ...] | str = ("reach-v3",),
        obs_type: str = "pixels_agent_pos",
        render_mode: str | None = "rgb_array",
        image_size: tuple[int, int] = (480, 480),
        fps: int = 80,
        episode_length: int = 400,
        domain_randomization: bool = False,
    ):
        if obs_type not in ("state", "pixels_agent_pos", "pixels"):
            raise ValueError(
                f"metaworld obs_type must be 'state', 'pixels' or 'pixels_agent_pos', got {obs_type!r}."
            )
        self._mw = _metaworld()
        self.tasks = expand_tasks(tasks) if isinstance(tasks, str) else tuple(tasks)
        self.obs_type, self.render_mode = obs_type, render_mode
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.episode_length = episode_length
        self.metadata = {**self.metadata, "render_fps": fps}
        self._envs: dict[str, Any] = {}
        self._renderers: dict[str, Any] = {}
        self.domain_randomization = domain_randomization
        self._randomizers: dict[str, Any] = {}  # per task: each task is its own MuJoCo model
        self.randomization: dict[str, np.ndarray] = {}
        self.task = self.tasks[0]
        self.raw_obs = np.zeros(OBS_DIM)
        self._episodes = 0

        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        obs: dict[str, spaces.Space] = {}
        if obs_type != "pixels":
            obs["agent_pos"] = spaces.Box(-np.inf, np.inf, (len(STATE_NAMES),), np.float32)
        if obs_type == "state":
            obs["environment_state"] = spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        else:
            obs["pixels"] = spaces.Box(0, 255, (*self.image_size, 3), np.uint8)
        self.observation_space = spaces.Dict(obs)

    @property
    def episode_instruction(self) -> str:
        """The task of the current episode, as recorded datasets name it (``reach-v3``)."""
        return self.task

    @property
    def sim(self) -> Any:
        """The Meta-World env of the current task (built on first use)."""
        if self.task not in self._envs:
            env = self._mw.env_dict.ALL_V3_ENVIRONMENTS[self.task]()
            # The MT setting: goal-observable, with a fresh object/goal layout drawn from the env's own
            # seeded generator at every reset (Meta-World's public task API fixes one layout per Task).
            env._partially_observable = False
            del env.sawyer_observation_space  # cached property: recomputed for the observable goal
            env._set_task_called = True
            env._freeze_rand_vec = False
            env.seeded_rand_vec = True
            env.max_path_length = self.episode_length + 1  # our TimeLimit cuts episodes, not Meta-World
            self._envs[self.task] = env
        return self._envs[self.task]

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if options and "task" in options:
            task = canonical_task(str(options["task"]))
            if task not in self.tasks:
                raise ValueError(f"Task {options['task']!r} is not one of this env's tasks: {self.tasks}.")
            self.task = task
        else:
            index = seed if seed is not None else self._episodes
            self.task = self.tasks[index % len(self.tasks)]
        self._episodes += 1
        sim = self.sim
        sim.seed(int(self.np_random.integers(2**31)))
        info: dict[str, Any] = {"is_success": False, "task": self.task}
        if self.domain_randomization:
            from lerobot.envs.domain_randomization import DomainRandomizer, free_bodies

            if self.task not in self._randomizers:
                self._randomizers[self.task] = DomainRandomizer(sim.model, objects=free_bodies(sim.model))
            self.randomization = self._randomizers[self.task].apply(self.np_random, sim.data)
            info["domain_randomization"] = self.randomization
        self.raw_obs, _ = sim.reset()
        return self._observation(), info

    def step(self, action: np.ndarray):
        action = np.clip(np.asarray(action, dtype=np.float32).reshape(-1), -1.0, 1.0)
        if action.shape != (4,):
            raise ValueError(f"metaworld action must have 4 values, got shape {action.shape}.")
        self.raw_obs, reward, _, _, info = self.sim.step(action)
        success = bool(info.get("success", False))
        info = {**info, "is_success": success, "task": self.task}
        return self._observation(), float(reward), success, False, info

    def _observation(self) -> dict[str, Any]:
        obs: dict[str, Any] = {}
        if self.obs_type != "pixels":
            obs["agent_pos"] = self.raw_obs[:4].astype(np.float32)
        if self.obs_type == "state":
            obs["environment_state"] = self.raw_obs.astype(np.float32)
        else:
            obs["pixels"] = self.render()
        return obs

    def render(self) -> np.ndarray:
        import mujoco

        sim = self.sim
        renderer = self._renderers.get(self.task)
        if renderer is None:
            vis = sim.model.vis.global_
            vis.offwidth = max(vis.offwidth, self.image_size[1])
            vis.offheight = max(vis.offheight, self.image_size[0])
            renderer = self._renderers[self.task] = mujoco.Renderer(sim.model, *self.image_size)
        renderer.update_scene(sim.data, camera=CAMERA)
        # corner2 looks at the table upside down: turn the frame upright, as LeRobot's metaworld env does.
        return np.ascontiguousarray(renderer.render()[::-1, ::-1])

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        for env in self._envs.values():
            env.close()
        self._envs.clear()
