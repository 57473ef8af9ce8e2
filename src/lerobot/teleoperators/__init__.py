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
from lerobot.teleoperators import (  # noqa: E402, F401
    gamepad,
    keyboard,
    koch_leader,
    phone,
    sim_leader,
    so100_leader,
)

try:  # scripted experts drive simulated robots: they need the [sim] extra
    from lerobot.teleoperators import expert  # noqa: E402, F401
except ImportError as e:
    import logging

    logging.getLogger(__name__).debug("Expert teleoperator unavailable (%s); pip install 'lerobot[sim]'.", e)
