"""Byte-exact packet encoding, checked against hand-computed frames and the vendors' worked examples."""

from __future__ import annotations

import pytest

from lerobot.motors.dynamixel import DYNAMIXEL, crc16
from lerobot.motors.feetech import FEETECH
from lerobot.motors.protocol import PING, READ, SYNC_READ, SYNC_WRITE, WRITE, ChecksumError, Packet


def hexbytes(text: str) -> bytes:
    return bytes.fromhex(text)


# ---------------------------------------------------------------- Feetech (checksum = ~sum & 0xFF)
def test_feetech_ping():
    # ID 1, LEN 2, PING: ~(01 + 02 + 01) = ~0x04 = 0xFB (the Feetech manual's example).
    assert FEETECH.encode_instruction(Packet(1, PING)) == hexbytes("FF FF 01 02 01 FB")
    # Its answer: error 0, ~(01 + 02 + 00) = 0xFC.
    assert FEETECH.encode_status(Packet(1, 0)) == hexbytes("FF FF 01 02 00 FC")


def test_feetech_read_present_position():
    # READ addr 56 (0x38), 2 bytes: ~(01 + 04 + 02 + 38 + 02) = ~0x41 = 0xBE.
    packet = Packet(1, READ, FEETECH.read_params(56, 2))
    assert FEETECH.encode_instruction(packet) == hexbytes("FF FF 01 04 02 38 02 BE")
    # Answer 2048 = 00 08 little-endian: ~(01 + 04 + 00 + 00 + 08) = ~0x0D = 0xF2.
    assert FEETECH.encode_status(Packet(1, 0, b"\x00\x08")) == hexbytes("FF FF 01 04 00 00 08 F2")


def test_feetech_sync_read():
    # SYNC_READ addr 56, 2 bytes, ids 1 2 3: sum FE+07+82+38+02+01+02+03 = 0x1C7 -> ~0xC7 = 0x38.
    packet = Packet(0xFE, SYNC_READ, FEETECH.sync_read_params(56, 2, [1, 2, 3]))
    assert FEETECH.encode_instruction(packet) == hexbytes("FF FF FE 07 82 38 02 01 02 03 38")


def test_feetech_sync_write():
    # Goal_Position (42 = 0x2A, 2 bytes): id 1 -> 2048 (00 08), id 2 -> 1024 (00 04).
    # LEN = 8 params + 2 = 0x0A; sum FE+0A+83+2A+02+01+00+08+02+00+04 = 0x1C6 -> ~0xC6 = 0x39.
    params = FEETECH.sync_write_params(42, 2, {1: b"\x00\x08", 2: b"\x00\x04"})
    assert FEETECH.encode_instruction(Packet(0xFE, SYNC_WRITE, params)) == hexbytes(
        "FF FF FE 0A 83 2A 02 01 00 08 02 00 04 39"
    )


def test_feetech_write_homing_offset_sign_magnitude():
    # -1024 in sign-magnitude with the sign on bit 11: 0x0400 | 0x0800 = 0x0C00 -> 00 0C.
    data = FEETECH.to_bytes("Homing_Offset", -1024, 2)
    assert data == b"\x00\x0c"
    # WRITE addr 31 (0x1F): ~(01 + 05 + 03 + 1F + 00 + 0C) = ~0x34 = 0xCB.
    assert FEETECH.encode_instruction(Packet(1, WRITE, FEETECH.write_params(31, data))) == hexbytes(
        "FF FF 01 05 03 1F 00 0C CB"
    )


@pytest.mark.parametrize(
    ("register", "value", "raw"),
    [
        ("Homing_Offset", 2047, 0x07FF),
        ("Homing_Offset", -2047, 0x0FFF),
        ("Present_Position", -5, 0x8005),
        ("Present_Load", -3, 0x0403),
        ("Goal_Position", 4095, 0x0FFF),
        ("ID", 7, 7),
    ],
)
def test_feetech_sign_magnitude_round_trip(register, value, raw):
    assert FEETECH.encode_value(register, value, 2) == raw
    assert FEETECH.decode_value(register, raw, 2) == value


def test_feetech_homing_offset_overflow_is_a_clear_error():
    with pytest.raises(ValueError, match="Magnitude 2114 exceeds 2047"):
        FEETECH.encode_value("Homing_Offset", 2114, 2)
    with pytest.raises(ValueError, match="does not fit"):
        FEETECH.encode_value("Min_Position_Limit", -1, 2)


