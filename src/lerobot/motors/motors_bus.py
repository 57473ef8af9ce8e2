"""Protocol-agnostic serial motor bus: named registers, normalisation, retries, calibration flow.

Why our own packet code on top of pyserial instead of the vendors' SDKs (``scservo_sdk``,
``dynamixel_sdk``): the packets are short and fully documented, owning them means the emulator tests
exercise every byte that goes on the wire, errors can name the motor and the register, and there is no
vendor dependency to install or to patch (the SDKs need monkey-patching on macOS and in mocks).

Everything that differs between servo families lives in a :class:`~lerobot.motors.protocol.Protocol`
(framing, checksums, sign encodings, control tables) and in a few small hooks of the subclasses
(model-number lookup, torque registers, half-turn homing sign). Values are exchanged by *motor name*;
ids only appear on the wire and in error messages.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import ClassVar, TypeVar

import serial

from lerobot.motors.protocol import (
    BROADCAST_ID,
    PING,
    READ,
    SYNC_READ,
    SYNC_WRITE,
    WRITE,
    ChecksumError,
    MotorBusError,
    MotorChecksumError,
    MotorPortError,
    MotorStatusError,
    MotorTimeoutError,
    Packet,
    Protocol,
    TorqueOffError,
)
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError

logger = logging.getLogger(__name__)

T = TypeVar("T")

try:  # a pty whose master is gone fails tcflush with termios.error, which is not an OSError
    import termios

    _PORT_ERRORS: tuple[type[Exception], ...] = (serial.SerialException, OSError, termios.error)
except ImportError:  # Windows
    _PORT_ERRORS = (serial.SerialException, OSError)

# Serial reads wait at most this long at a time, so every wait honours its own deadline precisely
# (a request timeout, or the short listening window of a broadcast ping) without reconfiguring the port.
_POLL_S = 0.005

FIX_HINT = (
    "Check that the motors are powered, that the cable is plugged in, and that the motor id and baud rate "
    "match the configuration (find the port with `lerobot-find-port`, set ids and baud rates with "
    "`lerobot-setup-motors`)."
)


class MotorNormMode(str, Enum):
    RANGE_0_100 = "range_0_100"
    RANGE_M100_100 = "range_m100_100"
    DEGREES = "degrees"


@dataclass
class Motor:
    id: int
    model: str
    norm_mode: MotorNormMode


@dataclass
class MotorCalibration:
    id: int
    drive_mode: int
    homing_offset: int
    range_min: int
    range_max: int


def save_calibration(path: str | Path, calibration: dict[str, MotorCalibration]) -> None:
    """Write a calibration file (spec §3.1: indent 4, motor order kept, fields in declaration order).

    Written to a temporary file then renamed, so a crash mid-write never leaves a truncated file that
    would make the robot refuse to start (or worse, start with half a calibration).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({name: asdict(cal) for name, cal in calibration.items()}, indent=4))
    os.replace(tmp, path)


def load_calibration(path: str | Path) -> dict[str, MotorCalibration]:
    """Read a calibration file written by :func:`save_calibration` (or by the reference library)."""
    data = json.loads(Path(path).read_text())
    return {name: MotorCalibration(**{k: int(v) for k, v in fields.items()}) for name, fields in data.items()}


def _is_finite(value: object) -> bool:
    """Whether ``value`` is a finite real number (ints, floats and NumPy scalars; not NaN or inf)."""
    try:
        return math.isfinite(value)  # type: ignore[arg-type]
    except TypeError:
        return False


def _wait_for_enter() -> Callable[[], bool]:
    """Default stop condition of the range recording: true once the user pressed Enter."""
    pressed = threading.Event()

    def wait() -> None:
        input()
        pressed.set()

    threading.Thread(target=wait, daemon=True).start()
    return pressed.is_set


