"""Servo-chain emulator behind a pseudo-terminal, so the real bus classes can be tested without hardware.

The emulator owns the master side of ``os.openpty()`` and serves the slave path (``/dev/pts/N``) that a
``FeetechMotorsBus`` / ``DynamixelMotorsBus`` opens like any serial port: every packet the tests send is
the packet a real servo would receive, decoded by the same :class:`~lerobot.motors.protocol.Protocol`
the bus uses (and pinned independently by the byte-exact tests).

Each :class:`EmulatedMotor` has a register memory initialised from its model's factory defaults, an
EEPROM image that survives :meth:`EmulatedBus.power_cycle`, and simple dynamics: with torque on,
the actual position moves toward the goal at ``speed`` steps/s (positions are advanced lazily when a
packet arrives, so an idle emulator costs nothing). ``Present = Actual + homing_sign * Homing_Offset``
(Feetech ``-``, Dynamixel ``+``), goals are clipped to the position limits. A motor only answers when
the port's baud rate (read from the pty's termios) matches its ``Baud_Rate`` register.

Fault injection: :meth:`EmulatedBus.inject_fault` (no reply, corrupted checksum, overload error),
:meth:`EmulatedBus.remove_motor` (a missing id) and :meth:`EmulatedBus.close_port` (the adapter
disappears). :meth:`EmulatedBus.move_by_hand` sets the actual position of a limp motor, for
calibration tests.

``lerobot-emulate-arm --robot.type=so100_follower`` (:mod:`lerobot.scripts.emulate_arm`) runs an emulated
arm until Ctrl-C.
"""

from __future__ import annotations

import array
import fcntl
import os
import select
import struct
import threading
import time
import tty
from contextlib import suppress
from enum import Enum

from lerobot.motors.dynamixel import ACCESS_ERROR, DYNAMIXEL
from lerobot.motors.feetech import FEETECH
from lerobot.motors.protocol import (
    BROADCAST_ID,
    PING,
    READ,
    SYNC_READ,
    SYNC_WRITE,
    WRITE,
    ChecksumError,
    Packet,
    Protocol,
)

_TCGETS2 = 0x802C542A  # Linux ioctl: termios2, whose c_ospeed holds any baud rate set by pyserial

DEFAULT_SPEED = 3000.0  # steps/s, about 260 deg/s: an STS3215 or XL330 at nominal voltage


class Fault(str, Enum):
    NO_REPLY = "no_reply"  # the motor receives but never answers (request times out)
    BAD_CHECKSUM = "bad_checksum"  # the answer's checksum/CRC is corrupted
    OVERLOAD = "overload"  # the answer carries the overload error in its status byte


class EmulatedMotor:
    """Register memory and dynamics of one servo."""

    def __init__(
        self,
        protocol: Protocol,
        model: str,
        motor_id: int,
        baud_value: int | None,
        position: int,
        speed: float,
    ):
        self.protocol = protocol
        self.model = model
        self.spec = protocol.model(model)
        self.table = self.spec.table
        self.speed = speed
        self.memory = self.factory_memory()
        self.set("ID", motor_id)
        if baud_value is not None:
            self.set("Baud_Rate", baud_value)
        self.flash = bytes(self.memory[: protocol.eeprom_end])  # what survives a power cycle
        self.actual = float(position)
        self.target = self.actual
        self.last_update = time.monotonic()
        self.faults: dict[Fault, int | None] = {}
        self.refresh()

    def factory_memory(self) -> bytearray:
        memory = bytearray(max(addr + n for addr, n in self.table.values()))
        for name, value in self.spec.defaults.items():
            addr, size = self.table[name]
            memory[addr : addr + size] = self.protocol.to_bytes(name, value, size)
        return memory

    @property
    def id(self) -> int:
        return self.get("ID")

    def get(self, name: str) -> int:
        addr, size = self.table[name]
        return self.protocol.from_bytes(name, bytes(self.memory[addr : addr + size]))

    def set(self, name: str, value: int) -> None:
        addr, size = self.table[name]
        self.memory[addr : addr + size] = self.protocol.to_bytes(name, value, size)

    def present(self) -> int:
        return round(self.actual) + self.protocol.homing_sign * self.get("Homing_Offset")

    def advance(self, now: float) -> None:
        """Move toward the target for the time elapsed since the last update."""
        if self.get("Torque_Enable") and self.actual != self.target:
            step = self.speed * (now - self.last_update)
            delta = self.target - self.actual
            self.actual = self.target if abs(delta) <= step else self.actual + step * (1 if delta > 0 else -1)
        self.last_update = now
        self.refresh()

    def refresh(self) -> None:
        """Recompute the read-only registers derived from the actual position."""
        self.set("Present_Position", self.present())
        self.set("Moving", int(bool(self.get("Torque_Enable")) and self.actual != self.target))

    def retarget(self) -> None:
        """Goal (in the present frame, clipped to the limits) -> target actual position."""
        goal = self.get("Goal_Position")
        lo, hi = self.get("Min_Position_Limit"), self.get("Max_Position_Limit")
        if lo < hi:
            goal = min(hi, max(lo, goal))
        actual = goal - self.protocol.homing_sign * self.get("Homing_Offset")
        self.target = float(min(self.spec.resolution - 1, max(0, actual)))

    def take_fault(self) -> Fault | None:
        """The fault to apply to the next answer (consuming one occurrence of a transient one)."""
        for fault, left in list(self.faults.items()):
            if left is not None:
                if left <= 1:
                    del self.faults[fault]
                else:
                    self.faults[fault] = left - 1
            return fault
        return None


