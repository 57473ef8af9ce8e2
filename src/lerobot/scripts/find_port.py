"""``lerobot-find-port``: find the serial port of a motor bus by unplugging it.

Lists the serial ports, asks you to unplug the bus's USB cable, lists them again: the port that
disappeared is the one to pass as ``--robot.port`` / ``--teleop.port``. ``--include_pts=true`` also
lists pseudo-terminals (``/dev/pts/N``), where ``lerobot-emulate-arm`` serves emulated arms.
"""

from __future__ import annotations

import glob
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from lerobot.configs.parser import parse_config, print_help_if_asked

PERMISSION_HELP = (
    "If the adapter is plugged in but not listed (or listed but not usable), your user may lack access "
    "to serial devices. On Linux: `sudo usermod -aG dialout $USER` and log out and in again, or for this "
    "session only `sudo chmod 666 /dev/ttyACM0` (your port). Also try another cable: some USB cables "
    "carry power only."
)


@dataclass
class FindPortConfig:
    include_pts: bool = False
    """Also list /dev/pts/N pseudo-terminals (emulated arms)."""


def find_available_ports(include_pts: bool = False) -> list[str]:
    """Serial ports pyserial knows plus the usual USB-serial device names (and ``/dev/pts/N`` if asked)."""
    from serial.tools import list_ports

    ports = {port.device for port in list_ports.comports()}
    for pattern in ("/dev/ttyUSB*", "/dev/ttyACM*", "/dev/tty.usb*"):
        ports.update(glob.glob(pattern))
    if include_pts:
        ports.update(p for p in glob.glob("/dev/pts/*") if os.path.basename(p).isdigit())
    return sorted(ports)


def find_port(
    input_fn: Callable[[str], str] | None = None,
    list_ports: Callable[[], list[str]] = find_available_ports,
    settle_s: float = 0.5,
) -> str | None:
    """Interactive diff of the port list before/after unplugging; returns the port (``None``: no ports)."""
    before = list_ports()
    if not before:
        print(f"No serial ports found. {PERMISSION_HELP}")
        return None
    print("Ports found:\n  " + "\n  ".join(before))
    unusable = [p for p in before if not os.access(p, os.R_OK | os.W_OK)]
    if unusable:
        print(f"Your user cannot open {', '.join(unusable)}. {PERMISSION_HELP}")
    (input_fn or input)("Remove the USB cable from your motor bus and press ENTER when done.")
    time.sleep(settle_s)  # the OS takes a moment to remove the device node
    gone = sorted(set(before) - set(list_ports()))
    if len(gone) == 1:
        print(f"The port of this motor bus is '{gone[0]}'. Reconnect the USB cable.")
        return gone[0]
    if not gone:
        raise OSError("No port disappeared: was the right cable unplugged? Run lerobot-find-port again.")
    raise OSError(f"Several ports disappeared ({', '.join(gone)}); unplug only the motor bus and try again.")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, FindPortConfig):
        return 0
    cfg = parse_config(FindPortConfig, argv)
    try:
        port = find_port(list_ports=lambda: find_available_ports(cfg.include_pts))
    except OSError as e:  # the user unplugged nothing, or too much: say so, no traceback
        print(e)
        return 1
    return 0 if port else 1


if __name__ == "__main__":
    raise SystemExit(main())
