"""The LeKiwi host (``lerobot-lekiwi-host``, :mod:`lerobot.scripts.lekiwi_host`): run on LeKiwi's computer so a laptop can drive it over the network.

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
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field

from lerobot.robots.lekiwi.config import BASE_KEYS
from lerobot.robots.lekiwi.lekiwi import LeKiwi
from lerobot.robots.lekiwi.wire import decode_action, encode_observation
from lerobot.robots.lekiwi.zmq_utils import (
    TOKEN_ENV,
    import_zmq,
    latest_only,
    require_curve,
    secure_server,
    start_authenticator,
)
from lerobot.utils.net_security import check_exposure, resolve_token

logger = logging.getLogger(__name__)


@dataclass(kw_only=True)
class LeKiwiHostConfig:
    port_zmq_cmd: int = 5555
    """Port actions arrive on; 0 binds a free port (see ``LeKiwiHost.cmd_port``)."""
    port_zmq_observations: int = 5556
    """Port observations leave on; 0 binds a free port."""
    bind_ip: str = "127.0.0.1"
    """Interface to listen on. The default serves only this machine; for a laptop on the network use
    ``0.0.0.0`` (every interface) or the robot's address, together with ``auth_token``."""
    auth_token: str | None = field(default=None, repr=False)
    """Shared secret (at least 16 characters) the client must hold; better ``$LEROBOT_LEKIWI_TOKEN``
    (a flag shows in ``ps``). Turns on CurveZMQ: only token holders connect, all traffic is encrypted."""
    allow_unauthenticated: bool = False
    """Listen beyond this machine without a token (only on a network you fully trust)."""
    max_action_bytes: int = 64 << 10
    """Largest action message accepted (``ZMQ_MAXMSGSIZE``); a peer sending more is disconnected."""
    connection_time_s: float | None = None
    """Stop serving after this long (``None``: until Ctrl-C)."""
    watchdog_timeout_ms: int = 500
    """Stop the wheels when no action arrived for this long (the arm holds its last goal)."""
    max_loop_freq_hz: float = 30.0
    """Upper bound of the host loop's rate (apply action, check watchdog, publish observation)."""
    jpeg_quality: int = 90
    """JPEG quality (1-100) of the camera frames sent to the laptop."""

    def __post_init__(self) -> None:
        if self.watchdog_timeout_ms <= 0 or self.max_loop_freq_hz <= 0 or self.max_action_bytes <= 0:
            raise ValueError(
                f"watchdog_timeout_ms ({self.watchdog_timeout_ms}), max_loop_freq_hz "
                f"({self.max_loop_freq_hz}) and max_action_bytes ({self.max_action_bytes}) must be > 0."
            )


class LeKiwiHost:
    """Serves one connected :class:`LeKiwi` on two ZeroMQ sockets (see the module docstring)."""

    def __init__(self, robot: LeKiwi, config: LeKiwiHostConfig | None = None):
        zmq = import_zmq()
        self.robot = robot
        self.config = config or LeKiwiHostConfig()
        self._token = resolve_token(self.config.auth_token, TOKEN_ENV)
        check_exposure(
            self.config.bind_ip,
            self._token,
            self.config.allow_unauthenticated,
            "The LeKiwi host",
            TOKEN_ENV,
            "--host.",
        )
        if self._token is not None:
            require_curve()
        self._action_keys = list(robot.action_features)
        self._zmq = zmq
        self._context = zmq.Context()
        self._sockets: list = []
        self._auth = None
        try:
            if self._token is not None:
                self._auth = start_authenticator(self._context, self._token)
            self._cmd = self._bind(zmq.PULL, self.config.port_zmq_cmd, self.config.max_action_bytes)
            self._obs = self._bind(zmq.PUSH, self.config.port_zmq_observations, None)
        except BaseException:
            self.close()
            raise
        self.cmd_port = self._port_of(self._cmd)
        self.obs_port = self._port_of(self._obs)
        self.stop_event = threading.Event()
        self.watchdog_trips = 0
        self.rejected_messages = 0
        self._last_action = time.monotonic()
        self._base_moving = False

    def _bind(self, kind: int, port: int, max_message_bytes: int | None):
        socket = self._context.socket(kind)
        self._sockets.append(socket)
        latest_only(socket, max_message_bytes)
        if self._token is not None:
            secure_server(socket, self._token)
        address = f"tcp://{self.config.bind_ip}"
        try:
            if port == 0:
                socket.bind_to_random_port(address)
            else:
                socket.bind(f"{address}:{port}")
        except self._zmq.ZMQError as e:
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
                sent = self.robot.send_action(decode_action(message, self._action_keys))
            except ValueError as e:  # WireError or refused by the robot: keep serving, say why
                self.rejected_messages += 1
                logger.error("Rejected an action message of %d bytes: %s", len(message), e)
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
        for socket in self._sockets:
            socket.close()
        if self._auth is not None:
            self._auth.stop()
        self._context.term()
