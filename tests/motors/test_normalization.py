"""Normalisation formulas of spec §3.5 (no port needed: these are pure functions of the calibration)."""

from __future__ import annotations

import pytest

from lerobot.motors import DynamixelMotorsBus, FeetechMotorsBus, Motor, MotorCalibration, MotorNormMode


def bus_with(mode: MotorNormMode, lo: int = 1000, hi: int = 3000, drive_mode: int = 0, cls=FeetechMotorsBus):
    model = "sts3215" if cls is FeetechMotorsBus else "xl330-m288"
    cal = {"j": MotorCalibration(id=1, drive_mode=drive_mode, homing_offset=0, range_min=lo, range_max=hi)}
    return cls("/dev/null", {"j": Motor(1, model, mode)}, calibration=cal)


@pytest.mark.parametrize(
    ("mode", "raw", "expected"),
    [
        (MotorNormMode.RANGE_M100_100, 1000, -100.0),
        (MotorNormMode.RANGE_M100_100, 2000, 0.0),
        (MotorNormMode.RANGE_M100_100, 2500, 50.0),
        (MotorNormMode.RANGE_M100_100, 9999, 100.0),  # clamped to the range
        (MotorNormMode.RANGE_0_100, 1500, 25.0),
        (MotorNormMode.RANGE_0_100, 0, 0.0),
        (MotorNormMode.DEGREES, 2000, 0.0),
        (MotorNormMode.DEGREES, 3000, 1000 * 360 / 4095),
        (MotorNormMode.DEGREES, 4000, 2000 * 360 / 4095),  # degrees are not clamped
    ],
)
def test_normalize_formulas(mode, raw, expected):
    assert bus_with(mode)._normalize({"j": raw})["j"] == pytest.approx(expected)


@pytest.mark.parametrize("mode", list(MotorNormMode))
@pytest.mark.parametrize("drive_mode", [0, 1])
def test_round_trip_every_step(mode, drive_mode):
    bus = bus_with(mode, drive_mode=drive_mode)
    for raw in range(1000, 3001, 7):
        back = bus._unnormalize(bus._normalize({"j": raw}))["j"]
        assert abs(back - raw) <= 1  # int() truncation may lose at most one step


def test_unnormalize_clamps_and_truncates():
    bus = bus_with(MotorNormMode.RANGE_M100_100, lo=0, hi=3)
    assert bus._unnormalize({"j": 150.0})["j"] == 3
    assert bus._unnormalize({"j": -150.0})["j"] == 0
    assert bus._unnormalize({"j": 0.0})["j"] == 1  # int(1.5) truncates toward 0
    assert bus_with(MotorNormMode.RANGE_0_100)._unnormalize({"j": 120})["j"] == 3000
    # Degrees: int(v * 4095/360 + mid), clamped to the calibrated range like every goal.
    assert bus_with(MotorNormMode.DEGREES)._unnormalize({"j": 10.0})["j"] == int(10 * 4095 / 360 + 2000)
    assert bus_with(MotorNormMode.DEGREES)._unnormalize({"j": 360.0})["j"] == 3000
    assert bus_with(MotorNormMode.DEGREES)._unnormalize({"j": -360.0})["j"] == 1000


def test_drive_mode_inverts_on_feetech_but_not_dynamixel():
    feetech = bus_with(MotorNormMode.RANGE_M100_100, drive_mode=1)
    assert feetech._normalize({"j": 1000})["j"] == 100.0
    assert bus_with(MotorNormMode.RANGE_0_100, drive_mode=1)._normalize({"j": 1500})["j"] == 75.0
    dxl = bus_with(MotorNormMode.RANGE_M100_100, drive_mode=1, cls=DynamixelMotorsBus)
    assert dxl._normalize({"j": 1000})["j"] == -100.0


@pytest.mark.parametrize("mode", list(MotorNormMode))
def test_equal_min_max_is_rejected_both_ways(mode):
    bus = bus_with(mode, lo=2000, hi=2000)
    with pytest.raises(ValueError, match="range_min == range_max"):
        bus._normalize({"j": 2000})
    with pytest.raises(ValueError, match="range_min == range_max"):
        bus._unnormalize({"j": 0.0})


def test_uncalibrated_motor_cannot_be_normalized():
    bus = FeetechMotorsBus("/dev/null", {"j": Motor(1, "sts3215", MotorNormMode.DEGREES)})
    with pytest.raises(RuntimeError, match="no calibration"):
        bus._normalize({"j": 1})


def test_constructor_validates_motors():
    with pytest.raises(ValueError, match="Unknown Feetech model"):
        FeetechMotorsBus("/dev/null", {"j": Motor(1, "xl330-m288", MotorNormMode.DEGREES)})
    with pytest.raises(ValueError, match="share an id"):
        FeetechMotorsBus(
            "/dev/null",
            {
                "a": Motor(1, "sts3215", MotorNormMode.DEGREES),
                "b": Motor(1, "sts3215", MotorNormMode.DEGREES),
            },
        )
