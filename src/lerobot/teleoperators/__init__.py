"""Teleoperators: leader arms, keyboard, gamepad, phone, scripted experts."""

from lerobot.teleoperators.teleoperator import (
    TELEOPERATOR_CONFIGS,
    TELEOPERATORS,
    Teleoperator,
    TeleoperatorConfig,
    make_teleoperator_from_config,
)

__all__ = [
    "TELEOPERATOR_CONFIGS",
    "TELEOPERATORS",
    "Teleoperator",
    "TeleoperatorConfig",
    "make_teleoperator_from_config",
]

# Built-in teleoperators register themselves on import.
from lerobot.teleoperators import gamepad, keyboard, koch_leader, phone, so100_leader  # noqa: E402, F401
