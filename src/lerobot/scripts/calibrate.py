"""``lerobot-calibrate``: calibrate one robot or one teleoperator, interactively.

    lerobot-calibrate --robot.type=so100_follower --robot.port=/dev/ttyACM0 --robot.id=my_arm
    lerobot-calibrate --teleop.type=so100_leader --teleop.port=/dev/ttyACM1 --teleop.id=my_leader

The calibration is written to the motors and saved to
``$HF_LEROBOT_CALIBRATION/<robots|teleoperators>/<name>/<id>.json``, where ``connect()`` finds it
next time; use the same ``id`` when recording.
"""

from __future__ import annotations

from lerobot.scripts.device_choice import OneDeviceConfig, one_device_main
from lerobot.utils.cli import console_main
from lerobot.utils.device import Device

CalibrateConfig = OneDeviceConfig


def calibrate(cfg: CalibrateConfig) -> Device:
    """Connect without the automatic calibration, run ``calibrate()``, disconnect (also on error)."""
    device = cfg.make_device()
    device.connect(calibrate=False)
    try:
        device.calibrate()
    finally:
        device.disconnect()
    return device


@console_main
def main(argv: list[str] | None = None) -> int:
    return one_device_main(argv, __doc__, calibrate, _report)


def _report(device: Device) -> str:
    return f"{device.name} '{device.id}' calibrated: {device.calibration_fpath}"


if __name__ == "__main__":
    raise SystemExit(main())
