"""Environment configs: one registered dataclass per ``--env.type``, each knowing its dataset features.

A config answers three questions without building the simulator: which tasks exist (``TASKS``), what a
recording or a policy will see (``features``: dataset-style specs keyed by ``observation.state``,
``observation.images.<cam>``, ``observation.environment_state``, ``action``), and how raw env
observation keys map onto those names (``features_map``, applied in exactly one place:
:func:`lerobot.envs.utils.dataset_observation`). ``make_raw_env()`` builds the simulator itself.
"""

from __future__ import annotations

import contextlib
import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym

from lerobot.envs.libero import SUITES, parse_suites
from lerobot.envs.metaworld import MT50
from lerobot.envs.metaworld import expand_tasks as expand_metaworld_tasks
from lerobot.utils.registry import Registry

OBS_STATE = "observation.state"
OBS_ENV_STATE = "observation.environment_state"
OBS_IMAGES = "observation.images"
OBS_IMAGE = "observation.image"
ACTION = "action"
# Env observation key -> dataset key; a ``pixels`` dict of cameras maps to ``observation.images.<camera>``.
ENV_TO_DATASET_KEYS = {"agent_pos": OBS_STATE, "environment_state": OBS_ENV_STATE, "pixels": OBS_IMAGE}
IMAGE_NAMES = ["height", "width", "channels"]


def _vector(names: list[str]) -> dict[str, Any]:
    return {"dtype": "float32", "shape": (len(names),), "names": list(names)}


def _image(size: tuple[int, int]) -> dict[str, Any]:
    return {"dtype": "video", "shape": (int(size[0]), int(size[1]), 3), "names": list(IMAGE_NAMES)}


class UnknownTaskError(ValueError):
    """``--env.task`` names no task of that env type (the message lists the ones it has)."""


@dataclass(kw_only=True)
class EnvConfig:
    """Fields every simulated environment has (``--env.task``, ``--env.fps``, ...)."""

    task: str = ""
    """The task to simulate (default: the env type's first task)."""
    fps: int = 30
    """Control steps per simulated second (and the fps of recorded datasets and videos)."""
    episode_length: int = 300
    """Steps before an episode is cut (truncated)."""
    obs_type: str = "pixels_agent_pos"
    """pixels_agent_pos (cameras + joint state) or state (low-dimensional state only)."""
    render_mode: str | None = "rgb_array"
    """rgb_array (frames for videos) or None (no rendering)."""
    domain_randomization: bool = False
    """Redraw lighting, colours, camera pose, object mass/friction and servo gains every episode
    (guide: --training.domain_randomization); see lerobot.envs.domain_randomization."""
    type: ClassVar[str] = ""
    TASKS: ClassVar[tuple[str, ...]] = ()
    OBS_TYPES: ClassVar[tuple[str, ...]] = ("pixels_agent_pos", "state")
    # Short spellings accepted for ``task`` (e.g. gym-aloha's internal names).
    TASK_ALIASES: ClassVar[dict[str, str]] = {}
    # Whether ``make_raw_env`` honours ``domain_randomization`` (one clear error where it does not).
    DOMAIN_RANDOMIZATION: ClassVar[bool] = False

    def __post_init__(self) -> None:
        self.task = self.canonical_task(self.task or self.TASKS[0])
        if self.obs_type not in self.OBS_TYPES:
            raise ValueError(
                f"Unknown obs_type {self.obs_type!r} for env type {self.type!r}; choose one of "
                f"{', '.join(self.OBS_TYPES)}."
            )
        if self.render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"render_mode must be 'rgb_array' or None (headless sims), got {self.render_mode!r}."
            )
        if self.domain_randomization and not self.DOMAIN_RANDOMIZATION:
            raise ValueError(
                f"Env type {self.type!r} has no domain randomisation; drop --env.domain_randomization "
                f"or use an env type that has it: {', '.join(_randomizable_env_types())}."
            )

    def canonical_task(self, task: str) -> str:
        """The task's registered name (aliases resolved); ``UnknownTaskError`` lists the tasks we have."""
        task = self.TASK_ALIASES.get(task, task)
        if task not in self.TASKS:
            raise UnknownTaskError(
                f"Unknown task {task!r} for env type {self.type!r}. "
                f"Tasks we have: {', '.join(self.TASKS)} (e.g. --env.task={self.TASKS[0]})."
            )
        return task

    @property
    def uses_pixels(self) -> bool:
        return "pixels" in self.obs_type

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        """Dataset feature specs of the env's observations once renamed (``dataset_observation``), plus ``action``."""
        raise NotImplementedError

    @property
    def features_map(self) -> dict[str, str]:
        """Raw env observation key -> dataset key (a ``pixels`` dict of cameras -> ``observation.images.<cam>``)."""
        return dict(ENV_TO_DATASET_KEYS)

    @property
    def text_observations(self) -> bool:
        """Whether observations carry a ``task`` string (an async vector env then skips shared memory)."""
        return False

    @property
    def gym_id(self) -> str:
        return f"gym_{self.type}/{self.task}"

    def make_raw_env(self) -> gym.Env:
        """The simulator with its raw observation keys (no time limit, no renaming)."""
        raise NotImplementedError

    def replace(self, **overrides: Any) -> EnvConfig:
        return dataclasses.replace(self, **overrides)


