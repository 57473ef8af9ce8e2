"""Keyboard, gamepad and phone teleoperators: key/axis mapping to the robot's action keys."""

from __future__ import annotations

import sys

import pytest
from pynput.keyboard import KeyCode

from lerobot.robots.lekiwi import LeKiwiClient
from lerobot.teleoperators import TELEOPERATOR_CONFIGS, make_teleoperator_from_config
from lerobot.teleoperators.gamepad import GamepadTeleop, PygameJoystick
from lerobot.teleoperators.keyboard import SO_ACTION_KEYS, KeyboardTeleop
from lerobot.teleoperators.phone import PhoneTeleop


def test_keyboard_integrates_joint_targets_from_listener_callbacks():
    teleop = make_teleoperator_from_config(TELEOPERATOR_CONFIGS.get("keyboard")(step=2.0))
    assert isinstance(teleop, KeyboardTeleop) and list(teleop.action_features) == SO_ACTION_KEYS
    with teleop:
        teleop.reset({"shoulder_pan.pos": 10.0, "elbow_flex.pos": -5.0})
        teleop.on_press(KeyCode.from_char("q"))  # shoulder_pan +
        teleop.on_press(KeyCode.from_char("d"))  # elbow_flex -
        teleop.get_action()
        action = teleop.get_action()
        assert action["shoulder_pan.pos"] == 14.0 and action["elbow_flex.pos"] == -9.0
        teleop.on_release(KeyCode.from_char("q"))
        teleop.on_release(KeyCode.from_char("d"))
        assert teleop.get_action()["shoulder_pan.pos"] == 14.0  # positions hold when released
        assert teleop.get_action()["shoulder_lift.pos"] == 0.0


def test_keyboard_drives_lekiwi_base_velocities_momentarily():
    keys = list(LeKiwiClient(remote_ip="127.0.0.1", cameras={}).action_features)
    teleop = KeyboardTeleop(action_keys=keys, step_overrides={"x.vel": 0.2, "theta.vel": 30.0})
    with teleop:
        teleop.on_press("up")  # the dummy pynput backend aliases every Key to Key.alt
        teleop.on_press(KeyCode.from_char("x"))  # theta.vel minus
        action = teleop.get_action()
        assert set(action) == set(keys)
        assert action["x.vel"] == 0.2 and action["theta.vel"] == -30.0 and action["y.vel"] == 0.0
        teleop.on_release("up")
        assert teleop.get_action()["x.vel"] == 0.0  # released: the base stops


def test_keyboard_ee_deltas_and_bad_bindings():
    teleop = make_teleoperator_from_config(TELEOPERATOR_CONFIGS.get("keyboard_ee")())
    with teleop:
        teleop.on_press("left")  # delta_y plus (+y is to the left)
        assert teleop.get_action() == {"delta_x": 0.0, "delta_y": 0.005, "delta_z": 0.0, "gripper": 0.0}
        teleop.on_press("q")  # gripper plus: 3 (%) per step, not 5 mm
        assert teleop.get_action()["gripper"] == 3.0
    with pytest.raises(ValueError, match="not among the action keys"):
        KeyboardTeleop(bindings={"elbow.pos": ("a", "b")})
    with pytest.raises(ConnectionError, match="not connected"):
        KeyboardTeleop().get_action()


class FakeAxes:
    """The lowest layer the gamepad teleop reads: raw SDL-style axes and buttons."""

    def __init__(self) -> None:
        self.axis_values = [0.0] * 6
        self.button_values = [False] * 4
        self.closed = False

    def axes(self) -> list[float]:
        return list(self.axis_values)

    def buttons(self) -> list[bool]:
        return list(self.button_values)

    def close(self) -> None:
        self.closed = True


def test_gamepad_maps_axes_with_sign_and_deadzone():
    source = FakeAxes()
    teleop = GamepadTeleop(source=source, step=0.02)
    with teleop:
        source.axis_values[1] = -1.0  # left stick pushed forward
        source.axis_values[0] = 0.05  # inside the dead zone
        source.axis_values[4] = 0.5  # right stick half down
        source.button_values[1] = True  # close gripper
        action = teleop.get_action()
        assert action == pytest.approx({"delta_x": 0.02, "delta_y": 0.0, "delta_z": -0.01, "gripper": -3.0})
    assert source.closed


def test_gamepad_joint_mode_integrates():
    source = FakeAxes()
    teleop = GamepadTeleop(
        source=source,
        action_keys=["a.pos", "b.pos"],
        axes={"a.pos": (0, 1.0), "b.pos": (2, -1.0)},
        buttons={},
        step=1.0,
    )
    with teleop:
        source.axis_values[0], source.axis_values[2] = 1.0, 1.0
        teleop.get_action()
        assert teleop.get_action() == {"a.pos": 2.0, "b.pos": -2.0}


def test_no_gamepad_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("SDL_JOYSTICK_DEVICE", "/nonexistent")
    with pytest.raises(ConnectionError, match="No gamepad found"):
        PygameJoystick(index=99)


def test_phone_names_the_missing_app(monkeypatch):
    monkeypatch.setitem(sys.modules, "hebi", None)
    teleop = make_teleoperator_from_config(TELEOPERATOR_CONFIGS.get("phone")())
    assert isinstance(teleop, PhoneTeleop) and "delta_x" in teleop.action_features
    with pytest.raises(ImportError, match="HEBI Mobile I/O"):
        teleop.connect()
    with pytest.raises(ValueError, match="phone_os"):
        PhoneTeleop(phone_os="windows")


@pytest.mark.parametrize(
    ("platform", "display", "backend", "reachable"),
    [
        ("linux", None, None, False),  # SSH / CI: no X server for pynput
        ("linux", ":0", None, True),
        ("linux", ":0", "dummy", False),  # forced headless
        ("darwin", None, None, True),  # macOS and Windows have no DISPLAY but always a keyboard
        ("win32", None, None, True),
    ],
)
def test_keyboard_reachable_per_platform(monkeypatch, platform, display, backend, reachable):
    from lerobot.utils import keyboard_input

    monkeypatch.setattr(keyboard_input.sys, "platform", platform)
    for name, value in (("DISPLAY", display), ("PYNPUT_BACKEND", backend)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert keyboard_input.keyboard_reachable() is reachable
