"""What robots and teleoperators share: config fields, calibration paths, connect/disconnect scope."""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from lerobot.utils.io_utils import hf_lerobot_home


def calibration_root() -> Path:
    """``$HF_LEROBOT_CALIBRATION``, else ``$HF_LEROBOT_HOME/calibration``."""
    if "HF_LEROBOT_CALIBRATION" in os.environ:
        return Path(os.environ["HF_LEROBOT_CALIBRATION"]).expanduser()
    return hf_lerobot_home() / "calibration"


@dataclass(kw_only=True)
class DeviceConfig:
    """Fields every robot and teleoperator config has (``--robot.id``, ``--robot.calibration_dir``)."""

    id: str | None = None
    """Name of this physical device; its calibration is saved and found as <id>.json."""
    calibration_dir: Path | None = None
    """Folder of the calibration files (default $HF_LEROBOT_CALIBRATION/<robots|teleoperators>/<type>)."""
    type: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for name, cam in (getattr(self, "cameras", None) or {}).items():
            missing = [a for a in ("width", "height", "fps") if getattr(cam, a, None) is None]
            if missing:
                raise ValueError(
                    f"Camera '{name}' of {type(self).__name__} needs {missing} set, so recordings know "
                    "their image shape and rate (e.g. width=640, height=480, fps=30)."
                )


class Device(abc.ABC):
    """A connectable, calibratable device; calibration lives in ``<root>/<kind>/<name>/<id>.json``."""

    name: ClassVar[str]
    calibration_kind: ClassVar[str]  # "robots" or "teleoperators"

    def __init__(self, config: DeviceConfig):
        self.config = config
        self.id = config.id
        self.calibration_dir = Path(
            config.calibration_dir or calibration_root() / self.calibration_kind / self.name
        )
        self.calibration_fpath = self.calibration_dir / f"{self.id}.json"

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    @property
    def is_calibrated(self) -> bool:
        return True

    @abc.abstractmethod
    def connect(self, calibrate: bool = True) -> None: ...

    def calibrate(self) -> None:  # noqa: B027  (devices without calibration need nothing here)
        """Record homing offsets and ranges; devices that need no calibration keep this no-op."""

    def configure(self) -> None:  # noqa: B027
        """Write operating settings (modes, PID gains, limits) after connecting."""

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_connected:
            self.disconnect()
