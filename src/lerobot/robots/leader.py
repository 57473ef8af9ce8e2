"""The guide's leader -> follower teleoperation: ``LeaderRobot`` and ``teleoperate_leader_follower``.

    leader = LeaderRobot(port="/dev/ttyACM1", robot_type="so100")
    follower = FollowerRobot(port="/dev/ttyACM0", robot_type="so100")
    teleoperate_leader_follower(leader, follower, fps=30, duration_s=60)

or, as the guide's own loop, ``LeaderRobot(config=SO100LeaderConfig(port=...))`` and
``follower.send_action({"joint_positions": leader.get_observation()["joint_positions"]})``.

The leader is a ``Teleoperator`` (its joint positions are the action); the loop is the one
``lerobot-record`` / ``lerobot-teleoperate`` use, so the follower behaves identically in all three.
"""

from __future__ import annotations

from typing import Any

from lerobot.robots.robot import Robot
from lerobot.teleoperators.teleoperator import (
    TELEOPERATOR_CONFIGS,
    Teleoperator,
    TeleoperatorConfig,
    make_teleoperator_from_config,
)
from lerobot.utils.control_loop import KeyboardEvents, RateLoop

UNTIL_STOPPED_S = 1e9  # "forever": until Esc or Ctrl-C


def LeaderRobot(  # noqa: N802
    port: str | None = None,
    robot_type: str = "so100",
    config: TeleoperatorConfig | None = None,
    **config_kwargs: Any,
) -> Teleoperator:
    """The leader arm of ``robot_type`` (``so100``, ``so101``, ``koch``) on ``port``, or of ``config``.

    Not connected. ``config`` is a registered leader config (``SO100LeaderConfig(port=..., id=...)``).
    """
    if config is not None:
        if port is not None or config_kwargs:
            raise TypeError("LeaderRobot takes either config=... or port=... with fields, not both.")
        if not isinstance(config, TeleoperatorConfig):
            raise TypeError(
                f"LeaderRobot(config=...) takes a leader config such as SO100LeaderConfig(port=...), "
                f"got {type(config).__name__}."
            )
        return make_teleoperator_from_config(config)
    if port is None:
        raise TypeError("LeaderRobot needs port=... (with robot_type=...) or config=....")
    known = [  # leader arms on a serial bus (the simulated leader has no port)
        name.removesuffix("_leader")
        for name in TELEOPERATOR_CONFIGS.names()
        if name.endswith("_leader")
        and "port" in getattr(TELEOPERATOR_CONFIGS.get(name), "__dataclass_fields__", {})
    ]
    if robot_type not in known:
        raise ValueError(f"No leader arm of type {robot_type!r}; known: {', '.join(known)}.")
    config = TELEOPERATOR_CONFIGS.get(f"{robot_type}_leader")(port=port, **config_kwargs)
    return make_teleoperator_from_config(config)


def teleoperate_leader_follower(
    leader: Teleoperator, follower: Robot, fps: int = 30, duration_s: float | None = None
) -> RateLoop:
    """Make ``follower`` copy ``leader`` at ``fps`` for ``duration_s`` (``None``: until Esc/Ctrl-C).

    Devices that are not connected yet are connected here, and those are disconnected (follower
    torque off) on the way out, also after an exception or Ctrl-C. Returns the loop, whose
    ``stats()`` say how many cycles ran on time.
    """
    from lerobot.scripts.record import record_loop  # the dataset stack is only needed from here on

    opened = [device for device in (follower, leader) if not device.is_connected]
    events = KeyboardEvents()
    try:
        for device in opened:
            device.connect()
        return record_loop(follower, leader.get_action, fps, duration_s or UNTIL_STOPPED_S, events)
    finally:
        events.stop()
        for device in opened:
            if device.is_connected:
                device.disconnect()
