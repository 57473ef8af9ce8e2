"""Compatibility alias: the user guide still imports transforms from ``lerobot.common.datasets``.

The names it offers are :mod:`lerobot.datasets.transforms`'s ``__all__``, the one list of them.
"""

from lerobot.datasets.transforms import *  # noqa: F403
from lerobot.datasets.transforms import __all__  # noqa: F401