@dataclass(kw_only=True)
class TaskListEnvConfig(EnvConfig):
    """An env whose ``task`` is a comma list of names (benchmark suites, MT-style task lists).

    ``expand_tasks`` turns what the user wrote (aliases, groups such as ``mt10``) into the list of
    canonical names or raises ``ValueError`` naming the valid ones; ``task`` keeps them comma-joined.
    """

    @staticmethod
    def expand_tasks(spec: str) -> tuple[str, ...]:
        raise NotImplementedError

    def canonical_task(self, task: str) -> str:
        try:
            return ",".join(self.expand_tasks(task))
        except ValueError as e:
            raise UnknownTaskError(str(e)) from None

    @property
    def task_list(self) -> tuple[str, ...]:
        return tuple(self.task.split(","))


ENV_CONFIGS: Registry[type[EnvConfig]] = Registry("env")
EnvConfig.choices = ENV_CONFIGS  # lets the CLI parser resolve --env.type


@ENV_CONFIGS.register("so100")
@dataclass(kw_only=True)
class SO100EnvConfig(EnvConfig):
    """Our single SO-100 arm with a cube, or two for the language task ``pick_color`` (see
    :mod:`lerobot.envs.so100`); 96x96 ``front`` camera."""

    TASKS: ClassVar[tuple[str, ...]] = ("pick_cube", "pick_place", "pick_color", "reach")
    EPISODE_LENGTHS: ClassVar[dict[str, int]] = {
        "pick_cube": 150,
        "pick_place": 240,
        "pick_color": 150,
        "reach": 100,
    }
    DOMAIN_RANDOMIZATION: ClassVar[bool] = True
    # state_vector: the cube poses appended to observation.state (joints first), no environment_state.
    OBS_TYPES: ClassVar[tuple[str, ...]] = ("pixels_agent_pos", "state", "state_vector")
    task: str = "pick_cube"
    fps: int = 30
    episode_length: int = 0
    """Steps before an episode is cut (0: the task's default: 150 pick_cube and pick_color, 240 pick_place, 100 reach)."""
    image_size: tuple[int, int] = (96, 96)
    """Camera frames as (height, width)."""
    substeps: int = 6
    """Physics steps per control step (the simulation runs at fps * substeps Hz)."""
    instruction: str = "random"
    """pick_color only: "random" (each seed draws which cube is asked for), "red" or "blue" (every
    episode asks for that cube; the seed still lays out the cubes as with "random")."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.episode_length = self.episode_length or self.EPISODE_LENGTHS[self.task]
        if self.instruction != "random" and (
            self.task != "pick_color" or self.instruction not in ("red", "blue")
        ):
            raise ValueError(
                f"--env.instruction={self.instruction!r}: only --env.task=pick_color takes one, and it must be "
                "random, red or blue."
            )

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        from lerobot.envs.so100 import CAMERAS, ENV_STATE_NAMES, JOINT_NAMES

        names = [f"{j}.pos" for j in JOINT_NAMES]
        cube_names = (
            [f"{c}_{n}" for c in ("red", "blue") for n in ENV_STATE_NAMES]
            if self.text_observations
            else ENV_STATE_NAMES
        )
        if self.obs_type == "state_vector":
            feats = {OBS_STATE: _vector(names + cube_names)}
        else:
            feats = {OBS_STATE: _vector(names)}
        if self.uses_pixels:
            feats.update({f"{OBS_IMAGES}.{cam}": _image(self.image_size) for cam in CAMERAS})
        elif self.obs_type == "state":
            feats[OBS_ENV_STATE] = _vector(cube_names)
        feats[ACTION] = _vector(names)
        return feats

    @property
    def text_observations(self) -> bool:
        return self.task == "pick_color"

    def make_raw_env(self) -> gym.Env:
        from lerobot.envs.so100 import SO100Env

        return SO100Env(
            self.task, self.obs_type, self.render_mode, self.image_size, self.fps, self.substeps,
            domain_randomization=self.domain_randomization, instruction=self.instruction,
        )  # fmt: skip


@ENV_CONFIGS.register("aloha")
@dataclass(kw_only=True)
class AlohaEnvConfig(EnvConfig):
    """Bimanual ALOHA on gym-aloha's scenes (see :mod:`lerobot.envs.aloha`); 480x640 ``top`` camera."""

    TASKS: ClassVar[tuple[str, ...]] = ("AlohaInsertion-v0", "AlohaTransferCube-v0")
    TASK_ALIASES: ClassVar[dict[str, str]] = {
        "insertion": "AlohaInsertion-v0",
        "transfer_cube": "AlohaTransferCube-v0",
    }
    DOMAIN_RANDOMIZATION: ClassVar[bool] = True
    task: str = "AlohaInsertion-v0"
    fps: int = 50
    episode_length: int = 400
    image_size: tuple[int, int] = (480, 640)
    """Camera frames as (height, width)."""

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        from lerobot.envs.aloha import JOINT_NAMES

        feats = {OBS_STATE: _vector(JOINT_NAMES)}
        if self.uses_pixels:
            feats[f"{OBS_IMAGES}.top"] = _image(self.image_size)
        else:
            objects = ["cube"] if self.task == "AlohaTransferCube-v0" else ["peg", "socket"]
            feats[OBS_ENV_STATE] = _vector(
                [f"{o}_{c}" for o in objects for c in ("x", "y", "z", "qw", "qx", "qy", "qz")]
            )
        feats[ACTION] = _vector(JOINT_NAMES)
        return feats

    def make_raw_env(self) -> gym.Env:
        from lerobot.envs.aloha import AlohaEnv

        return AlohaEnv(
            self.task, self.obs_type, self.render_mode, self.image_size, self.fps,
            domain_randomization=self.domain_randomization,
        )  # fmt: skip


