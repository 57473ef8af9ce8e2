"""The ``Teleoperator`` API: anything that produces robot actions from a person (or a script).

Leader arms, keyboards, gamepads, phones and the scripted experts all implement it, so
``lerobot-record`` and ``lerobot-teleoperate`` drive any robot from any of them.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from lerobot.utils.device import Device, DeviceConfig
from lerobot.utils.registry import Registry

if TYPE_CHECKING:
    from lerobot.robots.robot import RobotObservation


@dataclass(kw_only=True)
class TeleoperatorConfig(DeviceConfig):
    """Base of every registered teleoperator config (``--teleop.type=<name>`` picks the subclass)."""


TELEOPERATOR_CONFIGS: Registry[type[TeleoperatorConfig]] = Registry("teleoperator")
TeleoperatorConfig.choices = TELEOPERATOR_CONFIGS  # lets the CLI parser resolve --teleop.type
TELEOPERATORS: Registry[type[Teleoperator]] = Registry("teleoperator")


class Teleoperator(Device):
    """Produces actions (``get_action``) and may receive feedback (force, vibration)."""

    config_class: ClassVar[type[TeleoperatorConfig]]
    calibration_kind = "teleoperators"

    @property
    @abc.abstractmethod
    def action_features(self) -> dict[str, type]:
        """``{"<motor>.pos": float, ...}``: must match the driven robot's ``action_features``."""

    @property
    def feedback_features(self) -> dict[str, type]:
        return {}

    @abc.abstractmethod
    def get_action(self) -> dict[str, float]: ...

    def get_observation(self) -> RobotObservation:
        """The current action read as an observation: the guide's ``leader.get_observation()``.

        A leader arm's action is its joint positions, so ``["joint_positions"]`` (arm joints) and
        ``["gripper"]`` read as on a robot, and the flat ``"<motor>.pos"`` keys are there too.
        """
        from lerobot.robots.robot import RobotObservation

        return RobotObservation(self.get_action(), list(self.action_features), [])

    def send_feedback(self, feedback: dict[str, Any]) -> None:  # noqa: B027
        """Forward feedback to the device; most devices have none."""


def make_teleoperator_from_config(config: TeleoperatorConfig) -> Teleoperator:
    import lerobot.teleoperators  # noqa: F401  (registers the built-in teleoperators)

    return TELEOPERATORS.get(config.type)(config)
