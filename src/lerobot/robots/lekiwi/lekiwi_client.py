"""LeKiwi, laptop side (``--robot.type=lekiwi_client``): the same features as the robot, over ZeroMQ.

Recording, teleoperation and policies use this class exactly like a local robot; it needs no motor
or camera driver, only the address of ``lerobot-lekiwi-host``. Observations are whatever the host
last published: ``get_observation`` waits ``polling_timeout_ms`` for a fresh one and otherwise returns
the previous one, so a momentary network hiccup does not stall the control loop (the host's watchdog
stops the base if the hiccup lasts).
"""

from __future__ import annotations

from typing import Any

from lerobot.robots.lekiwi.config import LeKiwiClientConfig, lekiwi_features
from lerobot.robots.lekiwi.wire import decode_observation, encode_action
from lerobot.robots.lekiwi.zmq_utils import import_zmq, latest_only
from lerobot.robots.robot import ROBOTS, Robot
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError


@ROBOTS.register("lekiwi_client")
class LeKiwiClient(Robot):
    config_class = LeKiwiClientConfig
    name = "lekiwi_client"
    config: LeKiwiClientConfig

    def __init__(self, config: LeKiwiClientConfig | None = None, **kwargs: Any):
        super().__init__(config or LeKiwiClientConfig(**kwargs))
        self._context = None
        self._cmd = self._obs = None
        self._last: dict[str, Any] | None = None

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
        self._context = zmq.Context()
        self._cmd = self._context.socket(zmq.PUSH)
        self._obs = self._context.socket(zmq.PULL)
        for socket, port in ((self._cmd, cfg.port_zmq_cmd), (self._obs, cfg.port_zmq_observations)):
            latest_only(socket)
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
                f"{cfg.connect_timeout_s} s. Start it on the robot (`lerobot-lekiwi-host --robot.port=...`) "
                "and check remote_ip, the ports and the firewall."
            )

    def _receive(self, timeout_ms: float) -> bool:
        """Take the newest observation if one arrives within ``timeout_ms``; checks it against the features."""
        zmq = import_zmq()
        if not self._obs.poll(timeout_ms, zmq.POLLIN):
            return False
        obs = decode_observation(self._obs.recv())
        features = self.observation_features
        missing = [k for k in features if k not in obs]
        if missing:
            raise ValueError(
                f"The LeKiwi host sends no {missing}; the client's cameras ({list(self.config.cameras)}) "
                "must be the host's."
            )
        for name in self.camera_keys:
            if obs[name].shape != features[name]:
                raise ValueError(
                    f"Camera '{name}' of the LeKiwi host sends {obs[name].shape} frames, but the client "
                    f"config says {features[name]}; set the client's width/height to the host's."
                )
        self._last = {k: obs[k] for k in features}
        return True

    def _require_connected(self) -> None:
        if not self.is_connected:
            raise DeviceNotConnectedError(f"{self!r} is not connected; call connect() first.")

    def _get_observation(self) -> dict[str, Any]:
        self._require_connected()
        self._receive(self.config.polling_timeout_ms)
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