class MotorsBus(ABC):
    """A chain of serial servos of one family, addressed by motor name.

    Subclasses set :attr:`protocol` and implement the few protocol-specific hooks; everything else
    (I/O with deadlines and retries, normalisation, torque handling, calibration, setup) lives here.
    """

    protocol: ClassVar[Protocol]
    apply_drive_mode: ClassVar[bool]
    normalized_data: ClassVar[tuple[str, ...]] = ("Goal_Position", "Present_Position")
    goal_data: ClassVar[str] = "Goal_Position"
    """The register every write of which is clamped to the motor's calibrated range."""

    def __init__(
        self,
        port: str,
        motors: dict[str, Motor],
        calibration: dict[str, MotorCalibration] | None = None,
        baudrate: int = 1_000_000,
        timeout_ms: int = 1000,
    ):
        self.port = port
        self.motors = dict(motors)
        self.calibration = dict(calibration or {})
        self.baudrate = baudrate
        self.timeout_ms = timeout_ms
        self._serial: serial.Serial | None = None
        for name, motor in self.motors.items():
            self.protocol.model(motor.model)  # unknown models fail here, not at the first read
            if not 0 <= motor.id < BROADCAST_ID:
                raise ValueError(f"Motor '{name}': id {motor.id} is outside 0..{BROADCAST_ID - 1}")
        self._id_to_name = {m.id: name for name, m in self.motors.items()}
        if len(self._id_to_name) != len(self.motors):
            raise ValueError(f"Two motors share an id: { {n: m.id for n, m in self.motors.items()} }")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port!r}, motors={list(self.motors)})"

    def __enter__(self) -> MotorsBus:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_connected:
            self.disconnect()

    # ================================================================== protocol hooks
    @abstractmethod
    def _model_number(self, motor_id: int, ping_status: Packet) -> int:
        """Model number of a motor that just answered a ping."""

    @abstractmethod
    def _torque_writes(self, enable: bool) -> list[tuple[str, int]]:
        """Registers to write (in order) to enable or disable torque."""

    @abstractmethod
    def _half_turn_offset(self, position: int, resolution: int) -> int:
        """Homing offset that makes the current raw ``position`` read as the middle of the range."""

    @abstractmethod
    def configure_motors(self) -> None:
        """Write the bus-level settings every robot wants (call with torque disabled)."""

    # ================================================================== connection
    @property
    def is_connected(self) -> bool:
        return self._serial is not None and self._serial.is_open

    def connect(self, handshake: bool = True) -> None:
        """Open the port and, with ``handshake``, check that every motor answers with the right model."""
        if self.is_connected:
            raise DeviceAlreadyConnectedError(f"{self!r} is already connected")
        try:
            self._serial = serial.Serial(self.port, self.baudrate, timeout=_POLL_S, write_timeout=1.0)
        except (serial.SerialException, OSError) as e:
            raise ConnectionError(
                f"Could not open the motor bus port '{self.port}': {e}. Is it the right port "
                "(run `lerobot-find-port`), is the adapter plugged in, and does your user have access to it?"
            ) from e
        if handshake:
            try:
                self._handshake()
            except BaseException:
                self._close()
                raise
        logger.debug("%r connected", self)

    def _handshake(self) -> None:
        missing, wrong = [], []
        for name, motor in self.motors.items():
            found = self.ping(motor.id, num_retry=2)
            expected = self.protocol.model(motor.model).number
            if found is None:
                missing.append(f"'{name}' (id {motor.id})")
            elif found != expected:
                actual = self.protocol.model_name(found) or f"model number {found}"
                wrong.append(f"'{name}' (id {motor.id}) is a {actual}, expected {motor.model}")
        if missing:
            raise ConnectionError(
                f"No answer on {self.port} at {self.baudrate} baud from motor(s) {', '.join(missing)}. {FIX_HINT}"
            )
        if wrong:
            raise ConnectionError(f"Wrong motor model on {self.port}: {'; '.join(wrong)}. {FIX_HINT}")

    def disconnect(self, disable_torque: bool = True) -> None:
        """Close the port; by default first disable torque, so the arm never stays powered unattended.

        Torque-off is attempted on every motor (see :meth:`disable_torque`, retried twice); if some
        motors did not confirm it the port is still closed and the error naming them is raised: the
        caller must know that those motors may still hold torque.
        """
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self!r} is not connected")
        try:
            if disable_torque:
                self.disable_torque(num_retry=2)
        finally:
            self._close()

    def _close(self) -> None:
        if self._serial is not None:
            with suppress(*_PORT_ERRORS):  # port already gone: nothing left to release
                self._serial.close()
        self._serial = None

    def set_baudrate(self, baudrate: int) -> None:
        if baudrate not in self.protocol.baudrates:
            raise ValueError(f"{baudrate} baud is not supported by {self.protocol.name} motors")
        self._require_connected().baudrate = baudrate
        self.baudrate = baudrate

    def _require_connected(self) -> serial.Serial:
        if self._serial is None or not self._serial.is_open:
            raise DeviceNotConnectedError(f"{self!r} is not connected; call connect() first")
        return self._serial

    # ================================================================== names and ids
    def _label(self, motor_id: int) -> str:
        name = self._id_to_name.get(motor_id)
        return f"motor '{name}' (id {motor_id})" if name else f"motor id {motor_id}"

    def _motor(self, name: str) -> Motor:
        try:
            return self.motors[name]
        except KeyError:
            raise KeyError(f"Unknown motor '{name}'; this bus has {list(self.motors)}") from None

    def _names(self, motors: str | Iterable[str] | None) -> list[str]:
        if motors is None:
            return list(self.motors)
        names = [motors] if isinstance(motors, str) else list(motors)
        for name in names:
            self._motor(name)
        return names

    def _register(self, names: list[str], data_name: str) -> tuple[int, int]:
        """Address and size of a register, which must be the same for all ``names`` (sync access)."""
        found = {self.protocol.register(self.motors[n].model, data_name) for n in names}
        if len(found) != 1:
            raise ValueError(f"'{data_name}' is not at the same address on all of {names}: {found}")
        return found.pop()

    def _resolution(self, name: str) -> int:
        return self.protocol.model(self.motors[name].model).resolution

    # ================================================================== wire I/O
    def _port_error(self, e: Exception) -> MotorPortError:
        return MotorPortError(
            f"Serial port {self.port} failed ({e}); the USB adapter may have been unplugged or powered off. "
            "Reconnect it and connect() again."
        )

    def _send(self, packet: Packet) -> None:
        ser = self._require_connected()
        try:
            ser.reset_input_buffer()  # drop late replies to an earlier, timed-out request
            ser.write(self.protocol.encode_instruction(packet))
        except _PORT_ERRORS as e:
            raise self._port_error(e) from e

    def _receive(self, expected: list[int] | None, timeout_s: float) -> tuple[dict[int, Packet], list[int]]:
        """Collect status packets.

        With ``expected`` ids, stop once all arrived or the deadline passed. With ``None`` (broadcast),
        keep listening until ``timeout_s`` passed without a new packet. Returns the packets by id and the
        ids whose frame had a bad checksum.
        """
        ser = self._require_connected()
        pending = None if expected is None else set(expected)
        got: dict[int, Packet] = {}
        corrupted: list[int] = []
        buf = bytearray()
        deadline = time.monotonic() + timeout_s
        while pending is None or pending:
            try:
                result = self.protocol.split(buf, status=True)
            except ChecksumError as e:
                corrupted.append(e.motor_id)
                if pending is not None:
                    pending.discard(e.motor_id)
                continue
            if isinstance(result, Packet):
                if pending is None:
                    got[result.id] = result
                    deadline = time.monotonic() + timeout_s
                elif result.id in pending:
                    got[result.id] = result
                    pending.discard(result.id)
                continue
            if time.monotonic() >= deadline:
                break
            try:
                buf += ser.read(result)
            except _PORT_ERRORS as e:
                raise self._port_error(e) from e
        return got, corrupted

    def _transact(self, packet: Packet, reply_ids: list[int], what: str) -> dict[int, Packet]:
        """Send ``packet`` and return the status packets of ``reply_ids``; raise a named error otherwise."""
        self._send(packet)
        if not reply_ids:
            return {}
        got, corrupted = self._receive(reply_ids, self.timeout_ms / 1000)
        for motor_id in reply_ids:
            status = got.get(motor_id)
            if status is not None and status.code:
                flags = self.protocol.describe_error(status.code)
                raise MotorStatusError(
                    f"{self._label(motor_id)} reported {', '.join(flags)} while {what} "
                    f"(status error 0x{status.code:02X}) on {self.port}.",
                    status.code,
                    flags,
                )
        if corrupted:
            labels = ", ".join(self._label(i) for i in corrupted)
            raise MotorChecksumError(
                f"Corrupted status packet (bad checksum) from {labels} while {what} on {self.port}; "
                "check the cable and power supply for noise."
            )
        if missing := [i for i in reply_ids if i not in got]:
            labels = ", ".join(self._label(i) for i in missing)
            raise MotorTimeoutError(
                f"No status packet from {labels} within {self.timeout_ms} ms while {what} on {self.port} "
                f"at {self.baudrate} baud. {FIX_HINT}"
            )
        return got

    @staticmethod
    def _retry(fn: Callable[[], T], num_retry: int, what: str) -> T:
        """Run ``fn``, retrying ``num_retry`` times on timeouts, bad checksums and status errors.

        A failed port is not retried: it will not come back by itself.
        """
        for attempt in range(num_retry):
            try:
                return fn()
            except MotorPortError:
                raise
            except MotorBusError as e:
                logger.debug("Retrying %s (%d/%d) after: %s", what, attempt + 1, num_retry, e)
        return fn()

    def _read_raw(self, motor_id: int, addr: int, size: int, what: str) -> bytes:
        packet = Packet(motor_id, READ, self.protocol.read_params(addr, size))
        data = self._transact(packet, [motor_id], what)[motor_id].params
        if len(data) != size:
            raise MotorBusError(
                f"{self._label(motor_id)} sent {len(data)} bytes instead of {size} while {what}"
            )
        return data

    def _encode(self, motor_id: int, data_name: str, value: int, size: int) -> bytes:
        try:
            return self.protocol.to_bytes(data_name, value, size)
        except ValueError as e:
            raise ValueError(f"Cannot write {value} to {data_name} of {self._label(motor_id)}: {e}") from e

    def _write_id(self, motor_id: int, model: str, data_name: str, value: int, num_retry: int = 0) -> None:
        """Write one register by id (also used for motors not yet at their configured id)."""
        addr, size = self.protocol.register(model, data_name)
        data = self._encode(motor_id, data_name, value, size)
        what = f"writing {data_name}={value}"
        packet = Packet(motor_id, WRITE, self.protocol.write_params(addr, data))
        self._retry(lambda: self._transact(packet, [motor_id], what), num_retry, what)

    # ================================================================== register access
    def read(self, data_name: str, motor: str, *, normalize: bool = True, num_retry: int = 0) -> float | int:
        """Read one register of one motor (normalised for position registers when ``normalize``)."""
        self._require_connected()
        m = self._motor(motor)
        addr, size = self.protocol.register(m.model, data_name)
        what = f"reading {data_name}"
        data = self._retry(lambda: self._read_raw(m.id, addr, size, what), num_retry, what)
        value = self.protocol.from_bytes(data_name, data)
        if normalize and data_name in self.normalized_data:
            return self._normalize({motor: value})[motor]
        return value

    def write(
        self, data_name: str, motor: str, value: float | int, *, normalize: bool = True, num_retry: int = 0
    ) -> float | int:
        """Write one register of one motor and wait for its status packet; return the value written.

        The value returned is in the caller's units and differs from ``value`` only where a goal was
        clamped to the calibrated range (see :meth:`_to_raw`).
        """
        self._require_connected()
        m = self._motor(motor)
        raw, written = self._to_raw(data_name, {motor: value}, normalize)
        self._write_id(m.id, m.model, data_name, raw[motor], num_retry)
        return written[motor]

    def sync_read(
        self,
        data_name: str,
        motors: str | list[str] | None = None,
        *,
        normalize: bool = True,
        num_retry: int = 0,
    ) -> dict[str, float | int]:
        """Read one register of several motors with a single Sync Read instruction."""
        self._require_connected()
        names = self._names(motors)
        addr, size = self._register(names, data_name)
        ids = [self.motors[n].id for n in names]
        packet = Packet(BROADCAST_ID, SYNC_READ, self.protocol.sync_read_params(addr, size, ids))
        what = f"sync-reading {data_name}"
        replies = self._retry(lambda: self._transact(packet, ids, what), num_retry, what)
        values: dict[str, float | int] = {}
        for name, motor_id in zip(names, ids):
            data = replies[motor_id].params
            if len(data) != size:
                raise MotorBusError(
                    f"{self._label(motor_id)} sent {len(data)} bytes instead of {size} while {what}"
                )
            values[name] = self.protocol.from_bytes(data_name, data)
        if normalize and data_name in self.normalized_data:
            return self._normalize(values)
        return values

    def sync_write(
        self, data_name: str, values: dict[str, float | int] | float, *, normalize: bool = True
    ) -> dict[str, float | int]:
        """Write one register of several motors with a single Sync Write (no status packets come back).

        Returns the values written, in the caller's units: a robot reports these (a gripper asked for
        500 and clamped to its range reports 100), not what it was asked. Nothing is sent when any
        value is refused (see :meth:`_to_raw`).
        """
        self._require_connected()
        if not isinstance(values, dict):
            values = dict.fromkeys(self.motors, values)
        names = self._names(values)
        addr, size = self._register(names, data_name)
        raw, written = self._to_raw(data_name, {n: values[n] for n in names}, normalize)
        data = {self.motors[n].id: self._encode(self.motors[n].id, data_name, raw[n], size) for n in names}
        self._send(Packet(BROADCAST_ID, SYNC_WRITE, self.protocol.sync_write_params(addr, size, data)))
        return written

    def _to_raw(
        self, data_name: str, values: dict[str, float | int], normalize: bool
    ) -> tuple[dict[str, int], dict[str, float | int]]:
        """Raw register values for ``values``, and the values they stand for in the caller's units.

        The driver is the last line of defence, whatever wraps it (a safety layer, a network host, a
        script), so two rules hold here for every robot: a NaN or infinity is refused with nothing
        sent (clamped, it would become a full-range motion), and a goal position is clamped to the
        motor's calibrated range (normalised goals always, raw ones when the motor is calibrated).
        """
        bad = {name: value for name, value in values.items() if not _is_finite(value)}
        if bad:
            raise ValueError(
                f"Refusing to write {data_name} on {self.port}: {bad} is not a finite number, so nothing "
                "was sent. Fix what produced it (a policy output, or a normalisation dividing by zero)."
            )
        if normalize and data_name in self.normalized_data:
            written = self._clamp_to_range(values)
            return self._unnormalize(written), written
        raw = {name: int(value) for name, value in values.items()}
        if data_name == self.goal_data:
            raw = {
                name: self._clamp_raw(self.calibration[name], value) if name in self.calibration else value
                for name, value in raw.items()
            }
        return raw, dict(raw)

    # ================================================================== discovery and setup
    def ping(self, motor: str | int, num_retry: int = 0, raise_on_error: bool = False) -> int | None:
        """Model number of a motor (by name or id), or ``None`` if it does not answer."""
        self._require_connected()
        motor_id = self._motor(motor).id if isinstance(motor, str) else motor

        def attempt() -> int:
            status = self._transact(Packet(motor_id, PING), [motor_id], "pinging")[motor_id]
            return self._model_number(motor_id, status)

        try:
            return self._retry(attempt, num_retry, "ping")
        except MotorPortError:
            raise
        except MotorBusError:
            if raise_on_error:
                raise
            return None

    def broadcast_ping(self, num_retry: int = 0, window_ms: int = 50) -> dict[int, int]:
        """``{id: model_number}`` of every motor answering at the current baud rate.

        Listens until ``window_ms`` pass without a new answer; ``num_retry`` pings again when nobody
        answered (a single lost packet should not make a motor look absent during setup).
        """
        self._require_connected()
        found: dict[int, Packet] = {}
        for _ in range(num_retry + 1):
            self._send(Packet(BROADCAST_ID, PING))
            found, _ = self._receive(None, window_ms / 1000)
            if found:
                break
        return {i: self._model_number(i, status) for i, status in sorted(found.items())}

    @classmethod
    def scan_port(cls, port: str, window_ms: int = 50) -> dict[int, list[int]]:
        """``{baudrate: [ids]}`` of the motors answering on ``port`` at each supported baud rate."""
        bus = cls(port, {})
        bus.connect(handshake=False)
        found: dict[int, list[int]] = {}
        try:
            for baudrate in cls.protocol.baudrates:
                bus.set_baudrate(baudrate)
                if ids := bus.broadcast_ping(window_ms=window_ms):
                    found[baudrate] = sorted(ids)
        finally:
            bus.disconnect(disable_torque=False)
        return found

    def _find_single_motor(self, motor_name: str, baudrates: list[int]) -> tuple[int, int]:
        """Baud rate and id of the only motor connected, checking it is the expected model."""
        expected = self._motor(motor_name).model
        for baudrate in baudrates:
            self.set_baudrate(baudrate)
            found = self.broadcast_ping(num_retry=1)
            if len(found) > 1:
                raise RuntimeError(
                    f"Found {len(found)} motors (ids {sorted(found)}) at {baudrate} baud on {self.port}; "
                    f"connect only the '{motor_name}' motor while setting it up."
                )
            if found:
                motor_id, number = next(iter(found.items()))
                if number != self.protocol.model(expected).number:
                    model = self.protocol.model_name(number) or f"model number {number}"
                    raise RuntimeError(
                        f"The connected motor is a {model}, but '{motor_name}' is a {expected}."
                    )
                return baudrate, motor_id
        raise ConnectionError(f"No motor found on {self.port} at any of {baudrates} baud. {FIX_HINT}")

    def setup_motor(
        self, motor_name: str, initial_baudrate: int | None = None, initial_id: int | None = None
    ) -> None:
        """Give the single connected motor the configured id of ``motor_name`` and the default baud rate.

        Without ``initial_baudrate``/``initial_id`` the motor is found by scanning every baud rate, so a
        factory-new motor (id 1, vendor default baud) and a previously configured one both work.
        """
        self._require_connected()
        motor = self._motor(motor_name)
        if initial_baudrate is None or initial_id is None:
            bauds = [initial_baudrate] if initial_baudrate else list(self.protocol.baudrates)
            initial_baudrate, initial_id = self._find_single_motor(motor_name, bauds)
        self.set_baudrate(initial_baudrate)
        for data_name, value in self._torque_writes(False):  # EEPROM writes need torque off / unlocked
            self._write_id(initial_id, motor.model, data_name, value, num_retry=2)
        if initial_id != motor.id:
            self._write_id(initial_id, motor.model, "ID", motor.id, num_retry=2)
        target_baud = self.protocol.default_baudrate
        if initial_baudrate != target_baud:
            self._write_id(
                motor.id, motor.model, "Baud_Rate", self.protocol.baudrates[target_baud], num_retry=2
            )
        self.set_baudrate(target_baud)
        if self.ping(motor.id, num_retry=2) is None:
            raise ConnectionError(
                f"'{motor_name}' does not answer at id {motor.id}, {target_baud} baud after setup"
            )

    # ================================================================== torque
    def enable_torque(self, motors: str | list[str] | None = None, num_retry: int = 0) -> None:
        """Enable torque on ``motors`` (default: all), stopping at the first motor that fails."""
        for name in self._names(motors):
            m = self.motors[name]
            for data_name, value in self._torque_writes(True):
                self._write_id(m.id, m.model, data_name, value, num_retry)

    def disable_torque(self, motors: str | list[str] | None = None, num_retry: int = 0) -> None:
        """Disable torque on ``motors`` (default: all), trying every one even when another fails.

        For the whole bus, one broadcast write first reaches every motor that hears it, in a single
        packet and whatever the state of the others. Then each motor is written individually and must
        confirm with its status packet (``num_retry`` retries each); a motor that fails does not stop
        the others. Those that never confirmed are reported together in one :class:`TorqueOffError`
        once all were tried. A failed port raises :class:`MotorPortError` at once: it reaches no motor.
        """
        names = self._names(motors)
        writes = self._torque_writes(False)
        if set(names) == set(self.motors):
            for data_name, value in writes:
                self._broadcast_write(data_name, value)
        failures: dict[str, MotorBusError] = {}
        for name in names:
            m = self.motors[name]
            try:
                for data_name, value in writes:
                    self._write_id(m.id, m.model, data_name, value, num_retry)
            except MotorPortError:
                raise
            except MotorBusError as e:
                failures[name] = e
        if failures:
            labels = ", ".join(self._label(self.motors[name].id) for name in failures)
            raise TorqueOffError(
                f"Torque-off was not confirmed by {labels} ({len(failures)} of {len(names)} motors on "
                f"{self.port}, each tried {num_retry + 1} times): they may still hold torque, cut their power "
                "before going near the arm. Why:\n" + "\n".join(f"- {e}" for e in failures.values()),
                failures,
            )

    def _broadcast_write(self, data_name: str, value: int) -> None:
        """Write one register of every motor on the wire with a single packet (motors do not answer).

        Skipped when the motors' models put the register at different addresses: the broadcast would
        write another register on some of them.
        """
        locations = {self.protocol.register(m.model, data_name) for m in self.motors.values()}
        if len(locations) != 1:
            return
        addr, size = locations.pop()
        data = self.protocol.to_bytes(data_name, value, size)
        self._send(Packet(BROADCAST_ID, WRITE, self.protocol.write_params(addr, data)))

    @contextmanager
    def torque_disabled(self, motors: str | list[str] | None = None) -> Iterator[None]:
        """Disable torque for the block and re-enable it after.

        Torque is re-enabled only when the block succeeds: after an error (or Ctrl-C) the arm is left
        limp, which is the safe state when we do not know what went wrong.
        """
        self.disable_torque(motors)
        yield
        self.enable_torque(motors)

    # ================================================================== normalisation
    def _calibration_of(self, name: str) -> MotorCalibration:
        cal = self.calibration.get(name)
        if cal is None:
            raise RuntimeError(
                f"Motor '{name}' has no calibration, so its position cannot be normalised; calibrate the "
                "robot first or pass normalize=False."
            )
        if cal.range_min == cal.range_max:
            raise ValueError(
                f"Invalid calibration for motor '{name}': range_min == range_max ({cal.range_min})"
            )
        return cal

    def _inverted(self, cal: MotorCalibration) -> bool:
        return bool(cal.drive_mode) and self.apply_drive_mode

    def _normalize(self, raw: dict[str, int]) -> dict[str, float]:
        """Raw steps -> normalised values (spec §3.5; RANGE modes clamp to the calibrated range)."""
        out: dict[str, float] = {}
        for name, value in raw.items():
            cal = self._calibration_of(name)
            lo, hi = cal.range_min, cal.range_max
            mode = self.motors[name].norm_mode
            if mode is MotorNormMode.DEGREES:
                out[name] = (value - (lo + hi) / 2) * 360 / (self._resolution(name) - 1)
                continue
            fraction = (min(hi, max(lo, value)) - lo) / (hi - lo)
            if mode is MotorNormMode.RANGE_M100_100:
                norm = fraction * 200 - 100
                out[name] = -norm if self._inverted(cal) else norm
            else:
                norm = fraction * 100
                out[name] = 100 - norm if self._inverted(cal) else norm
        return out

    def _normalized_range(self, name: str) -> tuple[float, float]:
        """The calibrated range of a motor in its normalised units (``DEGREES``: centred on 0)."""
        cal = self._calibration_of(name)
        mode = self.motors[name].norm_mode
        if mode is MotorNormMode.DEGREES:
            half = abs(cal.range_max - cal.range_min) / 2 * 360 / (self._resolution(name) - 1)
            return -half, half
        return (-100.0, 100.0) if mode is MotorNormMode.RANGE_M100_100 else (0.0, 100.0)

    def _clamp_to_range(self, values: dict[str, float]) -> dict[str, float]:
        """Normalised values clamped to each motor's calibrated range."""
        out: dict[str, float] = {}
        for name, value in values.items():
            lo, hi = self._normalized_range(name)
            out[name] = min(hi, max(lo, float(value)))
        return out

    @staticmethod
    def _clamp_raw(cal: MotorCalibration, raw: int) -> int:
        return min(max(cal.range_min, cal.range_max), max(min(cal.range_min, cal.range_max), raw))

    def _unnormalize(self, values: dict[str, float]) -> dict[str, int]:
        """Normalised values -> raw steps within the calibrated range (inverse of :meth:`_normalize`).

        ``int()`` truncates; the result is clamped in raw steps too, so rounding never lands one step
        past a limit.
        """
        out: dict[str, int] = {}
        for name, value in self._clamp_to_range(values).items():
            cal = self._calibration_of(name)
            lo, hi = cal.range_min, cal.range_max
            mode = self.motors[name].norm_mode
            if mode is MotorNormMode.DEGREES:
                raw = int(value * (self._resolution(name) - 1) / 360 + (lo + hi) / 2)
            elif mode is MotorNormMode.RANGE_M100_100:
                value = -value if self._inverted(cal) else value
                raw = int(((value + 100) / 200) * (hi - lo) + lo)
            else:
                value = 100 - value if self._inverted(cal) else value
                raw = int((value / 100) * (hi - lo) + lo)
            out[name] = self._clamp_raw(cal, raw)
        return out

    # ================================================================== calibration
    def _has_register(self, name: str, data_name: str) -> bool:
        return data_name in self.protocol.model(self.motors[name].model).table

    def read_calibration(self) -> dict[str, MotorCalibration]:
        """The calibration stored in the motors (drive mode from the cache where motors do not store it)."""
        names = list(self.motors)
        offsets = self.sync_read("Homing_Offset", names, normalize=False)
        mins = self.sync_read("Min_Position_Limit", names, normalize=False)
        maxs = self.sync_read("Max_Position_Limit", names, normalize=False)
        out = {}
        for name in names:
            if self._has_register(name, "Drive_Mode"):
                drive_mode = int(self.read("Drive_Mode", name, normalize=False)) & 1
            else:
                drive_mode = self.calibration[name].drive_mode if name in self.calibration else 0
            out[name] = MotorCalibration(
                id=self.motors[name].id,
                drive_mode=drive_mode,
                homing_offset=int(offsets[name]),
                range_min=int(mins[name]),
                range_max=int(maxs[name]),
            )
        return out

    def write_calibration(self, calibration: dict[str, MotorCalibration], cache: bool = True) -> None:
        """Write homing offsets and position limits (and drive mode where stored) to the motors' EEPROM.

        Torque is disabled first because EEPROM writes need it (Dynamixel refuses them with torque on,
        Feetech only persists them while unlocked); it stays disabled.
        """
        names = self._names(calibration)
        self.disable_torque(names)
        for name in names:
            cal = calibration[name]
            if self._has_register(name, "Drive_Mode"):
                mode = int(self.read("Drive_Mode", name, normalize=False))
                self.write("Drive_Mode", name, (mode & ~1) | (cal.drive_mode & 1), normalize=False)
            self.write("Homing_Offset", name, cal.homing_offset, normalize=False)
            self.write("Min_Position_Limit", name, cal.range_min, normalize=False)
            self.write("Max_Position_Limit", name, cal.range_max, normalize=False)
        if cache:
            self.calibration = dict(calibration)

    def reset_calibration(self, motors: str | list[str] | None = None) -> None:
        """Zero the homing offsets and open the position limits to the full turn (torque is disabled)."""
        names = self._names(motors)
        self.disable_torque(names)
        for name in names:
            self.write("Homing_Offset", name, 0, normalize=False)
            self.write("Min_Position_Limit", name, 0, normalize=False)
            self.write("Max_Position_Limit", name, self._resolution(name) - 1, normalize=False)
            self.calibration.pop(name, None)

    @property
    def is_calibrated(self) -> bool:
        """True if every motor has a cached calibration equal to the one stored in the motors."""
        if set(self.calibration) != set(self.motors):
            return False
        return self.read_calibration() == {name: self.calibration[name] for name in self.motors}

    def set_half_turn_homings(self, motors: str | list[str] | None = None) -> dict[str, int]:
        """Set homing offsets so the current pose reads as the middle of the range; return them.

        The offsets are reset to 0 first and checked, so the new offset is computed from the *actual*
        position: computing it from a position that still includes an old offset accumulates offsets
        over repeated calibrations until the register overflows (the reference library's
        "Magnitude 2114 exceeds 2047").
        """
        names = self._names(motors)
        self.reset_calibration(names)
        stale = {n: v for n, v in self.sync_read("Homing_Offset", names, normalize=False).items() if v != 0}
        if stale:
            raise RuntimeError(f"Homing_Offset did not reset to 0 on {stale}; is the EEPROM write-protected?")
        positions = self.sync_read("Present_Position", names, normalize=False)
        offsets = {n: self._half_turn_offset(int(positions[n]), self._resolution(n)) for n in names}
        for name, offset in offsets.items():
            self.write("Homing_Offset", name, offset, normalize=False)
        return offsets

    def record_ranges_of_motion(
        self,
        motors: str | list[str] | None = None,
        stop: Callable[[], bool] | None = None,
        *,
        interval_s: float = 0.02,
        on_update: Callable[[dict[str, int], dict[str, int], dict[str, int]], None] | None = None,
    ) -> tuple[dict[str, int], dict[str, int]]:
        """Track min/max raw positions while the user moves each joint through its range.

        ``stop`` is polled after each sample (default: the user pressed Enter), ``on_update(positions,
        mins, maxs)`` lets a UI show progress. Raises ``ValueError`` for a motor that never moved, since
        a zero-width range cannot be normalised.
        """
        names = self._names(motors)
        stop = stop or _wait_for_enter()
        positions = {n: int(v) for n, v in self.sync_read("Present_Position", names, normalize=False).items()}
        mins, maxs = dict(positions), dict(positions)
        while True:
            positions = {
                n: int(v) for n, v in self.sync_read("Present_Position", names, normalize=False).items()
            }
            for name, pos in positions.items():
                mins[name] = min(mins[name], pos)
                maxs[name] = max(maxs[name], pos)
            if on_update is not None:
                on_update(positions, mins, maxs)
            if stop():
                break
            time.sleep(interval_s)
        if still := [n for n in names if mins[n] == maxs[n]]:
            raise ValueError(
                f"Motors {still} did not move; move every joint through its full range of motion."
            )
        return mins, maxs
