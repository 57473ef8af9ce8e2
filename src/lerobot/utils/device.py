"""What robots and teleoperators share: config fields, calibration paths, connect/disconnect scope."""

from __future__ import annotations

import abc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

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
    config_class: ClassVar[type[DeviceConfig]]
    """The config this device is built from; ``Device(**fields)`` builds one from keyword fields."""

    def __init__(self, config: DeviceConfig | None = None, **kwargs: Any):
        """``Device(config)``, ``Device(config=...)`` or ``Device(**config_fields)``, never both."""
        self.config = config = self.resolve_config(config, kwargs)
        self.id = config.id
        self.calibration_dir = Path(
            config.calibration_dir or calibration_root() / self.calibration_kind / self.name
        )
        self.calibration_fpath = self.calibration_dir / f"{self.id}.json"

    @classmethod
    def resolve_config(cls, config: Any, fields: dict[str, Any]) -> DeviceConfig:
        """The config a constructor was given, or one built from its keyword ``fields``.

        One place checks what every robot and teleoperator accepts, so that a config of the wrong
        kind, or a config together with fields, fails here with one message instead of later with
        an ``AttributeError`` deep in the driver.
        """
        expected = getattr(cls, "config_class", None)
        if config is None:
            if expected is None:
                raise TypeError(f"{cls.__name__} has no config_class; pass its config explicitly.")
            return expected(**fields)
        if fields:
            raise TypeError(
                f"Pass either a config or keyword fields to {cls.__name__}, not both "
                f"(got config and {sorted(fields)})."
            )
        if not isinstance(config, expected or DeviceConfig):
            wanted = (expected or DeviceConfig).__name__
            raise TypeError(f"{cls.__name__} needs a {wanted}, got {type(config).__name__}.")
        return config

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
