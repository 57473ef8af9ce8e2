"""The guide's ``FollowerRobot(port=..., robot_type="so100")``: a follower arm by its short name.

``robot_type`` is the registered type without its ``_follower`` suffix (``so100``, ``so101``,
``koch``), so the leader/follower pair of one arm family reads the same on both sides.
``FollowerRobot(config=...)`` takes a whole config instead: a registered one
(``SO100FollowerConfig(...)``) or the guide's ``RobotConfig(robot_type="so100", port=...)``.
"""

from __future__ import annotations

from typing import Any

from lerobot.robots.robot import ROBOT_CONFIGS, Robot, make_robot_from_config


def FollowerRobot(  # noqa: N802
    port: str | None = None, robot_type: str = "so100", config: Any = None, **config_kwargs: Any
) -> Robot:
    """The follower driver of ``robot_type`` on ``port``, or of ``config`` (not connected)."""
    if config is not None:
        if port is not None or config_kwargs:
            raise TypeError("FollowerRobot takes either config=... or port=... with fields, not both.")
        registered = getattr(config, "robot_config", config)  # the guide's RobotConfig wraps one
        return make_robot_from_config(registered)
    if port is None:
        raise TypeError("FollowerRobot needs port=... (with robot_type=...) or config=....")
    known = [name.removesuffix("_follower") for name in ROBOT_CONFIGS.names() if name.endswith("_follower")]
    if robot_type not in known:
        raise ValueError(f"No follower arm of type {robot_type!r}; known: {', '.join(known)}.")
    config = ROBOT_CONFIGS.get(f"{robot_type}_follower")(port=port, **config_kwargs)
    return make_robot_from_config(config)
