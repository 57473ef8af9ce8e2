"""The user guide's one-call constructor: ``SO100Robot(port="/dev/ttyUSB0")``.

It is the ``SO100Follower`` driver, nothing more; every ``SO100FollowerConfig`` field can be passed
as a keyword (``SO100Robot(port=..., id="my_arm", max_relative_target=10.0)``).
"""

from __future__ import annotations

from typing import Any

from lerobot.robots.so100_follower import SO100Follower, SO100FollowerConfig


class SO100Robot(SO100Follower):
    """An SO-100 follower arm on ``port``; connect with ``robot.connect()`` or ``with robot:``."""

    def __init__(self, port: str = "/dev/ttyUSB0", **config_kwargs: Any):
        super().__init__(SO100FollowerConfig(port=port, **config_kwargs))