@ENV_CONFIGS.register("pusht")
@dataclass(kw_only=True)
class PushtEnvConfig(EnvConfig):
    """gym-pusht's PushT. Its single camera is ``observation.image``, as in LeRobot's pusht datasets.

    ``obs_type="state"`` gives the agent position plus the T block's 16 keypoint coordinates
    (gym-pusht's ``environment_state_agent_pos``).
    """

    TASKS: ClassVar[tuple[str, ...]] = ("PushT-v0",)
    task: str = "PushT-v0"
    fps: int = 10
    episode_length: int = 300
    image_size: tuple[int, int] = (96, 96)
    """Camera frames as (height, width)."""
    visualization_size: tuple[int, int] = (384, 384)
    """Size (height, width) of the frames render() returns for videos."""

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        feats = {OBS_STATE: _vector(["x", "y"])}
        if self.uses_pixels:
            feats[OBS_IMAGE] = _image(self.image_size)
        else:
            feats[OBS_ENV_STATE] = _vector([f"keypoint_{i}_{c}" for i in range(8) for c in ("x", "y")])
        feats[ACTION] = _vector(["x", "y"])
        return feats

    def make_raw_env(self) -> gym.Env:
        try:
            from gym_pusht.envs import PushTEnv
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("The pusht env needs gym-pusht: pip install gym-pusht") from e
        return PushTEnv(
            obs_type="pixels_agent_pos" if self.uses_pixels else "environment_state_agent_pos",
            render_mode=self.render_mode or "rgb_array",
            observation_height=self.image_size[0],
            observation_width=self.image_size[1],
            visualization_height=self.visualization_size[0],
            visualization_width=self.visualization_size[1],
        )


