"""Keyboard teleoperators (``--teleop.type=keyboard`` for joints, ``keyboard_ee`` for end-effector deltas).

Both are :class:`DeltaTeleoperator` s: each action key is a *channel* driven by an input in [-1, 1]
(here: plus key held minus minus key held). Two kinds of channel, because a robot needs both:

- integrating (joint targets, ``<joint>.pos``): the value moves by ``step * input`` per
  ``get_action`` and stays where it was left, like turning a knob;
- momentary (``<x>.vel`` base velocities, ``delta_*`` end-effector deltas): the value is
  ``step * input`` while held and 0 when released, so letting go stops the motion.

Keys come from pynput's listener callbacks (:meth:`KeyboardTeleop.on_press` / ``on_release``), so
any other key source (a GUI, a test) can call the same two methods. Headless
(``PYNPUT_BACKEND=dummy`` or no display) no listener starts and the callbacks are the only input.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from lerobot.motors.arm import ARM_JOINTS, GRIPPER
from lerobot.robots.end_effector import EE_ACTION_KEYS
from lerobot.teleoperators.teleoperator import (
    TELEOPERATOR_CONFIGS,
    TELEOPERATORS,
    Teleoperator,
    TeleoperatorConfig,
)
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError
from lerobot.utils.keyboard_input import key_name, start_key_listener

logger = logging.getLogger(__name__)

SO_ACTION_KEYS = [f"{name}.pos" for name in (*ARM_JOINTS, GRIPPER)]
# (plus, minus) key pairs handed out in order: two keyboard rows for joints, arrows and z/x for motion.
JOINT_KEY_PAIRS = [
    ("q", "a"),
    ("w", "s"),
    ("e", "d"),
    ("r", "f"),
    ("t", "g"),
    ("y", "h"),
    ("u", "j"),
    ("i", "k"),
]
MOTION_KEY_PAIRS = [("up", "down"), ("left", "right"), ("z", "x"), ("page_up", "page_down")]


def is_momentary(key: str) -> bool:
    """Velocity and delta channels return to 0 when released; positions hold."""
    return key.endswith(".vel") or key.startswith("delta_")


def default_bindings(action_keys: list[str]) -> dict[str, tuple[str, str]]:
    """``{action_key: (plus_key, minus_key)}``: joints on the letter rows, motions on arrows then z/x."""
    joints = iter(JOINT_KEY_PAIRS)
    motions = iter(MOTION_KEY_PAIRS)
    bindings = {}
    for key in action_keys:
        pairs = motions if is_momentary(key) else joints
        try:
            bindings[key] = next(pairs)
        except StopIteration:
            raise ValueError(f"No default keys left for '{key}'; pass bindings={{...}} explicitly.") from None
    return bindings


@dataclass(kw_only=True)
class DeltaTeleopConfig(TeleoperatorConfig):
    action_keys: list[str] = field(default_factory=lambda: list(SO_ACTION_KEYS))
    """The driven robot's action keys (``robot.action_features``)."""
    step: float = 2.0
    """Per ``get_action`` and full input: degrees (or %) for positions, units of the channel otherwise."""
    step_overrides: dict[str, float] = field(default_factory=dict)
    """Per-key steps, e.g. ``{"x.vel": 0.1, "theta.vel": 30}`` (m/s, deg/s for LeKiwi's base)."""


class DeltaTeleoperator(Teleoperator):
    """Turns per-channel inputs in [-1, 1] into actions (see the module docstring)."""

    config: DeltaTeleopConfig

    def __init__(self, config: DeltaTeleopConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self._targets = dict.fromkeys(self.config.action_keys, 0.0)

    @property
    def action_features(self) -> dict[str, type]:
        return dict.fromkeys(self.config.action_keys, float)

    def reset(self, observation: dict[str, Any] | None = None) -> None:
        """Start the integrating channels from the robot's present positions (avoid a jump to 0)."""
        for key in self._targets:  # "gripper" (an end-effector action) starts from "gripper.pos"
            present = next(
                (observation[k] for k in (key, f"{key}.pos") if observation and k in observation), 0.0
            )
            self._targets[key] = float(present)

    def _inputs(self) -> dict[str, float]:
        raise NotImplementedError

    def get_action(self) -> dict[str, float]:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self.name} is not connected; call connect() first.")
        inputs = self._inputs()
        action = {}
        for key in self.config.action_keys:
            delta = self.config.step_overrides.get(key, self.config.step) * max(
                -1.0, min(1.0, inputs.get(key, 0.0))
            )
            if is_momentary(key):
                action[key] = delta
            else:
                self._targets[key] += delta
                action[key] = self._targets[key]
        return action


@TELEOPERATOR_CONFIGS.register("keyboard")
@dataclass(kw_only=True)
class KeyboardTeleopConfig(DeltaTeleopConfig):
    bindings: dict[str, tuple[str, str]] | None = None
    """``{action_key: (plus_key, minus_key)}`` with pynput names (``"q"``, ``"up"``); ``None``: defaults."""


@TELEOPERATOR_CONFIGS.register("keyboard_ee")
@dataclass(kw_only=True)
class KeyboardEndEffectorTeleopConfig(KeyboardTeleopConfig):
    action_keys: list[str] = field(default_factory=lambda: list(EE_ACTION_KEYS))
    step: float = 0.005  # metres per step: 15 cm/s at 30 Hz
    step_overrides: dict[str, float] = field(default_factory=lambda: {GRIPPER: 3.0})  # % per step


@TELEOPERATORS.register("keyboard_ee")
@TELEOPERATORS.register("keyboard")
class KeyboardTeleop(DeltaTeleoperator):
    config_class = KeyboardTeleopConfig
    name = "keyboard"
    config: KeyboardTeleopConfig

    def __init__(self, config: KeyboardTeleopConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.bindings = self.config.bindings or default_bindings(self.config.action_keys)
        unknown = set(self.bindings) - set(self.config.action_keys)
        if unknown:
            raise ValueError(
                f"Key bindings name {sorted(unknown)}, not among the action keys {self.config.action_keys}."
            )
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._listener: Any = None
        self._connected = False

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        if self._connected:
            raise DeviceAlreadyConnectedError("The keyboard teleoperator is already connected.")
        self._listener = start_key_listener(
            self.on_press, self.on_release, without="only on_press/on_release calls drive this teleoperator"
        )
        self._connected = True

    def on_press(self, key: Any) -> None:
        if (name := key_name(key)) is not None:
            with self._lock:
                self._held.add(name)

    def on_release(self, key: Any) -> None:
        if (name := key_name(key)) is not None:
            with self._lock:
                self._held.discard(name)

    def _inputs(self) -> dict[str, float]:
        with self._lock:
            held = set(self._held)
        return {
            key: float(plus in held) - float(minus in held) for key, (plus, minus) in self.bindings.items()
        }

    def disconnect(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        self._held.clear()
        self._connected = False
