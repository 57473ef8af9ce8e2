"""``lerobot-eval --robot.type=...``: evaluate a policy on a robot or its simulated twin.

::

    lerobot-eval --policy.path=outputs/train/pick/checkpoints/last/pretrained_model \\
        --robot.type=so100_sim --eval.n_episodes=10 --eval.max_steps=300 --output_dir=outputs/eval/pick_twin
    lerobot-eval --policy.path=... --robot-type=so100_follower --robot.port=/dev/ttyACM0 --eval.n_episodes=20

Each episode drives the robot through :class:`~lerobot.robots.safety.SafetyLayer` (joint limits,
``--max_relative_target``, the e-stop key) at ``--control_frequency``. Who says whether it succeeded:

- the robot, when it can tell (``check_task_completion()``, the simulated twins): the episode ends
  as a success the first step it reports the task done, as a failure after ``--eval.max_steps``;
- the operator otherwise (real hardware): ``s`` marks a success and ``f`` a failure at any time
  (ending the episode); an episode that reaches ``--eval.max_steps`` unmarked waits for the mark.
  Keys come from the keyboard (pynput, with a display) or, headless (SSH), from the terminal:
  type ``s`` or ``f`` and Enter.

Between episodes a twin restarts its scene with seed ``seed + i``; on hardware the operator resets
the scene and presses Enter (or the right arrow). The result is the same ``eval_info.json`` (and
``success_rate.png``) as a simulated evaluation; a robot has no reward, so each episode's
``sum_reward`` and ``max_reward`` are its success (1 or 0), and ``judged_by`` says who decided it.
"""

from __future__ import annotations

import inspect
import logging
import queue
import select
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lerobot.robots import Robot
from lerobot.robots.safety import SafetyConfig, with_safety
from lerobot.scripts.eval import success_rates
from lerobot.utils.control_loop import RateLoop
from lerobot.utils.keyboard_input import key_name, keyboard_reachable, start_key_listener

logger = logging.getLogger(__name__)

SUCCESS_KEYS = frozenset({"s", "y"})
FAILURE_KEYS = frozenset({"f", "n"})
NEXT_KEYS = frozenset({"enter", "right", ""})


class KeySource(Protocol):
    """Where the operator's marks come from (the keyboard, the terminal, or a test's script)."""

    def poll(self) -> str | None:
        """The next key pressed since the last call (lower case), or None; never waits."""

    def wait(self, timeout_s: float) -> str | None:
        """The next key, waiting up to ``timeout_s``; None if none came."""

    def close(self) -> None:
        """Stop listening."""


class KeyboardKeys:
    """Key presses from the physical keyboard (pynput listener thread -> queue)."""

    def __init__(self) -> None:
        self._keys: queue.Queue[str] = queue.Queue()
        self._listener = start_key_listener(
            lambda key: self._keys.put(key_name(key) or ""), without="marks come from the terminal"
        )

    def poll(self) -> str | None:
        try:
            return self._keys.get_nowait()
        except queue.Empty:
            return None

    def wait(self, timeout_s: float) -> str | None:
        try:
            return self._keys.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        if self._listener is not None:
            self._listener.stop()


class TerminalKeys:
    """Lines typed in the terminal (works over SSH): the first character of each, Enter alone = ``enter``."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stdin

    def _line(self, timeout_s: float) -> str | None:
        ready, _, _ = select.select([self._stream], [], [], max(0.0, timeout_s))
        if not ready:
            return None
        line = self._stream.readline()
        if line == "":  # end of input: nobody will answer
            raise EOFError("The terminal closed: no operator to mark episodes.")
        text = line.strip().lower()
        return text[:1] if text else "enter"

    def poll(self) -> str | None:
        return self._line(0.0)

    def wait(self, timeout_s: float) -> str | None:
        return self._line(timeout_s)

    def close(self) -> None:
        pass


def default_key_source() -> KeySource:
    return KeyboardKeys() if keyboard_reachable() else TerminalKeys()


def scene_reset(robot: Robot) -> Callable[..., None] | None:
    """The robot's ``reset(seed=...)`` when it can restart its own scene (a simulated twin), else None."""
    reset = getattr(robot, "reset", None)
    if reset is None:
        return None
    try:
        return reset if "seed" in inspect.signature(reset).parameters else None
    except (TypeError, ValueError):
        return None


def can_check_completion(robot: Robot) -> bool:
    """Whether ``check_task_completion()`` answers (simulated twins) rather than raising."""
    try:
        robot.check_task_completion()
    except NotImplementedError:
        return False
    return True


