"""What the robots driven through a vendor SDK share: joint tables, features, and the SDK import check.

Reachy 2, Unitree G1 and OpenArm each come with their own SDK or bus (``reachy2_sdk``,
``unitree_sdk2py``, python-can + Damiao motors). Their configs and features must work without it --
a dataset, a policy or ``lerobot-record --help`` needs the joint names long before a robot is plugged
in -- so the SDK is imported only by ``connect()``, and a missing one gives one error that names the
package and the command that installs it.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from lerobot.robots.robot import Robot


@dataclass(frozen=True)
class JointLimit:
    """A joint's name and its range in the robot's action units (degrees, or 0..100 for grippers)."""

    name: str
    lower: float
    upper: float


def require_package(module: str, install: str, robot: str) -> ModuleType:
    """Import a vendor SDK, or fail with what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{robot} needs the vendor package '{module}', which is not installed. Install it with: {install}"
        ) from e


class JointSpaceRobot(Robot):
    """A robot whose features are ``<joint>.pos`` for each entry of :attr:`joint_limits` plus cameras.

    ``send_action`` clamps every joint to its limits before the SDK sees it, so a policy output past a
    mechanical stop is never sent raw (the clamp is logged by the safety layer when one wraps this).
    """

    @property
    def joint_limits(self) -> list[JointLimit]:
        raise NotImplementedError

    @property
    def action_features(self) -> dict[str, type]:
        return {f"{j.name}.pos": float for j in self.joint_limits}

    def clamp(self, action: dict[str, Any]) -> dict[str, float]:
        """Each joint inside its range (flat ``<joint>.pos`` keys); NaN or infinity refuses the action.

        The check comes first because a clamp would pass NaN through to the SDK (or pin it to a limit).
        """
        values = {f"{j.name}.pos": float(action[f"{j.name}.pos"]) for j in self.joint_limits}
        bad = {k: v for k, v in values.items() if not math.isfinite(v)}
        if bad:
            raise ValueError(f"Refusing {self.name} goals {bad}: not finite numbers; nothing was sent.")
        return {
            f"{j.name}.pos": min(j.upper, max(j.lower, values[f"{j.name}.pos"])) for j in self.joint_limits
        }


class UndrivenRobot(JointSpaceRobot):
    """A robot whose features are known but whose driver is not written yet: ``connect()`` explains why.

    It never counts as connected, so I/O calls fail with the usual "not connected" error.
    """

    @property
    def is_connected(self) -> bool:
        return False

    def _not_connected(self) -> ConnectionError:
        return ConnectionError(f"{self.name} is not connected (its connect() says what is missing).")

    def _get_observation(self) -> dict[str, Any]:
        raise self._not_connected()

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        raise self._not_connected()

    def disconnect(self) -> None:
        raise self._not_connected()