@ENV_CONFIGS.register("libero")
@dataclass(kw_only=True)
class LiberoEnvConfig(TaskListEnvConfig):
    """LIBERO suites with the published protocol (see :mod:`lerobot.envs.libero`); needs ``lerobot[libero]``.

    ``task`` is a suite or a comma list of suites; features are those of LeRobot's LIBERO datasets.
    """

    TASKS: ClassVar[tuple[str, ...]] = tuple(SUITES)
    OBS_TYPES: ClassVar[tuple[str, ...]] = ("pixels_agent_pos",)
    task: str = "libero_10"
    fps: int = 20
    episode_length: int = 0
    """Steps before an episode is cut (0: the longest per-suite limit of the chosen suites, e.g. 520 for
    libero_10; each suite's own limit applies inside the env)."""
    image_size: tuple[int, int] = (256, 256)
    """Camera frames as (height, width)."""
    task_ids: list[int] | None = None
    """Only these task indices of each suite (default: all)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.episode_length = self.episode_length or max(SUITES[s] for s in self.suites)

    expand_tasks = staticmethod(parse_suites)

    @property
    def suites(self) -> tuple[str, ...]:
        return self.task_list

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        from lerobot.envs.libero import ACTION_NAMES, CAMERAS, STATE_NAMES

        feats = {OBS_STATE: _vector(STATE_NAMES)}
        feats.update({f"{OBS_IMAGES}.{cam}": _image(self.image_size) for cam in CAMERAS})
        feats[ACTION] = _vector(ACTION_NAMES)
        return feats

    def make_raw_env(self) -> gym.Env:
        from lerobot.envs.libero import LiberoEnv

        return LiberoEnv(self.suites, self.task_ids, self.render_mode, self.image_size, self.fps)


@ENV_CONFIGS.register("metaworld")
@dataclass(kw_only=True)
class MetaworldEnvConfig(TaskListEnvConfig):
    """Meta-World tasks, one or an MT-style list (see :mod:`lerobot.envs.metaworld`); needs ``lerobot[metaworld]``.

    ``task``: ``reach-v3``, ``reach-v2``, ``metaworld-push-v2``, ``reach-v3,push-v3``, ``mt10`` or ``mt50``.
    """

    DOMAIN_RANDOMIZATION: ClassVar[bool] = True
    TASKS: ClassVar[tuple[str, ...]] = MT50
    task: str = "metaworld-push-v2"
    fps: int = 80
    episode_length: int = 400
    image_size: tuple[int, int] = (480, 480)
    """Camera frames as (height, width)."""

    expand_tasks = staticmethod(expand_metaworld_tasks)

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.task_list

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        from lerobot.envs.metaworld import ACTION_NAMES, OBS_DIM, STATE_NAMES

        feats = {OBS_STATE: _vector(STATE_NAMES)}
        if self.uses_pixels:
            feats[OBS_IMAGE] = _image(self.image_size)
        else:
            feats[OBS_ENV_STATE] = _vector([f"mw_obs_{i}" for i in range(OBS_DIM)])
        feats[ACTION] = _vector(ACTION_NAMES)
        return feats

    def make_raw_env(self) -> gym.Env:
        from lerobot.envs.metaworld import MetaworldEnv

        return MetaworldEnv(
            self.tasks, self.obs_type, self.render_mode, self.image_size, self.fps, self.episode_length,
            domain_randomization=self.domain_randomization,
        )  # fmt: skip


@ENV_CONFIGS.register("xarm")
@dataclass(kw_only=True)
class XarmEnvConfig(EnvConfig):
    """gym-xarm's lift task ported to MuJoCo 3 (see :mod:`lerobot.envs.xarm`); 84x84 camera, 15 fps."""

    DOMAIN_RANDOMIZATION: ClassVar[bool] = True
    TASKS: ClassVar[tuple[str, ...]] = ("XarmLift-v0",)
    TASK_ALIASES: ClassVar[dict[str, str]] = {"lift": "XarmLift-v0"}
    task: str = "XarmLift-v0"
    fps: int = 15
    episode_length: int = 200
    image_size: tuple[int, int] = (84, 84)
    """Camera frames as (height, width)."""
    visualization_size: tuple[int, int] = (384, 384)
    """Size (height, width) of the frames render() returns for videos."""

    @property
    def features(self) -> dict[str, dict[str, Any]]:
        from lerobot.envs.xarm import ACTION_NAMES, STATE_NAMES

        feats = {OBS_STATE: _vector(STATE_NAMES)}
        if self.uses_pixels:
            feats[OBS_IMAGE] = _image(self.image_size)
        else:
            feats[OBS_ENV_STATE] = _vector(
                ["cube_x", "cube_y", "cube_z", "cube_qw", "cube_qx", "cube_qy", "cube_qz"]
            )
        feats[ACTION] = _vector(ACTION_NAMES)
        return feats

    def make_raw_env(self) -> gym.Env:
        from lerobot.envs.xarm import XarmEnv

        return XarmEnv(
            self.task, self.obs_type, self.render_mode, self.image_size, self.visualization_size, self.fps,
            domain_randomization=self.domain_randomization,
        )  # fmt: skip


