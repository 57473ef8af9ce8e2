"""The ``Teleoperator`` API: anything that produces robot actions from a person (or a script).

Leader arms, keyboards, gamepads, phones and the scripted experts all implement it, so
``lerobot-record`` and ``lerobot-teleoperate`` drive any robot from any of them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from lerobot.robots.robot import DeviceConfig, calibration_root
from lerobot.utils.registry import Registry


@dataclass(kw_only=True)
class TeleoperatorConfig(DeviceConfig):
    """Base of every registered teleoperator config (``--teleop.type=<name>`` picks the subclass)."""


TELEOPERATOR_CONFIGS: Registry[type[TeleoperatorConfig]] = Registry("teleoperator")
TELEOPERATORS: Registry[type[Teleoperator]] = Registry("teleoperator")


class Teleoperator(abc.ABC):
    """Produces actions (``get_action``) and may receive feedback (force, vibration)."""

    config_class: ClassVar[type[TeleoperatorConfig]]
    name: ClassVar[str]

    def __init__(self, config: TeleoperatorConfig):
        self.config = config
        self.id = config.id
        self.calibration_dir = Path(
            config.calibration_dir or calibration_root() / "teleoperators" / self.name
        )
        self.calibration_fpath = self.calibration_dir / f"{self.id}.json"

    @property
    @abc.abstractmethod
    def action_features(self) -> dict[str, type]:
        """``{"<motor>.pos": float, ...}``: must match the driven robot's ``action_features``."""

    @property
    def feedback_features(self) -> dict[str, type]:
        return {}

    @property
    @abc.abstractmethod
    def is_connected(self) -> bool: ...

    @property
    def is_calibrated(self) -> bool:
        return True

    @abc.abstractmethod
    def connect(self, calibrate: bool = True) -> None: ...

    def calibrate(self) -> None:  # noqa: B027  (teleoperators without calibration need nothing here)
        """Record homing offsets and ranges; devices that need no calibration keep this no-op."""

    def configure(self) -> None:  # noqa: B027
        """Write operating settings after connecting."""

    @abc.abstractmethod
    def get_action(self) -> dict[str, float]: ...

    def send_feedback(self, feedback: dict[str, Any]) -> None:  # noqa: B027
        """Forward feedback to the device; most devices have none."""

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    def __enter__(self) -> Teleoperator:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.is_connected:
            self.disconnect()


def make_teleoperator_from_config(config: TeleoperatorConfig) -> Teleoperator:
    import lerobot.teleoperators  # noqa: F401  (registers the built-in teleoperators)

    return TELEOPERATORS.get(config.type)(config)
