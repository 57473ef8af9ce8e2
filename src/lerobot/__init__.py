"""lerobot: from a robot, real or simulated, to a trained policy running on it.

The guide's one-call helpers are importable from here; each loads its stack (MuJoCo, torch, ...)
only when first used, so ``import lerobot`` stays cheap.
"""

import importlib
from typing import Any

__version__ = "0.1.0"

_HELPERS = {
    "collect_demonstrations": "lerobot.scripts.collect",
    "train_policy": "lerobot.scripts.train",
    "deploy_policy": "lerobot.scripts.deploy",
}


def __getattr__(name: str) -> Any:
    if name in _HELPERS:
        return getattr(importlib.import_module(_HELPERS[name]), name)
    raise AttributeError(f"module 'lerobot' has no attribute {name!r}")


__all__ = ["__version__", *_HELPERS]
