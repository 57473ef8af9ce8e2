"""LeKiwi, laptop side (``--robot.type=lekiwi_client``): the same features as the robot, over ZeroMQ.

Recording, teleoperation and policies use this class exactly like a local robot; it needs no motor
or camera driver, only the address of ``lerobot-lekiwi-host``. Observations are whatever the host
last published: ``get_observation`` waits ``polling_timeout_ms`` for a fresh one and otherwise returns
the previous one, so a momentary network hiccup does not stall the control loop (the host's watchdog
stops the base if the hiccup lasts).

The host is not trusted blindly either: a malformed observation (bad JSON, non-finite state, a frame
whose JPEG header does not match the camera's size) is logged and skipped, one larger than
``max_observation_mb`` is dropped by ZeroMQ (which then closes that connection), and once no valid
observation came for ``max_observation_age_s`` ``get_observation`` raises instead of going on
with an ever older one. With a token (``$LEROBOT_LEKIWI_TOKEN`` or ``auth_token``) the
client speaks CurveZMQ and only talks to a host holding the same token.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from lerobot.robots.lekiwi.config import LeKiwiClientConfig, lekiwi_features
from lerobot.robots.lekiwi.wire import WireError, decode_observation, encode_action
from lerobot.robots.lekiwi.zmq_utils import TOKEN_ENV, import_zmq, latest_only, require_curve, secure_client
from lerobot.robots.robot import ROBOTS, Robot
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError
from lerobot.utils.net_security import resolve_token

logger = logging.getLogger(__name__)


@ROBOTS.register("lekiwi_client")
class LeKiwiClient(Robot):
    config_class = LeKiwiClientConfig
    name = "lekiwi_client"
    config: LeKiwiClientConfig

    def __init__(self, config: LeKiwiClientConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self._context = None
        self._cmd = self._obs = None
        self._last: dict[str, Any] | None = None
        self._last_time = 0.0
        self.rejected_messages = 0

    def __repr__(self) -> str:
        return f"LeKiwiClient({self.config.remote_ip}:{self.config.port_zmq_cmd}/{self.config.port_zmq_observations})"

    @property
    def observation_features(self) -> dict[str, type | tuple[int, ...]]:
        return lekiwi_features(self.config.cameras)[0]

    @property
    def action_features(self) -> dict[str, type]:
        return lekiwi_features(self.config.cameras)[1]

    @property
    def is_connected(self) -> bool:
        return self._context is not None

    def connect(self, calibrate: bool = True) -> None:
        """Open both sockets and wait for the host's first observation (the arm is calibrated there)."""
        if self.is_connected:
            raise DeviceAlreadyConnectedError(f"{self!r} is already connected.")
        zmq = import_zmq()
        cfg = self.config
        token = resolve_token(cfg.auth_token, TOKEN_ENV)
        if token is not None:
            require_curve()
        self._context = zmq.Context()
        self._cmd = self._context.socket(zmq.PUSH)
        self._obs = self._context.socket(zmq.PULL)
        latest_only(self._cmd)
        latest_only(self._obs, cfg.max_observation_bytes())
        for socket, port in ((self._cmd, cfg.port_zmq_cmd), (self._obs, cfg.port_zmq_observations)):
            if token is not None:
                secure_client(socket, token)
            socket.connect(f"tcp://{cfg.remote_ip}:{port}")
        try:
            received = self._receive(cfg.connect_timeout_s * 1000)
        except BaseException:
            self.disconnect()
            raise
        if not received:
            self.disconnect()
            raise ConnectionError(
                f"No observation from a LeKiwi host at {cfg.remote_ip}:{cfg.port_zmq_observations} within "
                f"{cfg.connect_timeout_s} s. Start it on the robot (`lerobot-lekiwi-host --robot.port=...` "
                "with --host.bind_ip=0.0.0.0 to be reachable), check remote_ip, the ports and the firewall, "
                f"and that both sides have the same ${TOKEN_ENV} (or neither has one)."
            )

    def _receive(self, timeout_ms: float) -> bool:
        """Take the newest observation if one arrives within ``timeout_ms``; checks it against the features."""
        zmq = import_zmq()
        if not self._obs.poll(timeout_ms, zmq.POLLIN):
            return False
        features = self.observation_features
        obs = decode_observation(self._obs.recv(), {name: features[name] for name in self.camera_keys})
        missing = [k for k in features if k not in obs]
        if missing:
            raise WireError(
                f"The LeKiwi host sends no {missing}; the client's cameras ({list(self.config.cameras)}) "
                "must be the host's."
            )
        for name in self.camera_keys:
            if obs[name].shape != features[name]:
                raise WireError(
                    f"Camera '{name}' of the LeKiwi host sends {obs[name].shape} frames, but the client "
                    f"config says {features[name]}; set the client's width/height to the host's."
                )
        self._last = {k: obs[k] for k in features}
        self._last_time = time.monotonic()
        return True

    def _require_connected(self) -> None:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self!r} is not connected; call connect() first.")

    def _get_observation(self) -> dict[str, Any]:
        self._require_connected()
        try:
            self._receive(self.config.polling_timeout_ms)
        except WireError as e:  # one bad message must not stop the control loop: keep the last good one
            self.rejected_messages += 1
            logger.error("Skipped an invalid observation from the LeKiwi host: %s", e)
        age = time.monotonic() - self._last_time
        if age > self.config.max_observation_age_s:
            raise ConnectionError(
                f"No valid observation from the LeKiwi host for {age:.1f} s (max_observation_age_s="
                f"{self.config.max_observation_age_s}): the host stopped, the network dropped, or its messages "
                "were refused (see the log). Reconnect once the host is back."
            )
        return dict(self._last)

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        """Queue the action for the host (never blocks); the host applies its safety limits."""
        self._require_connected()
        self._cmd.send(encode_action(action), import_zmq().NOBLOCK)
        return action

    def disconnect(self) -> None:
        self._require_connected()
        self._cmd.close()
        self._obs.close()
        self._context.term()
        self._context = self._cmd = self._obs = None
        self._last = None
