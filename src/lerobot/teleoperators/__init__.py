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
from lerobot.teleoperators import koch_leader, so100_leader  # noqa: E402, F401
