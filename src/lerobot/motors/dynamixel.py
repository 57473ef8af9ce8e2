"""Dynamixel X-series servos (XL330, XL430, XM430...; Koch arms), protocol 2.0, little-endian.

Frame: ``FF FF FD 00 ID LEN_L LEN_H INSTR PARAMS... CRC_L CRC_H`` with ``LEN = len(params) + 3``; status
packets carry instruction ``0x55`` followed by the error byte. ``FF FF FD`` inside the payload is
byte-stuffed to ``FF FF FD FD`` (the length counts the stuffed bytes) and the CRC-16 (polynomial 0x8005,
initial value 0, not reflected) covers the whole stuffed frame. Signed registers are two's complement.
``Present = Actual + Homing_Offset``; EEPROM (addresses below 64) can only be written with torque off.
"""

from __future__ import annotations

from lerobot.motors.motors_bus import MotorsBus
from lerobot.motors.protocol import ChecksumError, ModelSpec, Packet, Protocol

STATUS = 0x55
ACCESS_ERROR = 0x07
ALERT = 0x80

X_TABLE: dict[str, tuple[int, int]] = {
    # EEPROM
    "Model_Number": (0, 2),
    "Model_Information": (2, 4),
    "Firmware_Version": (6, 1),
    "ID": (7, 1),
    "Baud_Rate": (8, 1),
    "Return_Delay_Time": (9, 1),
    "Drive_Mode": (10, 1),
    "Operating_Mode": (11, 1),
    "Secondary_ID": (12, 1),
    "Protocol_Type": (13, 1),
    "Homing_Offset": (20, 4),
    "Moving_Threshold": (24, 4),
    "Temperature_Limit": (31, 1),
    "Max_Voltage_Limit": (32, 2),
    "Min_Voltage_Limit": (34, 2),
    "PWM_Limit": (36, 2),
    "Current_Limit": (38, 2),
    "Acceleration_Limit": (40, 4),
    "Velocity_Limit": (44, 4),
    "Max_Position_Limit": (48, 4),
    "Min_Position_Limit": (52, 4),
    "Shutdown": (63, 1),
    # RAM
    "Torque_Enable": (64, 1),
    "LED": (65, 1),
    "Status_Return_Level": (68, 1),
    "Registered_Instruction": (69, 1),
    "Hardware_Error_Status": (70, 1),
    "Velocity_I_Gain": (76, 2),
    "Velocity_P_Gain": (78, 2),
    "Position_D_Gain": (80, 2),
    "Position_I_Gain": (82, 2),
    "Position_P_Gain": (84, 2),
    "Feedforward_2nd_Gain": (88, 2),
    "Feedforward_1st_Gain": (90, 2),
    "Bus_Watchdog": (98, 1),
    "Goal_PWM": (100, 2),
    "Goal_Current": (102, 2),
    "Goal_Velocity": (104, 4),
    "Profile_Acceleration": (108, 4),
    "Profile_Velocity": (112, 4),
    "Goal_Position": (116, 4),
    "Realtime_Tick": (120, 2),
    "Moving": (122, 1),
    "Moving_Status": (123, 1),
    "Present_PWM": (124, 2),
    "Present_Current": (126, 2),
    "Present_Velocity": (128, 4),
    "Present_Position": (132, 4),
    "Velocity_Trajectory": (136, 4),
    "Position_Trajectory": (140, 4),
    "Present_Input_Voltage": (144, 2),
    "Present_Temperature": (146, 1),
}

SIGNED = {
    "Homing_Offset",
    "Goal_PWM",
    "Goal_Current",
    "Goal_Velocity",
    "Goal_Position",
    "Present_PWM",
    "Present_Current",
    "Present_Velocity",
    "Present_Position",
    "Velocity_Trajectory",
    "Position_Trajectory",
}

# Factory values (e-manual): id 1 at 57600 baud, position control mode, 500 us return delay.
X_DEFAULTS: dict[str, int] = {
    "Firmware_Version": 52,
    "ID": 1,
    "Baud_Rate": 1,
    "Return_Delay_Time": 250,
    "Operating_Mode": 3,
    "Protocol_Type": 2,
    "Moving_Threshold": 10,
    "Temperature_Limit": 70,
    "Max_Voltage_Limit": 140,
    "Min_Voltage_Limit": 60,
    "PWM_Limit": 885,
    "Velocity_Limit": 265,
    "Max_Position_Limit": 4095,
    "Shutdown": 52,
    "Status_Return_Level": 2,
    "Velocity_I_Gain": 1000,
    "Velocity_P_Gain": 100,
    "Position_P_Gain": 640,
    "Present_Input_Voltage": 120,
    "Present_Temperature": 30,
}
XL330_DEFAULTS = {
    **X_DEFAULTS,
    "Max_Voltage_Limit": 70,
    "Min_Voltage_Limit": 35,
    "Current_Limit": 1750,
    "Velocity_Limit": 445,
    "Position_P_Gain": 400,
    "Present_Input_Voltage": 50,
}


