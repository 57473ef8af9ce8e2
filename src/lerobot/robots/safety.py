"""The safety layer that sits between every policy or teleoperator and every robot.

A learned policy can emit anything: a NaN after a bad normalisation, a joint target past the
mechanical stop, a jump of 90 degrees in one step, a pose that drives the gripper into the table. The
motors would try to execute all of it. :class:`SafetyLayer` wraps a :class:`~lerobot.robots.robot.Robot`
(it is one itself, so recording and deployment code cannot tell the difference) and makes every
``send_action`` pass, in this order:

1. ``non_finite``: NaN / inf values reject the whole action (the arm holds its present position): a
   producer that emits NaN for one joint cannot be trusted for the others.
2. ``joint_limits``: each motor is clamped to its range, derived from the robot's calibration and
   normalisation mode and narrowed (never widened or replaced) by :class:`SafetyConfig`.
3. ``max_relative_target``: each motor moves at most that far from its present position per step,
   read when the action is sent (not taken from the last observation: the arm moved since); if it
   cannot be read the action is refused with :class:`ActionRefusedError` and nothing is sent.
4. ``workspace``: the end effector (forward kinematics of the resulting joint vector) must stay inside
   an axis-aligned box; if not, the step is scaled back toward the present pose by bisection.

With ``on_violation="refuse"`` any violation makes the arm hold its present position instead. Every
change is recorded in :attr:`SafetyLayer.interventions` and logged once per step, so an unsafe action
is never sent raw and never silently altered. :meth:`SafetyLayer.emergency_stop` (a call from any
thread, or a key) disables torque on every motor it can reach, even when one fails, says which it
could not reach, and blocks every later action until :meth:`SafetyLayer.reset_emergency_stop`.

Underneath, the motor bus itself refuses non-finite values and clamps goals to the calibrated range,
so these guarantees hold for a robot driven without this layer too (see
:meth:`~lerobot.motors.motors_bus.MotorsBus.sync_write`).

``deploy_policy(..., safety_checks=True)`` wraps its robot with :func:`with_safety`.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from lerobot.motors.motors_bus import MotorNormMode
from lerobot.motors.protocol import TorqueOffError
from lerobot.robots.kinematics import KinematicChain, box_bounds, chain_for_robot, forward_kinematics
from lerobot.robots.robot import Robot, RobotWrapper
from lerobot.utils.keyboard_input import key_name, start_key_listener

logger = logging.getLogger(__name__)

Bounds = tuple[tuple[float, float, float], tuple[float, float, float]]


class EmergencyStopError(RuntimeError):
    """Raised by ``send_action`` while the emergency stop is engaged."""


class ActionRefusedError(RuntimeError):
    """Raised by ``send_action`` when the action cannot be checked (nothing was sent)."""


@dataclass
class SafetyConfig:
    """What the safety layer enforces; every field in the robot's normalised action units.

    ``joint_limits`` and ``max_relative_target`` dicts may be keyed by motor (``"elbow_flex"``) or by
    action key (``"elbow_flex.pos"``). Joint limits are derived from the robot's bus: ``DEGREES``
    motors get their calibrated range, ``RANGE_M100_100`` motors (-100, 100) and ``RANGE_0_100``
    motors (0, 100). ``joint_limits`` narrows those of the motors it names (the intersection; one
    outside the calibrated range is an error) and leaves the others as derived; on a robot without a
    bus it is the only source of joint limits.
    ``workspace_bounds`` is ``((x_min, y_min, z_min), (x_max, y_max, z_max))`` in metres in the robot
    base frame of ``kinematic_chain`` (a name from :data:`~lerobot.robots.kinematics.CHAINS` or a
    chain; ``None`` picks the chain registered under the robot's name); ``-100..100`` joints are
    converted to degrees through their calibration, and a robot without a bus must report degrees.
    """

    joint_limits: dict[str, tuple[float, float]] | None = None
    """``{motor: (low, high)}``, narrowing the calibrated range of the motors it names."""
    max_relative_target: float | dict[str, float] | None = None
    """Largest goal change per action from the present position (one value, or one per motor)."""
    workspace_bounds: Bounds | None = None
    """``((x_min, y_min, z_min), (x_max, y_max, z_max))`` in metres: the tool point stays inside."""
    kinematic_chain: str | KinematicChain | None = None
    """Chain for ``workspace_bounds`` (a name from ``CHAINS``; None: the robot's own)."""
    on_violation: Literal["clamp", "refuse"] = "clamp"
    """``clamp``: send the nearest safe action; ``refuse``: raise ``ActionRefusedError`` and send nothing."""
    estop_key: str | None = "space"
    """Key that disables torque on every motor at once (None: no keyboard emergency stop)."""


def _clamp_relative(
    goal: dict[str, float], present: dict[str, float], limits: dict[str, float]
) -> dict[str, float]:
    """``present + clamp(goal - present, -max, +max)`` for the motors named in ``limits``."""
    out = dict(goal)
    for key, limit in limits.items():
        out[key] = present[key] + min(limit, max(-limit, goal[key] - present[key]))
    return out


def ensure_safe_goal_position(
    goal: dict[str, float], present: dict[str, float], max_relative_target: float | dict[str, float]
) -> dict[str, float]:
    """Clamp each goal to ``present +- max_relative_target`` (spec §3.1), warning when it clamps.

    ``goal`` and ``present`` must have the same keys, and so must a dict ``max_relative_target``: a
    motor without a limit would move unbounded, which is exactly what this function exists to prevent.
    A NaN or infinite goal is refused: clamped, it would become a full step in some direction.
    """
    bad = {k: v for k, v in goal.items() if not math.isfinite(v)}
    if bad:
        raise ValueError(f"Refusing goal positions {bad}: not finite numbers; nothing was sent.")
    if set(goal) != set(present):
        raise ValueError(
            f"Goal and present positions name different motors: only in goal {sorted(set(goal) - set(present))}, "
            f"only in present {sorted(set(present) - set(goal))}."
        )
    if isinstance(max_relative_target, dict):
        if set(max_relative_target) != set(goal):
            raise ValueError(
                "max_relative_target must name exactly the goal's motors: missing "
                f"{sorted(set(goal) - set(max_relative_target))}, unexpected "
                f"{sorted(set(max_relative_target) - set(goal))}."
            )
        limits = {k: float(v) for k, v in max_relative_target.items()}
    else:
        limits = dict.fromkeys(goal, float(max_relative_target))
    safe = _clamp_relative(goal, present, limits)
    clamped = [f"{k} {goal[k]:.2f} -> {safe[k]:.2f}" for k in goal if safe[k] != goal[k]]
    if clamped:
        logger.warning("Goal clamped by max_relative_target: %s", ", ".join(clamped))
    return safe


class SafetyLayer(RobotWrapper):
    """A robot wrapper that clamps or refuses unsafe actions (see the module docstring)."""

    MAX_RECORDED_INTERVENTIONS = 10_000  # older records are dropped so a long deployment stays bounded
    BISECTION_STEPS = 30  # 2**-30 of the step: far below any motor's resolution

    def __init__(self, robot: Robot, config: SafetyConfig | None = None):
        super().__init__(robot)
        self.safety_config = config = config or SafetyConfig()
        if config.on_violation not in ("clamp", "refuse"):
            raise ValueError(f"on_violation must be 'clamp' or 'refuse', got {config.on_violation!r}.")
        self._explicit_limits = (
            None if config.joint_limits is None else self._keyed(config.joint_limits, "joint_limits")
        )
        for key, (lo, hi) in (self._explicit_limits or {}).items():
            if not lo <= hi:
                raise ValueError(f"joint_limits['{key}'] = ({lo}, {hi}) has min > max.")
        self._max_relative = self._resolve_max_relative(config.max_relative_target)
        self._chain, self._bounds = self._resolve_workspace(config)
        self._limits: dict[str, tuple[float, float]] | None = None  # resolved at the first action
        self._deg_per_unit: dict[str, float] = {}
        self._stop = threading.Event()
        self._io_lock = threading.RLock()  # one bus transaction at a time, and none after an e-stop
        self._listener: Any = None
        self.interventions: list[dict[str, Any]] = []  # {"step", "rule", "motor", "requested", "sent"}
        self.steps = 0  # actions forwarded so far; an intervention's "step" is its action's index

    # ------------------------------------------------------------------ configuration

    def _keyed(self, values: dict[str, Any], what: str) -> dict[str, Any]:
        """Re-key a per-motor dict by action key, refusing names the robot does not have."""
        keys = list(self.robot.action_features)
        out, unknown = {}, []
        for name, value in values.items():
            key = name if name in keys else f"{name}.pos"
            if key in keys:
                out[key] = value
            else:
                unknown.append(name)
        if unknown:
            raise ValueError(
                f"SafetyConfig.{what} names {unknown}, which {self.name} does not have; it has {keys}."
            )
        return out

    def _resolve_max_relative(self, value: float | dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            return dict.fromkeys(self.robot.action_features, float(value))
        limits = {k: float(v) for k, v in self._keyed(value, "max_relative_target").items()}
        missing = [k for k in self.robot.action_features if k not in limits]
        if missing:
            raise ValueError(
                f"SafetyConfig.max_relative_target has no limit for {missing}; give every motor one "
                "(or a single number), so no motor moves unbounded."
            )
        return limits

    def _resolve_workspace(self, config: SafetyConfig) -> tuple[KinematicChain | None, np.ndarray | None]:
        if config.workspace_bounds is None:
            return None, None
        bounds = box_bounds(config.workspace_bounds, "workspace_bounds")
        return chain_for_robot(self.robot, config.kinematic_chain, "workspace_bounds"), bounds

    def _resolve_units(self) -> None:
        """Joint limits and degrees-per-unit from the bus, once the robot is connected (calibrated)."""
        bus = getattr(self.robot, "bus", None)
        calibration = getattr(self.robot, "calibration", None) or getattr(bus, "calibration", {})
        limits: dict[str, tuple[float, float]] = {}
        self._deg_per_unit = {}
        for name, motor in (bus.motors if bus is not None else {}).items():
            key, mode, cal = f"{name}.pos", MotorNormMode(motor.norm_mode), calibration.get(name)
            if mode is MotorNormMode.RANGE_0_100:  # a gripper: no angle, so no place in the chain
                limits[key] = (0.0, 100.0)
                continue
            if cal is None:
                raise RuntimeError(
                    f"Motor '{name}' of {self.name} has no calibration, so its safe range is unknown; "
                    "calibrate the robot (or give SafetyConfig.joint_limits) before sending actions."
                )
            resolution = bus.protocol.model(motor.model).resolution
            half_deg = (cal.range_max - cal.range_min) / 2 * 360 / (resolution - 1)
            if mode is MotorNormMode.DEGREES:
                limits[key], self._deg_per_unit[key] = (-half_deg, half_deg), 1.0
            else:  # RANGE_M100_100: +-100 spans the calibrated range, mirrored for drive_mode=1
                inverted = bool(cal.drive_mode) and bus.apply_drive_mode
                limits[key] = (-100.0, 100.0)
                self._deg_per_unit[key] = (-1 if inverted else 1) * half_deg / 100
        if bus is not None and self._chain is not None:
            linear = [j for j in self._chain.joint_names if f"{j}.pos" not in self._deg_per_unit]
            if linear:
                raise ValueError(f"Workspace checks need {linear} in degrees or -100..100, not 0..100.")
        if self._explicit_limits is not None:
            limits = self._narrow(limits, self._explicit_limits)
        elif bus is None:
            logger.info(
                "%s has no motor bus to derive joint limits from; pass SafetyConfig.joint_limits to set them.",
                self.name,
            )
        self._limits = limits

    def _narrow(
        self, derived: dict[str, tuple[float, float]], given: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        """``derived`` with each limit that ``given`` names replaced by the intersection of the two."""
        limits = dict(derived)
        for key, (lo, hi) in given.items():
            if key in derived:
                lo, hi = max(lo, derived[key][0]), min(hi, derived[key][1])
                if lo > hi:
                    raise ValueError(
                        f"SafetyConfig.joint_limits['{key}'] = {given[key]} lies outside the calibrated "
                        f"range {derived[key]} of {self.name}; give limits inside it."
                    )
            limits[key] = (lo, hi)
        return limits

    # ------------------------------------------------------------------ Robot API (delegated)

    @property
    def stopped(self) -> bool:
        """Whether the emergency stop is engaged."""
        return self._stop.is_set()

    def connect(self, calibrate: bool = True) -> None:
        with self._io_lock:
            self.robot.connect(calibrate)
        self._limits = None  # calibration may have changed while connecting
        if self.safety_config.estop_key and self._listener is None:
            self._start_keyboard(self.safety_config.estop_key)

    def calibrate(self) -> None:
        with self._io_lock:
            self.robot.calibrate()
        self._limits = None

    def configure(self) -> None:
        with self._io_lock:
            self.robot.configure()

    def disconnect(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        with self._io_lock:
            self.robot.disconnect()

    def flat_action(self, action: dict[str, Any]) -> dict[str, float]:
        return self.robot.flat_action(action)

    def _get_observation(self) -> dict[str, Any]:
        with self._io_lock:
            return self.robot.get_observation()

    # ------------------------------------------------------------------ the checks

    def _present(self) -> dict[str, float]:
        """Present value of every action key, read now.

        Never the observation the policy acted on: by the time its action arrives the arm may have
        moved several times ``max_relative_target`` from there. When the read fails, or returns a
        non-finite value, the action cannot be checked and is refused.
        """
        try:
            with self._io_lock:
                present = self.robot.read_present()
        except Exception as e:
            raise ActionRefusedError(
                f"Action refused: the present position of {self.name} could not be read ({e}), so the "
                "step cannot be checked; nothing was sent."
            ) from e
        bad = {k: v for k, v in present.items() if not math.isfinite(v)}
        if bad:
            raise ActionRefusedError(
                f"Action refused: {self.name} reports non-finite present values {bad}; nothing was sent."
            )
        return present

    def _tip_violation(self, goal: dict[str, float]) -> float:
        """Distance (m) from the end effector at ``goal`` to the workspace box, 0 inside."""
        assert self._chain is not None and self._bounds is not None
        degrees = [
            goal[f"{j}.pos"] * self._deg_per_unit.get(f"{j}.pos", 1.0) for j in self._chain.joint_names
        ]
        tip = forward_kinematics(self._chain, degrees)[:3, 3]
        return float(
            np.linalg.norm(np.maximum(self._bounds[0] - tip, 0) + np.maximum(tip - self._bounds[1], 0))
        )

    def _within_workspace(self, goal: dict[str, float], present: dict[str, float]) -> dict[str, float] | None:
        """``goal`` if its tip is inside the box (or, from outside, no farther out), else the farthest
        point toward it that is, found by bisection on the step; ``None`` in refuse mode."""
        allowed = self._tip_violation(present) + 1e-12  # outside already: only moves back are allowed
        if self._tip_violation(goal) <= allowed:
            return goal
        if self.safety_config.on_violation == "refuse":
            return None
        keys = [f"{j}.pos" for j in self._chain.joint_names]  # type: ignore[union-attr]
        ok, bad = 0.0, 1.0
        for _ in range(self.BISECTION_STEPS):
            mid = (ok + bad) / 2
            trial = {**goal, **{k: present[k] + mid * (goal[k] - present[k]) for k in keys}}
            ok, bad = (mid, bad) if self._tip_violation(trial) <= allowed else (ok, mid)
        return {**goal, **{k: present[k] + ok * (goal[k] - present[k]) for k in keys}}

    def _make_safe(self, requested: dict[str, float], records: list[dict[str, Any]]) -> dict[str, float]:
        """Apply the rules in order; append one record per changed motor and rule to ``records``."""
        present: dict[str, float] = {}

        def get_present() -> dict[str, float]:
            if not present:
                present.update(self._present())
            return present

        def note(rule: str, before: dict[str, float], after: dict[str, float]) -> None:
            for k in before:
                if after[k] != before[k]:  # NaN != NaN, so a NaN request always counts as changed
                    records.append({"rule": rule, "motor": k, "requested": before[k], "sent": after[k]})

        def hold(rule: str, before: dict[str, float]) -> dict[str, float]:
            held = {k: get_present()[k] for k in before}
            note(rule, before, held)
            return held

        refuse = self.safety_config.on_violation == "refuse"
        goal = dict(requested)
        if not all(math.isfinite(v) for v in goal.values()):
            return hold("non_finite", goal)

        limits = self._limits or {}
        clamped = {k: min(limits[k][1], max(limits[k][0], v)) if k in limits else v for k, v in goal.items()}
        if clamped != goal:
            if refuse:
                return hold("joint_limits", goal)
            note("joint_limits", goal, clamped)
            goal = clamped

        if self._max_relative is not None:
            limited = _clamp_relative(goal, get_present(), self._max_relative)
            if limited != goal:
                if refuse:
                    return hold("max_relative_target", goal)
                note("max_relative_target", goal, limited)
                goal = limited

        if self._chain is not None:
            inside = self._within_workspace(goal, get_present())
            if inside is None:
                return hold("workspace", goal)
            note("workspace", goal, inside)
            goal = inside
        return goal

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        """Check, then forward; raises :class:`EmergencyStopError` while the e-stop is engaged."""
        self._raise_if_stopped()
        if self._limits is None:
            self._resolve_units()
        records: list[dict[str, Any]] = []
        safe = self._make_safe(action, records)
        with self._io_lock:
            self._raise_if_stopped()  # the e-stop may have fired while the checks ran
            sent = self.robot.send_action(safe)
        if records:
            self._record(records)
        self.steps += 1
        return sent

    def _record(self, records: list[dict[str, Any]]) -> None:
        for r in records:
            r["step"] = self.steps
        self.interventions.extend(records)
        if len(self.interventions) > 2 * self.MAX_RECORDED_INTERVENTIONS:
            del self.interventions[: -self.MAX_RECORDED_INTERVENTIONS]
        logger.warning(
            "Safety layer changed step %d: %s",
            self.steps,
            "; ".join(f"{r['motor']} {r['requested']:.3f} -> {r['sent']:.3f} ({r['rule']})" for r in records),
        )

    # ------------------------------------------------------------------ emergency stop

    def _raise_if_stopped(self) -> None:
        if self._stop.is_set():
            raise EmergencyStopError(
                f"Emergency stop engaged on {self.name}: no action is sent until reset_emergency_stop()."
            )

    ESTOP_RETRIES = 2  # extra torque-off attempts per motor before it is reported unreachable

    def emergency_stop(self, reason: str = "emergency_stop() called") -> dict[str, str]:
        """Disable torque on every motor (or disconnect a robot without a bus); block later actions.

        Safe to call from any thread: the flag is set first, so actions still being checked are
        dropped, then the torque-off waits for at most the one bus transaction in flight. One motor
        that fails does not stop the others (see :meth:`MotorsBus.disable_torque`). Returns once all
        was tried: ``{motor: why}`` for each motor it could not reach (logged as critical), empty
        when every motor confirmed.
        """
        self._stop.set()
        logger.critical("EMERGENCY STOP on %s (%s): disabling torque.", self.name, reason)
        with self._io_lock:
            unreached = self._torque_off()
        if unreached:
            logger.critical(
                "Emergency stop could not reach %s of %s (they may still hold torque: cut the power): %s",
                sorted(unreached),
                self.name,
                "; ".join(f"{motor}: {why}" for motor, why in unreached.items()),
            )
        return unreached

    def _torque_off(self) -> dict[str, str]:
        """Torque off everywhere it can; ``{motor (or robot) name: why}`` where it could not."""
        bus = getattr(self.robot, "bus", None)
        try:
            if bus is not None:
                bus.disable_torque(num_retry=self.ESTOP_RETRIES)
            elif self.robot.is_connected:
                self.robot.disconnect()
        except TorqueOffError as e:
            return {motor: str(error) for motor, error in e.failures.items()}
        except Exception as e:  # the port is gone or closed: no motor was reached
            return dict.fromkeys(bus.motors if bus is not None else [self.name], str(e))
        return {}

    def reset_emergency_stop(self) -> None:
        """Re-arm after an emergency stop.

        On a bus robot the goal is first set to the present position, then torque is re-enabled: the
        motors still hold the last goal from before the stop, and re-enabling torque on it would snap
        the arm back to where it was. A robot that was disconnected must be connected again.
        """
        with self._io_lock:
            bus = getattr(self.robot, "bus", None)
            if bus is not None and self.robot.is_connected:
                self.robot.send_action(self._present())
                bus.enable_torque()
            self._stop.clear()
        logger.info("Emergency stop on %s reset.", self.name)

    def _start_keyboard(self, key: str) -> None:
        """Listen for ``key`` (a pynput name: "space", "esc", "q"); without a keyboard rely on calls."""

        def on_press(pressed: object) -> None:
            if key_name(pressed) == key.lower():
                self.emergency_stop(f"'{key}' pressed")

        self._listener = start_key_listener(on_press, without="call emergency_stop() for an emergency stop")
        if self._listener is not None:
            logger.info("Press '%s' for an emergency stop (torque off).", key)


def with_safety(robot: Robot, safety_checks: bool | SafetyConfig = True) -> Robot:
    """The robot to drive: wrapped in a :class:`SafetyLayer` unless ``safety_checks`` is False.

    ``True`` uses the default :class:`SafetyConfig` (calibrated joint limits, e-stop key); a config
    selects the rules. An already wrapped robot is returned as is, so layers never stack.
    """
    if safety_checks is False or isinstance(robot, SafetyLayer):
        return robot
    return SafetyLayer(robot, safety_checks if isinstance(safety_checks, SafetyConfig) else None)
