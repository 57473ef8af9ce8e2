"""The guide's ``FollowerRobot(port=..., robot_type="so100")``: a follower arm by its short name.

``robot_type`` is the registered type without its ``_follower`` suffix (``so100``, ``so101``,
``koch``), so the leader/follower pair of one arm family reads the same on both sides.
"""

from __future__ import annotations

from typing import Any

from lerobot.robots.robot import ROBOT_CONFIGS, Robot, make_robot_from_config


def FollowerRobot(port: str, robot_type: str = "so100", **config_kwargs: Any) -> Robot:  # noqa: N802
    """The follower driver of ``robot_type`` on ``port`` (not connected); other fields as keywords."""
    known = [name.removesuffix("_follower") for name in ROBOT_CONFIGS.names() if name.endswith("_follower")]
    if robot_type not in known:
        raise ValueError(f"No follower arm of type {robot_type!r}; known: {', '.join(known)}.")
    config = ROBOT_CONFIGS.get(f"{robot_type}_follower")(port=port, **config_kwargs)
    return make_robot_from_config(config)