def _model(number: int, defaults: dict[str, int]) -> ModelSpec:
    return ModelSpec(number, 4096, X_TABLE, {**defaults, "Model_Number": number})


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 8
        for _ in range(8):
            crc = (crc << 1) ^ 0x8005 if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/BUYPASS (poly 0x8005, init 0), as specified by Dynamixel protocol 2.0."""
    crc = 0
    for byte in data:
        crc = ((crc << 8) ^ _CRC_TABLE[((crc >> 8) ^ byte) & 0xFF]) & 0xFFFF
    return crc


class DynamixelProtocol(Protocol):
    name = "Dynamixel"
    header = b"\xff\xff\xfd\x00"
    prefix_len = 7
    addr_width = 2
    models = {
        "xl330-m077": _model(1190, XL330_DEFAULTS),
        "xl330-m288": _model(1200, XL330_DEFAULTS),
        "xl430-w250": _model(1060, X_DEFAULTS),
        "xm430-w350": _model(1020, X_DEFAULTS),
        "xm540-w270": _model(1120, X_DEFAULTS),
        "xc430-w150": _model(1070, X_DEFAULTS),
    }
    baudrates = {
        9_600: 0,
        57_600: 1,
        115_200: 2,
        1_000_000: 3,
        2_000_000: 4,
        3_000_000: 5,
        4_000_000: 6,
        4_500_000: 7,
    }
    default_baudrate = 1_000_000
    eeprom_end = 64
    firmware_register = "Firmware_Version"
    homing_sign = 1
    error_numbers = {
        1: "result fail",
        2: "instruction error",
        3: "CRC error",
        4: "data range error",
        5: "data length error",
        6: "data limit error",
        7: "access error (EEPROM write with torque on?)",
    }
    error_bits = {
        ALERT: "hardware alert (overload, overheating, voltage or encoder; see Hardware_Error_Status)"
    }
    overload_error = ALERT

    def _frame(self, motor_id: int, payload: bytes) -> bytes:
        payload = payload.replace(b"\xff\xff\xfd", b"\xff\xff\xfd\xfd")
        frame = self.header + bytes([motor_id]) + (len(payload) + 2).to_bytes(2, "little") + payload
        return frame + crc16(frame).to_bytes(2, "little")

    def encode_instruction(self, packet: Packet) -> bytes:
        return self._frame(packet.id, bytes([packet.code]) + packet.params)

    def encode_status(self, packet: Packet) -> bytes:
        return self._frame(packet.id, bytes([STATUS, packet.code]) + packet.params)

    def _frame_length(self, prefix: bytes) -> int | None:
        length = int.from_bytes(prefix[5:7], "little")
        return None if prefix[4] == 0xFF or length < 3 else self.prefix_len + length

    def _decode_frame(self, frame: bytes, status: bool) -> Packet:
        if crc16(frame[:-2]) != int.from_bytes(frame[-2:], "little"):
            raise ChecksumError(frame[4])
        payload = frame[7:-2].replace(b"\xff\xff\xfd\xfd", b"\xff\xff\xfd")
        if status:
            if len(payload) < 2 or payload[0] != STATUS:
                raise ChecksumError(frame[4])  # malformed status: treat like a corrupted frame
            return Packet(frame[4], payload[1], payload[2:])
        return Packet(frame[4], payload[0], payload[1:])

    def ping_params(self, model_number: int, firmware: int) -> bytes:
        return model_number.to_bytes(2, "little") + bytes([firmware])

    def encode_value(self, register: str, value: int, size: int) -> int:
        if register not in SIGNED:
            return self.check_unsigned(register, value, size)
        half = 1 << (8 * size - 1)
        if not -half <= value < half:
            raise ValueError(f"{value} does not fit in a signed {size}-byte register")
        return value & ((1 << (8 * size)) - 1)

    def decode_value(self, register: str, raw: int, size: int) -> int:
        if register in SIGNED and raw & 1 << (8 * size - 1):
            return raw - (1 << (8 * size))
        return raw

    def describe_error(self, error: int) -> list[str]:
        flags = [name for bit, name in self.error_bits.items() if error & bit]
        if number := error & 0x7F:
            flags.append(self.error_numbers.get(number, f"error {number}"))
        return flags


DYNAMIXEL = DynamixelProtocol()


class DynamixelMotorsBus(MotorsBus):
    """Dynamixel protocol 2.0 servos. Calibration (incl. drive mode) is stored in the motors' EEPROM."""

    protocol = DYNAMIXEL
    apply_drive_mode = False

    def _model_number(self, motor_id: int, ping_status: Packet) -> int:
        return int.from_bytes(ping_status.params[:2], "little")

    def _torque_writes(self, enable: bool) -> list[tuple[str, int]]:
        return [("Torque_Enable", int(enable))]

    def _half_turn_offset(self, position: int, resolution: int) -> int:
        return (resolution // 2 - 1) - position  # Present = Actual + Offset

    def configure_motors(self) -> None:
        """Answer immediately instead of after the factory 500 us (call with torque off)."""
        for name in self.motors:
            self.write("Return_Delay_Time", name, 0)