# ---------------------------------------------------------------- Dynamixel 2.0 (CRC-16, e-manual)
def test_dynamixel_crc16_check_value():
    assert crc16(b"123456789") == 0xFEE8  # CRC-16/BUYPASS check value


def test_dynamixel_ping_and_answer():
    assert DYNAMIXEL.encode_instruction(Packet(1, PING)) == hexbytes("FF FF FD 00 01 03 00 01 19 4E")
    # e-manual: ID 1 answers model 1030 (06 04), firmware 0x26.
    status = hexbytes("FF FF FD 00 01 07 00 55 00 06 04 26 65 5D")
    assert DYNAMIXEL.encode_status(Packet(1, 0, DYNAMIXEL.ping_params(1030, 0x26))) == status
    assert DYNAMIXEL.split(bytearray(status), status=True) == Packet(1, 0, b"\x06\x04\x26")


def test_dynamixel_read_write_sync_examples():
    read = Packet(1, READ, DYNAMIXEL.read_params(132, 4))
    assert DYNAMIXEL.encode_instruction(read) == hexbytes("FF FF FD 00 01 07 00 02 84 00 04 00 1D 15")
    write = Packet(1, WRITE, DYNAMIXEL.write_params(116, DYNAMIXEL.to_bytes("Goal_Position", 512, 4)))
    assert DYNAMIXEL.encode_instruction(write) == hexbytes("FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89")
    sync_read = Packet(0xFE, SYNC_READ, DYNAMIXEL.sync_read_params(132, 4, [1, 2]))
    assert DYNAMIXEL.encode_instruction(sync_read) == hexbytes(
        "FF FF FD 00 FE 09 00 82 84 00 04 00 01 02 CE FA"
    )
    data = {1: (150).to_bytes(4, "little"), 2: (170).to_bytes(4, "little")}
    sync_write = Packet(0xFE, SYNC_WRITE, DYNAMIXEL.sync_write_params(116, 4, data))
    assert DYNAMIXEL.encode_instruction(sync_write) == hexbytes(
        "FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87"
    )


def test_dynamixel_byte_stuffing():
    packet = Packet(1, WRITE, DYNAMIXEL.write_params(116, b"\xff\xff\xfd\x00"))
    frame = DYNAMIXEL.encode_instruction(packet)
    # FF FF FD in the payload gets an extra FD, and LEN (0x0A) counts it.
    assert frame[:14] == hexbytes("FF FF FD 00 01 0A 00 03 74 00 FF FF FD FD")
    assert DYNAMIXEL.split(bytearray(frame), status=False) == packet


def test_dynamixel_twos_complement():
    assert DYNAMIXEL.to_bytes("Homing_Offset", -1, 4) == b"\xff\xff\xff\xff"
    assert DYNAMIXEL.from_bytes("Present_Position", b"\x00\xf8\xff\xff") == -2048
    assert DYNAMIXEL.from_bytes("Max_Position_Limit", b"\xff\x0f\x00\x00") == 4095


# ---------------------------------------------------------------- stream splitting
@pytest.mark.parametrize("protocol", [FEETECH, DYNAMIXEL], ids=lambda p: p.name)
def test_split_resyncs_on_garbage_partial_frames_and_bad_checksums(protocol):
    frame = protocol.encode_status(Packet(3, 0, b"\x10\x20"))
    buf = bytearray(b"\x00\x13\xff")
    needed = protocol.split(buf, status=True)
    assert isinstance(needed, int) and needed > 0 and buf == b"\xff"  # a possible header start is kept
    buf = bytearray(b"\x00\x13" + frame[:2])
    assert protocol.split(buf, status=True) == protocol.prefix_len - 2  # the rest of the length field
    buf += frame[2 : protocol.prefix_len]
    assert protocol.split(buf, status=True) == len(frame) - protocol.prefix_len  # exactly what is missing
    buf += frame[protocol.prefix_len :]
    assert protocol.split(buf, status=True) == Packet(3, 0, b"\x10\x20") and not buf
    corrupted = bytearray(frame[:-1] + bytes([frame[-1] ^ 1]) + frame)
    with pytest.raises(ChecksumError) as err:
        protocol.split(corrupted, status=True)
    assert err.value.motor_id == 3
    assert protocol.split(corrupted, status=True) == Packet(3, 0, b"\x10\x20")  # next frame intact
