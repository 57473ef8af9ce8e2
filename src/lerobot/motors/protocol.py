"""Wire-level facts shared by the motor buses and their emulators: packets, framing, value encodings.

A :class:`Protocol` knows everything about one servo family that is *not* bus logic: how a packet is
framed and checksummed, how wide addresses are, how signed values are encoded, what the status error
bits mean, and the control tables of its models. The real bus (``FeetechMotorsBus``,
``DynamixelMotorsBus``) and the emulator both use the same object, so a model added here is usable by
both, and the byte-exact tests in ``tests/motors`` pin the encoding for both sides at once.

Feetech (protocol 0) and Dynamixel (protocol 2.0) use the same instruction numbers and the same
parameter layouts for the instructions we need (``addr, len, ids...`` / ``addr, len, (id, data)...``);
they differ only in field widths, framing and checksum, which is what the subclasses provide.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

PING = 0x01
READ = 0x02
WRITE = 0x03
SYNC_READ = 0x82
SYNC_WRITE = 0x83
BROADCAST_ID = 0xFE


class MotorBusError(Exception):
    """Base of the errors raised while talking to a motor; names the motor and the register."""


class MotorTimeoutError(MotorBusError, ConnectionError, TimeoutError):
    """No (complete) status packet arrived in time: motor off, wrong id/baud, or cable problem."""


class MotorChecksumError(MotorBusError, ConnectionError):
    """A packet arrived but its checksum/CRC is wrong: electrical noise or a collision on the bus."""


class MotorStatusError(MotorBusError):
    """The motor answered but flagged an error in its status packet (overload, voltage, angle...)."""

    def __init__(self, message: str, error: int, flags: list[str]):
        super().__init__(message)
        self.error = error
        self.flags = flags


class MotorPortError(MotorBusError, ConnectionError):
    """The serial port itself failed (unplugged adapter, port closed underneath us)."""


class TorqueOffError(MotorBusError):
    """Torque-off was attempted on every motor, but some did not confirm it.

    ``failures`` maps each such motor's name to the error of its last attempt; the other motors did
    confirm. The motors named may still hold torque: the message says to cut their power.
    """

    def __init__(self, message: str, failures: dict[str, MotorBusError]):
        super().__init__(message)
        self.failures = failures


class ChecksumError(ValueError):
    """Raised by :meth:`Protocol.split` for a frame whose checksum does not match (frame is consumed).

    ``motor_id`` is the id the frame claims to come from, so the bus can name the motor.
    """

    def __init__(self, motor_id: int):
        super().__init__(f"bad checksum in a frame from id {motor_id}")
        self.motor_id = motor_id


@dataclass(frozen=True)
class Packet:
    """One decoded frame. ``code`` is the instruction (instruction packets) or error byte (status)."""

    id: int
    code: int
    params: bytes = b""


@dataclass(frozen=True)
class ModelSpec:
    """One servo model: its model number, resolution, control table and factory register values."""

    number: int
    resolution: int
    table: dict[str, tuple[int, int]]
    defaults: dict[str, int] = field(default_factory=dict)


class Protocol(ABC):
    """Framing, checksum and value encoding of one servo protocol, plus its models' control tables."""

    name: str
    header: bytes
    prefix_len: int  # bytes up to and including the length field
    addr_width: int  # width of address and length parameters (1 for Feetech, 2 for Dynamixel)
    models: dict[str, ModelSpec]
    baudrates: dict[int, int]  # bits/s -> value of the Baud_Rate register
    default_baudrate: int
    eeprom_end: int  # registers below this address live in EEPROM
    firmware_register: str
    homing_sign: int  # Present_Position = Actual + homing_sign * Homing_Offset
    error_bits: dict[int, str]
    overload_error: int  # status error byte a motor sends when overloaded

    # ------------------------------------------------------------------ framing
    @abstractmethod
    def encode_instruction(self, packet: Packet) -> bytes:
        """Frame an instruction packet (``packet.code`` is the instruction)."""

    @abstractmethod
    def encode_status(self, packet: Packet) -> bytes:
        """Frame a status packet (``packet.code`` is the error byte)."""

    @abstractmethod
    def _frame_length(self, prefix: bytes) -> int | None:
        """Total frame length from its first ``prefix_len`` bytes, or ``None`` if they are invalid."""

    @abstractmethod
    def _decode_frame(self, frame: bytes, status: bool) -> Packet:
        """Check the checksum of a complete frame (raise :class:`ChecksumError`) and decode it."""

    def split(self, buf: bytearray, *, status: bool) -> Packet | int:
        """Take the first complete frame out of ``buf``.

        Returns the decoded packet, or the number of bytes still needed before a frame can be complete
        (so a caller can ``read()`` exactly that many and never steal the start of the next packet).
        Garbage before a header is dropped; a frame with a wrong checksum is consumed and raises
        :class:`ChecksumError`, so the stream stays in sync.
        """
        while True:
            start = buf.find(self.header)
            if start < 0:
                keep = next(
                    (k for k in range(len(self.header) - 1, 0, -1) if buf.endswith(self.header[:k])), 0
                )
                del buf[: len(buf) - keep]
                return self.prefix_len - keep
            del buf[:start]
            if len(buf) < self.prefix_len:
                return self.prefix_len - len(buf)
            total = self._frame_length(bytes(buf[: self.prefix_len]))
            if total is None:  # not a real header (e.g. an 0xFF data byte followed by one): resync
                del buf[:1]
                continue
            if len(buf) < total:
                return total - len(buf)
            frame = bytes(buf[:total])
            del buf[:total]
            return self._decode_frame(frame, status)

    # ------------------------------------------------------------------ parameters
    def le(self, value: int, width: int | None = None) -> bytes:
        """Little-endian bytes (both protocols are little-endian; width defaults to the address width)."""
        return value.to_bytes(width or self.addr_width, "little")

    def read_params(self, addr: int, size: int) -> bytes:
        return self.le(addr) + self.le(size)

    def write_params(self, addr: int, data: bytes) -> bytes:
        return self.le(addr) + data

    def sync_read_params(self, addr: int, size: int, ids: list[int]) -> bytes:
        return self.le(addr) + self.le(size) + bytes(ids)

    def sync_write_params(self, addr: int, size: int, data: dict[int, bytes]) -> bytes:
        return self.le(addr) + self.le(size) + b"".join(bytes([i]) + d for i, d in data.items())

    def parse_addr_len(self, params: bytes) -> tuple[int, int, bytes]:
        """Inverse of :meth:`read_params` / the head of the sync params: ``(addr, len, rest)``."""
        w = self.addr_width
        return (
            int.from_bytes(params[:w], "little"),
            int.from_bytes(params[w : 2 * w], "little"),
            params[2 * w :],
        )

    @abstractmethod
    def ping_params(self, model_number: int, firmware: int) -> bytes:
        """Parameters of a ping status packet (empty for Feetech, model + firmware for Dynamixel)."""

    # ------------------------------------------------------------------ values
    @abstractmethod
    def encode_value(self, register: str, value: int, size: int) -> int:
        """Signed/unsigned value -> unsigned register content; ``ValueError`` if it does not fit."""

    @abstractmethod
    def decode_value(self, register: str, raw: int, size: int) -> int:
        """Unsigned register content -> value (applies the register's sign encoding)."""

    def to_bytes(self, register: str, value: int, size: int) -> bytes:
        return self.encode_value(register, int(value), size).to_bytes(size, "little")

    def from_bytes(self, register: str, data: bytes) -> int:
        return self.decode_value(register, int.from_bytes(data, "little"), len(data))

    @staticmethod
    def check_unsigned(register: str, value: int, size: int) -> int:
        if not 0 <= value < 1 << (8 * size):
            raise ValueError(f"{register}: {value} does not fit in an unsigned {size}-byte register")
        return value

    def describe_error(self, error: int) -> list[str]:
        """Names of the flags set in a status error byte."""
        return [name for bit, name in self.error_bits.items() if error & bit] or [f"error 0x{error:02X}"]

    # ------------------------------------------------------------------ tables
    def model(self, model: str) -> ModelSpec:
        try:
            return self.models[model]
        except KeyError:
            raise ValueError(f"Unknown {self.name} model '{model}'; known: {sorted(self.models)}") from None

    def register(self, model: str, name: str) -> tuple[int, int]:
        """``(address, size)`` of a named register of a model."""
        try:
            return self.model(model).table[name]
        except KeyError:
            raise KeyError(f"{self.name} model '{model}' has no register '{name}'") from None

    def model_name(self, number: int) -> str | None:
        return next((name for name, spec in self.models.items() if spec.number == number), None)
