"""Gamepad teleoperator (``--teleop.type=gamepad``): sticks and buttons -> joint or end-effector deltas.

The mapping (which axis drives which action key, dead zone, steps) is the
:class:`~lerobot.teleoperators.keyboard.DeltaTeleoperator` logic shared with the keyboard. The
device itself is behind a tiny :class:`AxisSource` interface (``axes()``, ``buttons()``), read once
per ``get_action``; :class:`PygameJoystick` implements it with pygame's SDL joystick API (works
headless with ``SDL_VIDEODRIVER=dummy``), and anything else (a network gamepad, a test) can too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Protocol

from lerobot.teleoperators.keyboard import EE_ACTION_KEYS, DeltaTeleopConfig, DeltaTeleoperator
from lerobot.teleoperators.teleoperator import TELEOPERATOR_CONFIGS, TELEOPERATORS
from lerobot.utils.errors import DeviceAlreadyConnectedError


class AxisSource(Protocol):
    def axes(self) -> list[float]: ...

    def buttons(self) -> list[bool]: ...

    def close(self) -> None: ...


class PygameJoystick:
    """The first (or ``index``-th) joystick SDL sees."""

    def __init__(self, index: int = 0):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
        try:
            import pygame
        except ImportError as e:
            raise ImportError(
                "The gamepad teleoperator reads the gamepad with pygame: pip install pygame"
            ) from e
        self._pygame = pygame
        pygame.init()
        pygame.joystick.init()
        count = pygame.joystick.get_count()
        if count <= index:
            pygame.quit()
            raise ConnectionError(
                f"No gamepad found (SDL sees {count} joystick(s), index {index} wanted). Plug in a USB or "
                "paired Bluetooth gamepad and check it appears in /dev/input/js* (Linux)."
            )
        self._joystick = pygame.joystick.Joystick(index)
        self._joystick.init()

    def axes(self) -> list[float]:
        self._pygame.event.pump()  # SDL updates joystick state only while events are processed
        return [self._joystick.get_axis(i) for i in range(self._joystick.get_numaxes())]

    def buttons(self) -> list[bool]:
        return [bool(self._joystick.get_button(i)) for i in range(self._joystick.get_numbuttons())]

    def close(self) -> None:
        self._pygame.quit()


@TELEOPERATOR_CONFIGS.register("gamepad")
@dataclass(kw_only=True)
class GamepadTeleopConfig(DeltaTeleopConfig):
    action_keys: list[str] = field(default_factory=lambda: list(EE_ACTION_KEYS))
    step: float = 0.005
    """Metres per step at full stick deflection (15 cm/s at 30 Hz)."""
    step_overrides: dict[str, float] = field(default_factory=lambda: {"gripper": 3.0})
    """Per-key step instead of ``step`` (the gripper moves 3 % of its range per step)."""
    axes: dict[str, tuple[int, float]] = field(
        default_factory=lambda: {"delta_x": (1, -1.0), "delta_y": (0, -1.0), "delta_z": (4, -1.0)}
    )
    """``{action_key: (axis index, sign)}``; default: left stick forward = +x, left = +y, right stick up = +z
    (SDL reports a stick pushed up as negative)."""
    buttons: dict[str, tuple[int, int]] = field(default_factory=lambda: {"gripper": (0, 1)})
    """``{action_key: (plus button, minus button)}``; default: A opens, B closes the gripper."""
    deadzone: float = 0.1
    """Stick deflection (0-1) below which an axis counts as centred, so a resting stick does not drift."""
    joystick_index: int = 0
    """Which connected gamepad to use (SDL's index, 0 = the first)."""


@TELEOPERATORS.register("gamepad")
class GamepadTeleop(DeltaTeleoperator):
    config_class = GamepadTeleopConfig
    name = "gamepad"
    config: GamepadTeleopConfig

    def __init__(
        self, config: GamepadTeleopConfig | None = None, source: AxisSource | None = None, **kwargs: Any
    ):
        super().__init__(config, **kwargs)
        unknown = (set(self.config.axes) | set(self.config.buttons)) - set(self.config.action_keys)
        if unknown:
            raise ValueError(
                f"Gamepad mapping names {sorted(unknown)}, not among the action keys {self.config.action_keys}."
            )
        self._given_source = source
        self.source: AxisSource | None = None

    @property
    def is_connected(self) -> bool:
        return self.source is not None

    def connect(self, calibrate: bool = True) -> None:
        if self.source is not None:
            raise DeviceAlreadyConnectedError("The gamepad is already connected.")
        self.source = self._given_source or PygameJoystick(self.config.joystick_index)

    def _inputs(self) -> dict[str, float]:
        axes, buttons = self.source.axes(), self.source.buttons()
        inputs = {}
        for key, (index, sign) in self.config.axes.items():
            value = axes[index] if index < len(axes) else 0.0
            inputs[key] = 0.0 if abs(value) < self.config.deadzone else sign * value
        for key, (plus, minus) in self.config.buttons.items():
            pressed = lambda i: i < len(buttons) and buttons[i]  # noqa: E731
            inputs[key] = inputs.get(key, 0.0) + float(pressed(plus)) - float(pressed(minus))
        return inputs

    def disconnect(self) -> None:
        if self.source is not None:
            self.source.close()
        self.source = None
