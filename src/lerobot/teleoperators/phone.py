"""Phone teleoperator (``--teleop.type=phone``): the phone's pose drives the end effector.

iOS streams its pose through the HEBI Mobile I/O app (Python package ``hebi-py``); Android through
the ``teleop`` package's web app (WebXR in the phone's browser). Neither is a lerobot dependency, and
the pose -> end-effector mapping needs the arm's inverse kinematics, so this teleoperator has its
config and features, and ``connect()`` names exactly what is missing.
"""

from __future__ import annotations

from dataclasses import dataclass

from lerobot.robots.vendor import require_package
from lerobot.teleoperators.keyboard import EE_ACTION_KEYS
from lerobot.teleoperators.teleoperator import (
    TELEOPERATOR_CONFIGS,
    TELEOPERATORS,
    Teleoperator,
    TeleoperatorConfig,
)

PHONE_APPS = {
    "ios": ("hebi", "the HEBI Mobile I/O app on the phone and `pip install hebi-py` here"),
    "android": ("teleop", "`pip install teleop`, then open the URL it prints in the phone's browser"),
}


@TELEOPERATOR_CONFIGS.register("phone")
@dataclass(kw_only=True)
class PhoneTeleopConfig(TeleoperatorConfig):
    phone_os: str = "ios"
    """The phone's system, which picks the app protocol (``ios`` or ``android``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.phone_os not in PHONE_APPS:
            raise ValueError(f"phone_os must be one of {sorted(PHONE_APPS)}, got {self.phone_os!r}.")


@TELEOPERATORS.register("phone")
class PhoneTeleop(Teleoperator):
    config_class = PhoneTeleopConfig
    name = "phone"
    config: PhoneTeleopConfig

    @property
    def action_features(self) -> dict[str, type]:
        return dict.fromkeys(EE_ACTION_KEYS, float)

    @property
    def is_connected(self) -> bool:
        return False

    def connect(self, calibrate: bool = True) -> None:
        module, how = PHONE_APPS[self.config.phone_os]
        require_package(module, how, f"Phone teleoperation ({self.config.phone_os})")
        raise NotImplementedError(
            f"'{module}' is installed, but lerobot does not map {self.config.phone_os} phone poses to "
            "end-effector actions yet; use the keyboard_ee or gamepad teleoperator."
        )

    def get_action(self) -> dict[str, float]:
        raise ConnectionError("The phone teleoperator is not connected (its connect() says what is missing).")

    def disconnect(self) -> None:
        raise ConnectionError("The phone teleoperator is not connected.")
