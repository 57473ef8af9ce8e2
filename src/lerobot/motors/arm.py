"""What every serial-servo arm shares, follower or leader, Feetech (SO-100/101) or Dynamixel (Koch).

It sits in the motors layer, below both robots (followers) and teleoperators (leaders), so neither
imports the other for it.

An arm differs from another by its motor models, its bus class, which joints turn a full circle, and
the registers its ``configure()`` writes. Everything else lives here, once:

- :class:`ArmConfig`: the fields every arm config has (``port``, ``use_degrees``...).
- :class:`MotorArm`: bus creation, calibration file load/compare/save, the interactive calibration
  flow, ``connect`` / ``disconnect`` with torque-off on every failure path, and motor setup.
Followers (``lerobot.robots.motor_arm.ArmFollower``: observations, goal positions,
``max_relative_target``) are ``MotorArm`` + ``Robot``; leaders are ``MotorArm`` + ``Teleoperator``
whose action is :meth:`MotorArm.read_positions`.

Safety contract: an arm counts as connected while its port is open (not "port and every camera"), so
a camera that died never prevents ``disconnect()`` from disabling torque; ``connect()`` releases the
arm with torque off if anything after opening the port fails; and ``lerobot-record`` /
``lerobot-teleoperate`` (and ``with robot:`` blocks) call ``disconnect()`` in a ``finally``, so an
exception or Ctrl-C in the control loop leaves the arm limp rather than holding its last goal.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from lerobot.motors import (
    Motor,
    MotorCalibration,
    MotorNormMode,
    MotorsBus,
    load_calibration,
    save_calibration,
)
from lerobot.motors.motors_bus import FIX_HINT
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError

logger = logging.getLogger(__name__)

ARM_JOINTS = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")
GRIPPER = "gripper"


@dataclass(kw_only=True)
class ArmConfig:
    """Fields shared by every serial-servo arm config (mixed into robot and teleoperator configs)."""

    port: str
    """Serial port of the motor bus, e.g. ``/dev/ttyACM0`` (find it with ``lerobot-find-port``)."""
    use_degrees: bool = True
    """Arm joints in degrees from the calibrated centre; ``False``: -100..100 over the calibrated range."""
    disable_torque_on_disconnect: bool = True
    """Release every motor on disconnect (false: the arm keeps holding its last position)."""
    num_read_retries: int = 2
    """Extra attempts of a position read before a lost packet becomes an error."""


class Attached(Protocol):
    """A device an arm connects and releases with itself (a follower's cameras)."""

    @property
    def is_connected(self) -> bool: ...

    def connect(self) -> None: ...

    def disconnect(self) -> None: ...


def arm_motors(models: Sequence[str], use_degrees: bool) -> dict[str, Motor]:
    """The five arm joints (ids 1-5) and the gripper (id 6), in wiring order."""
    joint_mode = MotorNormMode.DEGREES if use_degrees else MotorNormMode.RANGE_M100_100
    names = (*ARM_JOINTS, GRIPPER)
    if len(models) != len(names):
        raise ValueError(f"An arm has {len(names)} motors ({', '.join(names)}), got {len(models)} models.")
    return {
        name: Motor(motor_id, model, MotorNormMode.RANGE_0_100 if name == GRIPPER else joint_mode)
        for motor_id, (name, model) in enumerate(zip(names, models), start=1)
    }


class MotorArm:
    """Mixin for a ``Robot`` or ``Teleoperator`` built on one serial servo bus (see the module docstring).

    Subclasses set :attr:`bus_class` and :attr:`motor_models`, and override ``configure()``. Prompts
    go through :attr:`input_fn` (``None``: the builtin ``input``), so tests and GUIs can answer them.
    """

    bus_class: ClassVar[type[MotorsBus]]
    motor_models: ClassVar[tuple[str, ...]]
    full_turn_motors: ClassVar[tuple[str, ...]] = ("wrist_roll",)
    """Joints that may turn a full circle: their range is the whole encoder, not a recorded sweep."""
    inverted_motors: ClassVar[tuple[str, ...]] = ()
    """Joints whose calibration has ``drive_mode=1`` (mounted mirrored)."""

    config: ArmConfig
    calibration_fpath: Path
    name: ClassVar[str]

    def __init__(self, config: ArmConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)  # Robot / Teleoperator: the config, id, calibration paths
        config = self.config
        self.calibration = self._read_calibration_file()
        motors = arm_motors(self.motor_models, config.use_degrees)
        self.bus = self.bus_class(config.port, motors, calibration=self.calibration)
        self.cameras: dict[str, Attached] = {}  # a follower fills it: connected after the bus, released first
        self.input_fn: Callable[[str], str] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id!r}, port={self.config.port!r})"

    def _ask(self, prompt: str) -> str:
        return (self.input_fn or builtins.input)(prompt)

    # ------------------------------------------------------------------ features and state

    @property
    def action_features(self) -> dict[str, type]:
        """``{"<motor>.pos": float}``: what a follower takes and a leader produces, in the same units."""
        return {f"{motor}.pos": float for motor in self.bus.motors}

    def read_positions(self) -> dict[str, float]:
        """Present joint positions: a follower's observation, a leader's action."""
        positions = self.bus.sync_read("Present_Position", num_retry=self.config.num_read_retries)
        return {f"{motor}.pos": float(value) for motor, value in positions.items()}

    @property
    def is_connected(self) -> bool:
        return self.bus.is_connected

    @property
    def is_calibrated(self) -> bool:
        return self.bus.is_calibrated

    # ------------------------------------------------------------------ calibration file

    def _read_calibration_file(self) -> dict[str, MotorCalibration]:
        if not self.calibration_fpath.is_file():
            return {}
        try:
            return load_calibration(self.calibration_fpath)
        except (ValueError, TypeError) as e:
            raise ValueError(
                f"Calibration file {self.calibration_fpath} is unreadable ({e}); delete it and run "
                "`lerobot-calibrate` again."
            ) from e

    def _file_matches_motors(self) -> bool:
        """Whether the file's motors are this arm's motors (same names and ids): safe to write back."""
        motors = self.bus.motors
        return set(self.calibration) == set(motors) and all(
            self.calibration[name].id == motor.id for name, motor in motors.items()
        )

    # ------------------------------------------------------------------ connection

    def connect(self, calibrate: bool = True) -> None:
        """Open the bus, restore (or run) calibration, connect cameras, then ``configure()``.

        A calibration file that matches the motors is written to them; otherwise, with ``calibrate``,
        the interactive :meth:`calibrate` runs. Any failure after the port opened releases the arm
        (torque off, cameras off, port closed) before the error propagates.
        """
        if self.is_connected:
            raise DeviceAlreadyConnectedError(f"{self!r} is already connected.")
        self._open_bus()
        try:
            if not self.bus.is_calibrated:
                self._restore_or_calibrate(calibrate)
            for camera in self.cameras.values():
                camera.connect()
            self.configure()
        except BaseException:
            self._release_after_failure()
            raise
        logger.info("%r connected.", self)

    def _open_bus(self) -> None:
        """Connect the bus, failing in a fraction of a second (not 3 s per motor) when nothing answers."""
        bus = self.bus
        bus.connect(handshake=False)
        try:
            answering = bus.broadcast_ping(num_retry=2)
        finally:
            bus.disconnect(disable_torque=False)
        if not answering:
            raise ConnectionError(
                f"No motor of {self!r} answers on {bus.port} at {bus.baudrate} baud. {FIX_HINT}"
            )
        bus.connect()  # the full handshake: every motor present, with the expected model

    def _restore_or_calibrate(self, calibrate: bool) -> None:
        if self._file_matches_motors():
            logger.info("Writing the calibration from %s to the motors.", self.calibration_fpath)
            self.bus.write_calibration(self.calibration)
            return
        if self.calibration:
            logger.warning(
                "Calibration file %s does not match the motors of %r (names/ids %s); ignoring it.",
                self.calibration_fpath,
                self,
                {n: m.id for n, m in self.bus.motors.items()},
            )
            self.calibration = self.bus.calibration = {}
        if calibrate:
            self.calibrate()
        else:
            logger.info("%r is not calibrated: positions cannot be read until it is calibrated.", self)

    def _release_after_failure(self) -> None:
        """Best-effort release; a secondary error is logged so the original one is what the caller sees."""
        try:
            self._release(disable_torque=True)
        except Exception as e:
            logger.error("Could not fully release %r (torque may still be on): %s", self, e)

    def _release(self, disable_torque: bool) -> None:
        """Cameras off, then torque off and port closed (the latter even if a camera fails to stop)."""
        try:
            for camera in self.cameras.values():
                if camera.is_connected:
                    camera.disconnect()
        finally:
            if self.bus.is_connected:
                self.bus.disconnect(disable_torque=disable_torque)

    def disconnect(self) -> None:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self!r} is not connected.")
        self._release(self.config.disable_torque_on_disconnect)
        logger.info("%r disconnected.", self)

    # ------------------------------------------------------------------ calibration flow

    def _prepare_calibration(self) -> None:
        """Hook run with torque off before homing (Dynamixel arms switch to extended-position mode)."""

    def calibrate(self) -> None:
        """Interactive calibration: centre the arm, sweep every joint, write to the motors, save the file.

        Torque stays off throughout (the user moves the arm by hand); if the flow is interrupted the
        arm is left limp, and the previous file is untouched until the new calibration is complete.
        """
        bus = self.bus
        bus.disable_torque()
        self._prepare_calibration()
        self._ask(f"Move {self!r} to the middle of its range of motion and press ENTER...")
        offsets = bus.set_half_turn_homings()
        swept = [name for name in bus.motors if name not in self.full_turn_motors]
        prompt = (
            f"Move all joints except {', '.join(self.full_turn_motors)} one by one through their entire "
            "ranges of motion, then press ENTER to stop recording..."
        )
        mins, maxs = bus.record_ranges_of_motion(swept, stop=self._answered(prompt))
        calibration = {}
        for name, motor in bus.motors.items():
            last_step = bus.protocol.model(motor.model).resolution - 1
            calibration[name] = MotorCalibration(
                id=motor.id,
                drive_mode=int(name in self.inverted_motors),
                homing_offset=offsets[name],
                range_min=mins.get(name, 0),
                range_max=maxs.get(name, last_step),
            )
        bus.write_calibration(calibration)
        self.calibration = calibration
        save_calibration(self.calibration_fpath, calibration)
        print(f"Calibration saved to {self.calibration_fpath}")

    def _answered(self, prompt: str) -> Callable[[], bool]:
        """A stop condition that turns true once ``prompt`` was answered (asked on a thread)."""
        answered = threading.Event()

        def ask() -> None:
            try:
                self._ask(prompt)
            finally:  # EOF on stdin (a closed terminal) also ends the recording instead of hanging it
                answered.set()

        threading.Thread(target=ask, name=f"{self.name} calibration prompt", daemon=True).start()
        return answered.is_set

    # ------------------------------------------------------------------ motor setup

    def setup_motors(self) -> None:
        """Give each motor its id and the default baud rate, one motor on the bus at a time.

        Goes in reverse order (gripper first), as the arm is assembled: each motor is daisy-chained to
        the already-configured ones only after its own id is set.
        """
        bus = self.bus
        bus.connect(handshake=False)
        try:
            for name in reversed(bus.motors):
                self._ask(f"Connect the controller board to the '{name}' motor only and press ENTER.")
                bus.setup_motor(name)
                print(f"'{name}' motor id set to {bus.motors[name].id}")
        finally:
            bus.disconnect(disable_torque=False)