class EmulatedBus:
    """A chain of emulated servos on one pseudo-terminal, served by a background thread.

    Use as a context manager (or call :meth:`close`). The protocol-specific EEPROM rules are the two
    hooks :meth:`_eeprom_error` and :meth:`_eeprom_persists`; everything else is shared.
    """

    def __init__(self, protocol: Protocol, speed: float = DEFAULT_SPEED):
        self.protocol = protocol
        self.speed = speed
        self.motors: dict[int, EmulatedMotor] = {}
        self.lock = threading.RLock()
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo / line editing, like a real serial adapter
        os.set_blocking(self._master, False)  # never block the thread on a client that stopped reading
        self.port = os.ttyname(self._slave)
        self._wake_r, self._wake_w = os.pipe()
        self._closing = False
        self._thread = threading.Thread(target=self._serve, name=f"emulated-bus {self.port}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port!r}, ids={sorted(self.motors)})"

    def __enter__(self) -> EmulatedBus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ chain setup
    def add_motor(
        self, model: str, motor_id: int = 1, baudrate: int | None = None, position: int | None = None
    ) -> EmulatedMotor:
        """Add a motor; ``baudrate=None`` keeps the model's factory baud rate."""
        baud_value = None if baudrate is None else self.protocol.baudrates[baudrate]
        resolution = self.protocol.model(model).resolution
        position = resolution // 2 if position is None else position
        motor = EmulatedMotor(self.protocol, model, motor_id, baud_value, position, self.speed)
        with self.lock:
            self.motors[motor_id] = motor
        return motor

    def remove_motor(self, motor_id: int) -> EmulatedMotor:
        """Unplug a motor (it stops answering); re-insert it with :meth:`plug`."""
        with self.lock:
            return self.motors.pop(motor_id)

    def plug(self, motor: EmulatedMotor) -> None:
        with self.lock:
            self.motors[motor.id] = motor

    def motor(self, motor_id: int) -> EmulatedMotor:
        with self.lock:
            self.motors[motor_id].advance(time.monotonic())
            return self.motors[motor_id]

    def move_by_hand(self, motor_id: int, actual: int) -> None:
        """Set the actual position as a hand would; refused while torque holds the motor."""
        with self.lock:
            motor = self.motor(motor_id)
            if motor.get("Torque_Enable"):
                raise RuntimeError(f"Motor {motor_id} has torque enabled; it cannot be moved by hand")
            motor.actual = motor.target = float(actual)
            motor.refresh()

    def actual_position(self, motor_id: int) -> float:
        return self.motor(motor_id).actual

    def inject_fault(self, motor_id: int, fault: Fault, times: int | None = None) -> None:
        """Apply ``fault`` to the next ``times`` answers of a motor (``None``: until cleared)."""
        with self.lock:
            self.motors[motor_id].faults[fault] = times

    def clear_faults(self) -> None:
        with self.lock:
            for motor in self.motors.values():
                motor.faults.clear()

    def power_cycle(self) -> None:
        """Reboot every motor: EEPROM from what was persisted, RAM from factory defaults."""
        with self.lock:
            for motor in self.motors.values():
                motor.memory = bytearray(motor.flash) + motor.factory_memory()[self.protocol.eeprom_end :]
                motor.target = motor.actual
                motor.refresh()
            self._rekey()

    def close_port(self) -> None:
        """Make the port disappear (closes the pty master) while the bus may still be using it."""
        self._stop()
        self._thread.join()

    def close(self) -> None:
        if self._thread.is_alive():
            self.close_port()

    # ------------------------------------------------------------------ serving
    def _stop(self) -> None:
        self._closing = True
        os.write(self._wake_w, b"x")

    def _port_baudrate(self) -> int | None:
        """Baud rate the client set on the pty (``None`` where termios2 is unavailable: answer at any)."""
        buf = array.array("i", [0] * 16)
        try:
            fcntl.ioctl(self._slave, _TCGETS2, buf)
        except OSError:
            return None
        return struct.unpack_from("<I", buf.tobytes(), 40)[0]

    def _serve(self) -> None:
        buf = bytearray()
        try:
            while not self._closing:
                select.select([self._master, self._wake_r], [], [])
                if self._closing:
                    break
                try:
                    buf += os.read(self._master, 4096)
                except OSError:
                    continue  # no client has the slave open: nothing to read
                while True:
                    try:
                        result = self.protocol.split(buf, status=False)
                    except ChecksumError:
                        continue  # a servo silently drops a corrupted instruction
                    if isinstance(result, int):
                        break
                    with self.lock:
                        reply = self._handle(result)
                    if reply:
                        with suppress(BlockingIOError):  # nobody reading: the answer is lost, as on a wire
                            os.write(self._master, reply)
        finally:
            for fd in (self._master, self._slave, self._wake_r, self._wake_w):
                os.close(fd)

    def _listening(self, packet_id: int) -> list[EmulatedMotor]:
        """Motors addressed by ``packet_id`` that can hear the current baud rate, advanced to now."""
        baud = self._port_baudrate()
        wanted = self.protocol.baudrates.get(baud) if baud is not None else None
        now = time.monotonic()
        out = []
        for motor_id in sorted(self.motors):
            motor = self.motors[motor_id]
            if packet_id in (motor_id, BROADCAST_ID) and (baud is None or motor.get("Baud_Rate") == wanted):
                motor.advance(now)
                out.append(motor)
        return out

    def _handle(self, packet: Packet) -> bytes:
        answers: list[tuple[EmulatedMotor, int, int, bytes]] = []  # motor, reply id, error, params
        if packet.code in (SYNC_READ, SYNC_WRITE):
            addr, size, rest = self.protocol.parse_addr_len(packet.params)
            targets = {m.id: m for m in self._listening(BROADCAST_ID)}
            if packet.code == SYNC_READ:
                answers = [
                    (targets[i], i, 0, bytes(targets[i].memory[addr : addr + size]))
                    for i in rest
                    if i in targets
                ]
            else:
                for k in range(0, len(rest) - size, size + 1):
                    if (motor := targets.get(rest[k])) is not None:
                        self._write(motor, addr, rest[k + 1 : k + 1 + size])
        else:
            for motor in self._listening(packet.id):
                motor_id = motor.id  # answers carry the id the motor had when addressed
                if packet.code == PING:
                    params = self.protocol.ping_params(
                        motor.spec.number, motor.get(self.protocol.firmware_register)
                    )
                    answers.append((motor, motor_id, 0, params))
                elif packet.code == READ:
                    addr, size, _ = self.protocol.parse_addr_len(packet.params)
                    answers.append((motor, motor_id, 0, bytes(motor.memory[addr : addr + size])))
                elif packet.code == WRITE:
                    addr = int.from_bytes(packet.params[: self.protocol.addr_width], "little")
                    error = self._write(motor, addr, packet.params[self.protocol.addr_width :])
                    answers.append((motor, motor_id, error, b""))
            if packet.id == BROADCAST_ID and packet.code != PING:
                answers = []  # only a broadcast ping is answered
        return b"".join(self._answer(*a) for a in answers)

    def _answer(self, motor: EmulatedMotor, motor_id: int, error: int, params: bytes) -> bytes:
        fault = motor.take_fault()
        if fault is Fault.NO_REPLY:
            return b""
        if fault is Fault.OVERLOAD:
            error |= self.protocol.overload_error
        frame = self.protocol.encode_status(Packet(motor_id, error, params))
        if fault is Fault.BAD_CHECKSUM:
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
        return frame

    def _write(self, motor: EmulatedMotor, addr: int, data: bytes) -> int:
        """Apply a write; returns the status error byte (0, or the protocol's refusal)."""
        if addr < self.protocol.eeprom_end and (error := self._eeprom_error(motor)):
            return error
        torque_was = motor.get("Torque_Enable")
        motor.memory[addr : addr + len(data)] = data
        if addr < self.protocol.eeprom_end and self._eeprom_persists(motor):
            end = min(addr + len(data), self.protocol.eeprom_end)
            motor.flash = motor.flash[:addr] + bytes(motor.memory[addr:end]) + motor.flash[end:]
        if motor.get("Torque_Enable") and not torque_was:
            motor.set("Goal_Position", motor.present())  # a servo holds its pose when torque comes on
        motor.retarget()
        motor.refresh()
        self._rekey()  # in case the ID register was rewritten
        return 0

    def _rekey(self) -> None:
        self.motors = {m.id: m for m in self.motors.values()}

    def _eeprom_error(self, motor: EmulatedMotor) -> int:
        """Status error refusing an EEPROM write (0 to accept it)."""
        return 0

    def _eeprom_persists(self, motor: EmulatedMotor) -> bool:
        """Whether an accepted EEPROM write survives a power cycle."""
        return True


class FeetechEmulator(EmulatedBus):
    """Feetech: EEPROM writes always apply, but are only saved while ``Lock`` is 0."""

    def __init__(self, speed: float = DEFAULT_SPEED):
        super().__init__(FEETECH, speed)

    def _eeprom_persists(self, motor: EmulatedMotor) -> bool:
        return motor.get("Lock") == 0


class DynamixelEmulator(EmulatedBus):
    """Dynamixel: EEPROM writes with torque on are refused with an access error."""

    def __init__(self, speed: float = DEFAULT_SPEED):
        super().__init__(DYNAMIXEL, speed)

    def _eeprom_error(self, motor: EmulatedMotor) -> int:
        return ACCESS_ERROR if motor.get("Torque_Enable") else 0

    def _answer(self, motor: EmulatedMotor, motor_id: int, error: int, params: bytes) -> bytes:
        if Fault.OVERLOAD in motor.faults:  # the alert bit points at Hardware_Error_Status
            motor.set("Hardware_Error_Status", motor.get("Hardware_Error_Status") | 0x20)
        return super()._answer(motor, motor_id, error, params)


# Rest pose of the emulated arms (raw steps), so each joint reads a distinct, plausible value.
_REST_POSE = [2048, 1100, 3000, 2200, 2048, 1900]

ARMS: dict[str, tuple[type[EmulatedBus], list[str]]] = {
    "so100_follower": (FeetechEmulator, ["sts3215"] * 6),
    "so101_follower": (FeetechEmulator, ["sts3215"] * 6),
    "so100_leader": (FeetechEmulator, ["sts3215"] * 6),
    "so101_leader": (FeetechEmulator, ["sts3215"] * 6),
    "koch_follower": (DynamixelEmulator, ["xl430-w250"] * 2 + ["xl330-m288"] * 4),
    "koch_leader": (DynamixelEmulator, ["xl330-m077"] * 6),
}


def start_emulated_arm(robot_type: str, speed: float = DEFAULT_SPEED) -> EmulatedBus:
    """An emulated, already set-up arm (ids 1-6 at 1 Mbps) of a registered robot type."""
    try:
        cls, models = ARMS[robot_type]
    except KeyError:
        raise ValueError(f"No emulated arm for robot type '{robot_type}'; known: {sorted(ARMS)}") from None
    emulator = cls(speed)
    for motor_id, (model, pose) in enumerate(zip(models, _REST_POSE), start=1):
        emulator.add_motor(model, motor_id, emulator.protocol.default_baudrate, pose)
    return emulator
