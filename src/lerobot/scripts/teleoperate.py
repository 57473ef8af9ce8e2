"""``lerobot-teleoperate``: drive a robot from a teleoperator at a fixed rate, without recording.

    lerobot-teleoperate --robot.type=so100_follower --robot.port=/dev/ttyACM0 \\
        --teleop.type=so100_leader --teleop.port=/dev/ttyACM1 --fps=60 [--teleop_time_s=30]
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.robots import RobotConfig, make_robot_from_config
from lerobot.scripts.device_choice import DEVICE_FLAG_ALIASES
from lerobot.scripts.record import connect_pair, record_loop
from lerobot.teleoperators import TeleoperatorConfig, make_teleoperator_from_config
from lerobot.utils.cli import console_main
from lerobot.utils.control_loop import KeyboardEvents, RateLoop
from lerobot.utils.live_view import LiveView


@dataclass
class TeleoperateConfig:
    robot: RobotConfig | None = None
    """The robot that follows (--robot.type=so100_follower --robot.port=...)."""
    teleop: TeleoperatorConfig | None = None
    """The device that leads (--teleop.type=so100_leader --teleop.port=...)."""
    fps: int = 60
    """Control loop rate in Hz."""
    teleop_time_s: float = 1e9
    """Stop after this many seconds (default: until Esc or Ctrl-C)."""
    realtime: bool = True
    """Pace the loop at fps (false: as fast as it runs, for simulated robots)."""
    display_data: bool = False
    """Show cameras, joints and actions live in the rerun viewer."""
    display_save_path: Path | None = None
    """With --display_data: write the live stream to this .rrd file instead of spawning the viewer."""


def teleoperate(cfg: TeleoperateConfig) -> RateLoop:
    if cfg.robot is None or cfg.teleop is None:
        raise ValueError("Choose both --robot.type=... and --teleop.type=...")
    robot = make_robot_from_config(cfg.robot)
    teleop = make_teleoperator_from_config(cfg.teleop)
    events = KeyboardEvents()
    view = LiveView("teleoperate", cfg.display_save_path) if cfg.display_data else None
    try:
        connect_pair(robot, teleop)
        return record_loop(
            robot, teleop.get_action, cfg.fps, cfg.teleop_time_s, events, realtime=cfg.realtime, view=view
        )
    finally:
        events.stop()
        if view is not None:
            view.close()
        for device in (teleop, robot):
            if device.is_connected:
                device.disconnect()


@console_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, TeleoperateConfig, DEVICE_FLAG_ALIASES):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stats = teleoperate(parse_config(TeleoperateConfig, argv, DEVICE_FLAG_ALIASES)).stats()
    print(f"Teleoperated {stats['cycles']} cycles; on time: {100 * stats.get('on_time_share', 0):.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
