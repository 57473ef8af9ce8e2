"""``lerobot-lekiwi-host``: run on LeKiwi's computer so a laptop can drive it over the network.

The protocol, watchdog and security rules are described in :mod:`lerobot.robots.lekiwi.lekiwi_host`
(printed with ``--help``).

    export LEROBOT_LEKIWI_TOKEN=...   # python -c "import secrets; print(secrets.token_urlsafe(24))"
    lerobot-lekiwi-host --robot.port=/dev/ttyACM0 --robot.id=my_kiwi --host.bind_ip=0.0.0.0
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from lerobot.configs.parser import config_help, parse_config
from lerobot.robots.lekiwi import lekiwi_host as host_module
from lerobot.robots.lekiwi.config import LeKiwiConfig
from lerobot.robots.lekiwi.lekiwi import LeKiwi
from lerobot.robots.lekiwi.lekiwi_host import LeKiwiHost, LeKiwiHostConfig
from lerobot.utils.cli import console_main

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class LeKiwiHostMainConfig:
    robot: LeKiwiConfig = field(default_factory=LeKiwiConfig)
    host: LeKiwiHostConfig = field(default_factory=LeKiwiHostConfig)


@console_main
def main(argv: list[str] | None = None) -> None:
    """Connect LeKiwi, serve it until Ctrl-C (or ``--host.connection_time_s``), then release it."""
    args = sys.argv[1:] if argv is None else argv
    if "-h" in args or "--help" in args:
        protocol = host_module.__doc__.split("\n", 1)[1]  # the behaviour, after the library's title line
        print(__doc__ + protocol + "\n" + "\n".join(config_help(LeKiwiHostMainConfig)))
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = parse_config(LeKiwiHostMainConfig, args)
    robot = LeKiwi(cfg.robot)
    robot.connect()
    host = None
    try:
        host = LeKiwiHost(robot, cfg.host)
        logger.info("LeKiwi host: actions on port %d, observations on port %d.", host.cmd_port, host.obs_port)
        host.serve()
    except KeyboardInterrupt:
        logger.info("Stopped by Ctrl-C.")
    finally:
        if host is not None:
            host.close()
        robot.disconnect()  # wheels stopped, torque off


if __name__ == "__main__":
    main()
