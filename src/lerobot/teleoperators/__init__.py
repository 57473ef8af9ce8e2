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
