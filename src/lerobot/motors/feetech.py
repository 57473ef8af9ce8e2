"""Feetech STS/SMS servos (e.g. STS3215 of the SO-100/SO-101 arms), protocol 0, little-endian.

Frame: ``FF FF ID LEN INSTR/ERROR PARAMS... CHK`` with ``LEN = len(params) + 2`` and
``CHK = ~(ID + LEN + INSTR + sum(params)) & 0xFF``. Status packets have the same shape with the error
byte in place of the instruction. Signed registers use sign-magnitude: the sign is one bit (15 for
positions and speeds, 11 for ``Homing_Offset``, 10 for ``Present_Load``), so ``Homing_Offset`` holds at
most +-2047. Calibration lives in the motors: ``Present = Actual - Homing_Offset``; EEPROM (addresses
below 40) is only saved while ``Lock`` is 0, which is why disabling torque also writes ``Lock = 0``.
Protocol 1 (SCS series, big-endian) is not supported.
"""

from __future__ import annotations

from lerobot.motors.motors_bus import MotorsBus
from lerobot.motors.protocol import ChecksumError, ModelSpec, Packet, Protocol

STS_TABLE: dict[str, tuple[int, int]] = {
    # EEPROM
    "Firmware_Major_Version": (0, 1),
    "Firmware_Minor_Version": (1, 1),
    "Model_Number": (3, 2),
    "ID": (5, 1),
    "Baud_Rate": (6, 1),
    "Return_Delay_Time": (7, 1),
    "Response_Status_Level": (8, 1),
    "Min_Position_Limit": (9, 2),
    "Max_Position_Limit": (11, 2),
    "Max_Temperature_Limit": (13, 1),
    "Max_Voltage_Limit": (14, 1),
    "Min_Voltage_Limit": (15, 1),
    "Max_Torque_Limit": (16, 2),
    "Phase": (18, 1),
    "Unloading_Condition": (19, 1),
    "LED_Alarm_Condition": (20, 1),
    "P_Coefficient": (21, 1),
    "D_Coefficient": (22, 1),
    "I_Coefficient": (23, 1),
    "Minimum_Startup_Force": (24, 2),
    "CW_Dead_Zone": (26, 1),
    "CCW_Dead_Zone": (27, 1),
    "Protection_Current": (28, 2),
    "Angular_Resolution": (30, 1),
    "Homing_Offset": (31, 2),
    "Operating_Mode": (33, 1),
    "Protective_Torque": (34, 1),
    "Protection_Time": (35, 1),
    "Overload_Torque": (36, 1),
    "Velocity_closed_loop_P_proportional_coefficient": (37, 1),
    "Over_Current_Protection_Time": (38, 1),
    "Velocity_closed_loop_I_integral_coefficient": (39, 1),
    # SRAM
    "Torque_Enable": (40, 1),
    "Acceleration": (41, 1),
    "Goal_Position": (42, 2),
    "Goal_Time": (44, 2),
    "Goal_Velocity": (46, 2),
    "Torque_Limit": (48, 2),
    "Lock": (55, 1),
    "Present_Position": (56, 2),
    "Present_Velocity": (58, 2),
    "Present_Load": (60, 2),
    "Present_Voltage": (62, 1),
    "Present_Temperature": (63, 1),
    "Status": (65, 1),
    "Moving": (66, 1),
    "Present_Current": (69, 2),
    "Maximum_Velocity_Limit": (84, 1),
    "Maximum_Acceleration": (85, 1),
    "Acceleration_Multiplier": (86, 1),
}

# Factory values the emulator starts from (as read from STS3215 units; ID 1 at 1 Mbps, locked EEPROM).
STS_DEFAULTS: dict[str, int] = {
    "Firmware_Major_Version": 3,
    "Firmware_Minor_Version": 10,
    "ID": 1,
    "Baud_Rate": 0,
    "Return_Delay_Time": 0,
    "Response_Status_Level": 1,
    "Max_Position_Limit": 4095,
    "Max_Temperature_Limit": 70,
    "Max_Voltage_Limit": 80,
    "Min_Voltage_Limit": 40,
    "Max_Torque_Limit": 1000,
    "Phase": 12,
    "Unloading_Condition": 44,
    "LED_Alarm_Condition": 47,
    "P_Coefficient": 32,
    "D_Coefficient": 32,
    "Minimum_Startup_Force": 16,
    "CW_Dead_Zone": 1,
    "CCW_Dead_Zone": 1,
    "Protection_Current": 500,
    "Angular_Resolution": 1,
    "Protective_Torque": 20,
    "Protection_Time": 200,
    "Overload_Torque": 80,
    "Torque_Limit": 1000,
    "Lock": 1,
    "Present_Voltage": 74,
    "Present_Temperature": 30,
}

