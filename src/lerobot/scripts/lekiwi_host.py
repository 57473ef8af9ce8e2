"""``lerobot-lekiwi-host``: run on LeKiwi's computer so a laptop can drive it over the network.

Two ZeroMQ sockets, both bound here: actions arrive on a PULL socket (``port_zmq_cmd``) and
observations leave on a PUSH socket (``port_zmq_observations``), both ``CONFLATE`` so only the newest
message is ever queued. The loop runs at most ``max_loop_freq_hz``: apply the newest action, check the
watchdog, publish an observation.

Watchdog: a laptop whose Wi-Fi drops, or a client that crashes, stops sending actions while the base
may still be driving at its last velocity. When no action arrived for ``watchdog_timeout_ms`` the
host zeroes the wheel velocities (the arm holds its last goal) until a new action comes.

Security: the host listens on 127.0.0.1 unless ``--host.bind_ip`` says otherwise, and refuses any
other address without a token (``$LEROBOT_LEKIWI_TOKEN`` or ``--host.auth_token``; CurveZMQ, see
:mod:`~lerobot.robots.lekiwi.zmq_utils`) unless ``--host.allow_unauthenticated=true``. Every action
message is checked (a JSON object with exactly the robot's action keys, finite numbers, at most
``max_action_bytes``); a bad one is logged and dropped and the loop goes on.

    export LEROBOT_LEKIWI_TOKEN=...   # python -c "import secrets; print(secrets.token_urlsafe(24))"
    lerobot-lekiwi-host --robot.port=/dev/ttyACM0 --robot.id=my_kiwi --host.bind_ip=0.0.0.0
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field

from lerobot.configs.parser import config_help, parse_config
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
        print(__doc__ + "\n" + "\n".join(config_help(LeKiwiHostMainConfig)))
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