def _randomizable_env_types() -> list[str]:
    """Registered env types whose simulator supports ``domain_randomization`` (lazy ones that cannot load: not)."""
    able = []
    for name in ENV_CONFIGS.names():
        with contextlib.suppress(ImportError):
            if ENV_CONFIGS.get(name).DOMAIN_RANDOMIZATION:
                able.append(name)
    return able


def resolve_env_config(cfg_or_name: EnvConfig | str | None = None, **overrides: Any) -> EnvConfig:
    """A config from a config, a registered type (``"pusht"``) or a gym id (``"gym_aloha/AlohaInsertion-v0"``).

    ``overrides`` set fields (``task=``, ``obs_type=``, ...); ``type=`` picks the type when no name is given.
    """
    if isinstance(cfg_or_name, EnvConfig):
        return cfg_or_name.replace(**overrides) if overrides else cfg_or_name
    type_name = overrides.pop("type", None)
    if cfg_or_name is not None and type_name not in (None, cfg_or_name):
        raise ValueError(f"make_env got both {cfg_or_name!r} and type={type_name!r}; pass one of them.")
    name = cfg_or_name if cfg_or_name is not None else type_name
    if name is None:
        raise ValueError(
            f"make_env needs an env config or a type name; known types: {', '.join(ENV_CONFIGS.names())}."
        )
    if name.startswith("gym_") and "/" in name:
        name, task = name[len("gym_") :].split("/", 1)
        overrides.setdefault("task", task)
    cls = ENV_CONFIGS.get(name)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(
            f"Unknown option(s) {unknown} for env type {name!r}; valid: {', '.join(sorted(fields))}."
        )
    return cls(**overrides)
