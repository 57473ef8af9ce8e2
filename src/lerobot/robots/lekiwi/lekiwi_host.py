"""``lerobot-lekiwi-host``: run on LeKiwi's computer so a laptop can drive it over the network.

Two ZeroMQ sockets, both bound here: actions arrive on a PULL socket (``port_zmq_cmd``) and
observations leave on a PUSH socket (``port_zmq_observations``), both ``CONFLATE`` so only the newest
message is ever queued. The loop runs at most ``max_loop_freq_hz``: apply the newest action, check the
watchdog, publish an observation.

Watchdog: a laptop whose Wi-Fi drops, or a client that crashes, stops sending actions while the base
may still be driving at its last velocity. When no action arrived for ``watchdog_timeout_ms`` the
host zeroes the wheel velocities (the arm holds its last goal) until a new action comes.

    lerobot-lekiwi-host --robot.port=/dev/ttyACM0 --robot.id=my_kiwi --host.watchdog_timeout_ms=500
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from dataclasses import dataclass, field

from lerobot.configs.parser import config_help, parse_config
from lerobot.robots.lekiwi.config import BASE_KEYS, LeKiwiConfig
from lerobot.robots.lekiwi.lekiwi import LeKiwi
from lerobot.robots.lekiwi.wire import decode_action, encode_observation
from lerobot.robots.lekiwi.zmq_utils import import_zmq, latest_only
from lerobot.utils.cli import console_main

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class LeKiwiHostConfig:
    port_zmq_cmd: int = 5555
    """Port actions arrive on; 0 binds a free port (see ``LeKiwiHost.cmd_port``)."""
    port_zmq_observations: int = 5556
    """Port observations leave on; 0 binds a free port."""
    bind_ip: str = "*"
    """Interface to listen on: ``*`` for every interface, ``127.0.0.1`` for this machine only."""
    connection_time_s: float | None = None
    """Stop serving after this long (``None``: until Ctrl-C)."""
    watchdog_timeout_ms: int = 500
    """Stop the wheels when no action arrived for this long (the arm holds its last goal)."""
    max_loop_freq_hz: float = 30.0
    """Upper bound of the host loop's rate (apply action, check watchdog, publish observation)."""
    jpeg_quality: int = 90
    """JPEG quality (1-100) of the camera frames sent to the laptop."""

    def __post_init__(self) -> None:
        if self.watchdog_timeout_ms <= 0 or self.max_loop_freq_hz <= 0:
            raise ValueError(
                f"watchdog_timeout_ms ({self.watchdog_timeout_ms}) and max_loop_freq_hz "
                f"({self.max_loop_freq_hz}) must be > 0."
            )


class LeKiwiHost:
    """Serves one connected :class:`LeKiwi` on two ZeroMQ sockets (see the module docstring)."""

    def __init__(self, robot: LeKiwi, config: LeKiwiHostConfig | None = None):
        zmq = import_zmq()
        self.robot = robot
        self.config = config or LeKiwiHostConfig()
        self._context = zmq.Context()
        self._zmq = zmq
        self._cmd = self._bind(zmq.PULL, self.config.port_zmq_cmd)
        self._obs = self._bind(zmq.PUSH, self.config.port_zmq_observations)
        self.cmd_port = self._port_of(self._cmd)
        self.obs_port = self._port_of(self._obs)
        self.stop_event = threading.Event()
        self.watchdog_trips = 0
        self._last_action = time.monotonic()
        self._base_moving = False

    def _bind(self, kind: int, port: int):
        socket = self._context.socket(kind)
        latest_only(socket)
        address = f"tcp://{self.config.bind_ip}"
        try:
            if port == 0:
                socket.bind_to_random_port(address)
            else:
                socket.bind(f"{address}:{port}")
        except self._zmq.ZMQError as e:
            socket.close()
            self._context.term()
            raise OSError(f"Cannot listen on {address}:{port} ({e}); is another lekiwi host running?") from e
        return socket

    def _port_of(self, socket) -> int:
        return int(socket.getsockopt_string(self._zmq.LAST_ENDPOINT).rsplit(":", 1)[1])

    def step(self) -> None:
        """One cycle: newest action (if any) to the robot, watchdog, one observation out."""
        zmq = self._zmq
        now = time.monotonic()
        try:
            message = self._cmd.recv(zmq.NOBLOCK)
        except zmq.Again:
            message = None
        if message is not None:
            try:
                sent = self.robot.send_action(decode_action(message))
            except ValueError as e:  # a malformed action is the client's bug: keep serving, say why
                logger.error("Ignoring an invalid action from the client: %s", e)
            else:
                self._last_action = now
                self._base_moving = any(sent[k] != 0 for k in BASE_KEYS)
        if self._base_moving and (now - self._last_action) * 1000 > self.config.watchdog_timeout_ms:
            logger.warning(
                "No action for %d ms: stopping the base (watchdog).", self.config.watchdog_timeout_ms
            )
            self.watchdog_trips += 1  # counted before the stop is written: a watcher of the wheels sees both
            self.robot.stop_base()
            self._base_moving = False
        obs = self.robot.get_observation()
        message = encode_observation(obs, list(self.robot.cameras), self.config.jpeg_quality)
        with contextlib.suppress(zmq.Again):  # no client connected: nothing to deliver to
            self._obs.send(message, zmq.NOBLOCK)

    def serve(self) -> None:
        """Run cycles until :attr:`stop_event` is set or ``connection_time_s`` is over."""
        period = 1.0 / self.config.max_loop_freq_hz
        start = time.monotonic()
        limit = self.config.connection_time_s
        while not self.stop_event.is_set() and (limit is None or time.monotonic() - start < limit):
            cycle = time.monotonic()
            self.step()
            self.stop_event.wait(max(0.0, period - (time.monotonic() - cycle)))

    def close(self) -> None:
        self._cmd.close()
        self._obs.close()
        self._context.term()


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
