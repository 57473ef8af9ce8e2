"""``lerobot-emulate-arm``: serve an emulated servo arm on a pseudo-terminal until Ctrl-C.

Point any ``--robot.port`` / ``--teleop.port`` at the printed ``/dev/pts/N`` to run the real bus code
without hardware (see :mod:`lerobot.motors.emulator`).
"""

from __future__ import annotations

import argparse
import time

from lerobot.configs.parser import HelpFormatter
from lerobot.motors.emulator import ARMS, DEFAULT_SPEED, start_emulated_arm
from lerobot.utils.cli import console_main


@console_main
def main(argv: list[str] | None = None) -> None:
    """``lerobot-emulate-arm --robot.type=so100_follower``: serve an emulated arm until Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="lerobot-emulate-arm", description=main.__doc__, formatter_class=HelpFormatter
    )
    parser.add_argument(
        "--robot.type", dest="robot_type", required=True, choices=sorted(ARMS), help="the arm to emulate"
    )
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED, help="motion speed in steps/s")
    args = parser.parse_args(argv)
    with start_emulated_arm(args.robot_type, args.speed) as emulator:
        print(f"Emulated {args.robot_type} on {emulator.port} (Ctrl-C to stop)", flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            print("Stopped.")


if __name__ == "__main__":
    main()
