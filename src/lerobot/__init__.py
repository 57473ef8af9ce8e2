"""lerobot: from a robot, real or simulated, to a trained policy running on it.

The guide's one-call helpers are importable from here; each loads its stack (MuJoCo, torch, ...)
only when first used, so ``import lerobot`` stays cheap.
"""

from lerobot.utils.lazy import lazy_attributes

__version__ = "0.1.0"

_HELPERS = {
    "collect_demonstrations": "lerobot.scripts.collect",
    "train_policy": "lerobot.scripts.train",
    "deploy_policy": "lerobot.scripts.deploy",
}
__getattr__ = lazy_attributes(__name__, _HELPERS)


__all__ = ["__version__", *_HELPERS]