SIGN_BITS = {
    "Homing_Offset": 11,
    "Goal_Position": 15,
    "Goal_Velocity": 15,
    "Present_Position": 15,
    "Present_Velocity": 15,
    "Present_Load": 10,
}


class FeetechProtocol(Protocol):
    name = "Feetech"
    header = b"\xff\xff"
    prefix_len = 4
    addr_width = 1
    models = {
        "sts3215": ModelSpec(777, 4096, STS_TABLE, {**STS_DEFAULTS, "Model_Number": 777}),
        "sts3250": ModelSpec(2825, 4096, STS_TABLE, {**STS_DEFAULTS, "Model_Number": 2825}),
    }
    baudrates = {
        1_000_000: 0,
        500_000: 1,
        250_000: 2,
        128_000: 3,
        115_200: 4,
        57_600: 5,
        38_400: 6,
        19_200: 7,
    }
    default_baudrate = 1_000_000
    eeprom_end = 40
    firmware_register = "Firmware_Major_Version"
    homing_sign = -1
    error_bits = {
        0x01: "input voltage error",
        0x02: "angle sensor error",
        0x04: "overheating",
        0x08: "overcurrent",
        0x20: "overload",
    }
    overload_error = 0x20

    @staticmethod
    def checksum(body: bytes) -> int:
        return ~sum(body) & 0xFF

    def _frame(self, packet: Packet) -> bytes:
        body = bytes([packet.id, len(packet.params) + 2, packet.code]) + packet.params
        return self.header + body + bytes([self.checksum(body)])

    encode_instruction = _frame
    encode_status = _frame

    def _frame_length(self, prefix: bytes) -> int | None:
        motor_id, length = prefix[2], prefix[3]
        return None if motor_id == 0xFF or length < 2 else self.prefix_len + length

    def _decode_frame(self, frame: bytes, status: bool) -> Packet:
        if self.checksum(frame[2:-1]) != frame[-1]:
            raise ChecksumError(frame[2])
        return Packet(frame[2], frame[4], frame[5:-1])

    def ping_params(self, model_number: int, firmware: int) -> bytes:
        return b""  # Feetech pings carry no data; the model number is read from register 3

    def encode_value(self, register: str, value: int, size: int) -> int:
        bit = SIGN_BITS.get(register)
        if bit is None:
            return self.check_unsigned(register, value, size)
        limit = (1 << bit) - 1
        if abs(value) > limit:
            raise ValueError(f"Magnitude {abs(value)} exceeds {limit} (sign-magnitude, sign bit {bit})")
        return -value | 1 << bit if value < 0 else value

    def decode_value(self, register: str, raw: int, size: int) -> int:
        bit = SIGN_BITS.get(register)
        if bit is None or not raw & 1 << bit:
            return raw
        return -(raw & ((1 << bit) - 1))


FEETECH = FeetechProtocol()


class FeetechMotorsBus(MotorsBus):
    """Feetech STS/SMS servos (protocol 0). Calibration is stored in the motors' EEPROM."""

    protocol = FEETECH
    apply_drive_mode = True

    def _model_number(self, motor_id: int, ping_status: Packet) -> int:
        addr, size = STS_TABLE["Model_Number"]
        return self.protocol.from_bytes(
            "Model_Number", self._read_raw(motor_id, addr, size, "reading Model_Number")
        )

    def _torque_writes(self, enable: bool) -> list[tuple[str, int]]:
        # Lock follows torque: unlocked EEPROM while limp (calibration, setup), locked while driving.
        return [("Torque_Enable", int(enable)), ("Lock", int(enable))]

    def _half_turn_offset(self, position: int, resolution: int) -> int:
        # Present = Actual - Offset, so Offset = Actual - centre. A raw 4095 gives 2048, one step past
        # what the 11-bit magnitude holds: clip it (the pose then reads one step off centre).
        limit = (1 << SIGN_BITS["Homing_Offset"]) - 1
        return max(-limit, min(limit, position - (resolution // 2 - 1)))

    def configure_motors(self) -> None:
        """Answer immediately, accelerate at the maximum, and clear Phase bit 4 (call with torque off)."""
        for name in self.motors:
            self.write("Return_Delay_Time", name, 0)
            self.write("Maximum_Acceleration", name, 254)
            self.write("Acceleration", name, 254)
            if self.motors[name].model == "sts3215":
                phase = int(self.read("Phase", name))
                if phase & 0x10:
                    self.write("Phase", name, phase & ~0x10)