def evaluate_on_robot(
    policy: Any,
    robot: Robot,
    n_episodes: int,
    max_steps: int,
    seed: int = 1000,
    control_frequency: float = 30.0,
    task: str = "",
    safety_checks: bool | SafetyConfig = True,
    keys: KeySource | None = None,
    reset_timeout_s: float = 600.0,
) -> dict[str, Any]:
    """Run ``n_episodes`` on ``robot`` (connected here if it is not) and return the eval_info dict."""
    from lerobot.scripts.deploy import PolicyDriver

    if n_episodes < 1 or max_steps < 1:
        raise ValueError(f"n_episodes and max_steps must be >= 1, got {n_episodes}, {max_steps}.")
    driven = with_safety(robot, safety_checks)
    driver = PolicyDriver(policy, driven, task)  # refuses a policy that does not fit, before connecting
    opened_here = not robot.is_connected
    if opened_here:
        driven.connect()
    own_keys = keys is None
    episodes: list[dict[str, Any]] = []
    started = time.perf_counter()
    try:
        robot_judges = can_check_completion(driven)
        if not robot_judges and keys is None:
            keys = default_key_source()
        reset = scene_reset(driven)
        if not robot_judges:
            print(
                f"{driven.name} cannot tell success: press s (success) or f (failure) during or after each episode."
            )
        for ix in range(n_episodes):
            episode_seed = seed + ix
            if reset is not None:
                reset(seed=episode_seed)
            elif ix > 0:
                _wait_for_next(keys, ix, reset_timeout_s)
            episodes.append(
                _episode(driver, driven, ix, episode_seed, max_steps, control_frequency, robot_judges, keys)
            )
            done = episodes[-1]
            logger.info(
                "Episode %d/%d: %s after %d steps (%s)", ix + 1, n_episodes,
                "success" if done["success"] else "failure", done["n_steps"], done["judged_by"],
            )  # fmt: skip
    finally:
        if own_keys and keys is not None:
            keys.close()
        if opened_here and driven.is_connected:
            driven.disconnect()
    eval_s = time.perf_counter() - started
    aggregated = {
        **success_rates(episodes),
        "avg_sum_reward": float(np.mean([e["sum_reward"] for e in episodes])),
        "avg_max_reward": float(np.mean([e["max_reward"] for e in episodes])),
        "eval_s": eval_s,
        "eval_ep_s": eval_s / len(episodes),
        "inference_ms": float(np.mean(driver.inference_ms)) if driver.inference_ms else 0.0,
    }
    interventions = getattr(driven, "interventions", None)
    if interventions is not None:
        aggregated["safety_interventions"] = len(interventions)
    return {"per_episode": episodes, "aggregated": aggregated, "overall": {**aggregated, "video_paths": []}}


def _episode(
    driver: Any,
    robot: Robot,
    ix: int,
    seed: int,
    max_steps: int,
    fps: float,
    robot_judges: bool,
    keys: KeySource | None,
) -> dict[str, Any]:
    """One rollout until the robot reports success, the operator marks it, or ``max_steps``."""
    driver.reset()
    loop = RateLoop(fps)
    outcome: bool | None = None
    steps = 0
    while steps < max_steps and outcome is None:
        robot.send_action(driver.get_action(robot.get_observation()))
        steps += 1
        if robot_judges:
            outcome = True if robot.check_task_completion() else None
        else:
            outcome = _mark(keys.poll())
        loop.wait()
    if outcome is None and robot_judges:
        outcome = False
    while outcome is None:  # the operator has not said yet: the episode's result waits for them
        print(f"Episode {ix}: success? press s or f.")
        outcome = _mark(keys.wait(60.0))
    return {
        "episode_ix": ix,
        "seed": seed,
        "sum_reward": float(outcome),
        "max_reward": float(outcome),
        "success": bool(outcome),
        "n_steps": steps,
        "judged_by": "robot" if robot_judges else "operator",
    }


def _mark(key: str | None) -> bool | None:
    if key in SUCCESS_KEYS:
        return True
    if key in FAILURE_KEYS:
        return False
    return None


def _wait_for_next(keys: KeySource, ix: int, timeout_s: float) -> None:
    print(f"Reset the scene for episode {ix}, then press Enter (or the right arrow).")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if keys.wait(max(0.0, deadline - time.monotonic())) in NEXT_KEYS:
            return
    raise TimeoutError(f"Nobody started episode {ix} within {timeout_s:.0f} s; evaluation stopped.")


def evaluate_robot_cfg(cfg: Any, policy: Any, output_dir: Path) -> dict[str, Any]:
    """``lerobot-eval`` with ``--robot.*``: build the robot, run, write eval_info.json and the plot."""
    from lerobot.robots import make_robot_from_config
    from lerobot.scripts.eval import EVAL_INFO_NAME, plot_success, write_json

    robot = make_robot_from_config(cfg.robot)
    fps = cfg.control_frequency or getattr(cfg.robot, "fps", None) or 30.0
    max_steps = cfg.eval.max_steps or int(round(30 * fps))
    safety: bool | SafetyConfig = cfg.safety_checks
    if cfg.safety_checks and cfg.max_relative_target is not None:
        safety = SafetyConfig(max_relative_target=cfg.max_relative_target)
    info = evaluate_on_robot(policy, robot, cfg.eval.n_episodes, max_steps, cfg.seed, fps, cfg.task, safety)
    write_json(info, output_dir / EVAL_INFO_NAME)
    plot_success(info, output_dir / "success_rate.png")
    return info
