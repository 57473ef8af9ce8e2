"""A policy server: a policy on one machine (the GPU box) computes action chunks for robots elsewhere.

    python -m lerobot.async_inference.policy_server --policy.path=outputs/train/act/checkpoints/last/pretrained_model \\
        --host=0.0.0.0 --port=8080 [--policy.device=cuda]

A robot connects with ``lerobot-deploy ... --async_inference=true --server_address=gpu-box:8080`` (or
:class:`~lerobot.async_inference.robot_client.RemotePredictor`). Each connection is served on its own
thread: the client says hello (optionally naming a checkpoint the server should load instead), then
sends observations and gets ``(T, A)`` action chunks back. Messages are
:mod:`~lerobot.async_inference.transport` frames (JSON + raw arrays, never pickle). Only expose the
port on networks you trust: anyone who reaches it can drive the policy.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lerobot.async_inference.transport import ProtocolError, recv_message, send_message
from lerobot.utils.cli import console_main

logger = logging.getLogger(__name__)


def load_policy(path: str, device: str | None = None, cpu_acceleration: bool = True) -> Any:
    """A checkpoint folder or Hub id -> a policy in eval mode (any registered policy type).

    On the CPU it is accelerated (:mod:`lerobot.policies.cpu_acceleration`) unless ``cpu_acceleration``
    is false.
    """
    from lerobot.policies.config import PreTrainedConfig
    from lerobot.policies.cpu_acceleration import accelerate_on_cpu
    from lerobot.policies.factory import get_policy_class

    config = PreTrainedConfig.from_pretrained(path)
    policy = get_policy_class(config.type).from_pretrained(path)
    if device:
        policy.to(device)
    return accelerate_on_cpu(policy.eval(), cpu_acceleration)


class PolicyServer:
    """Serves ``policy`` (or the checkpoint a client names) on ``host:port`` until :meth:`stop`."""

    def __init__(
        self,
        policy: Any = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        device: str | None = None,
        cpu_acceleration: bool = True,
    ):
        self.policy, self.device, self.cpu_acceleration = policy, device, cpu_acceleration
        self._sock = socket.create_server((host, port))
        self.port = self._sock.getsockname()[1]  # the real port when 0 asked for a free one
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one inference at a time: the model is shared by all clients
        self._thread: threading.Thread | None = None

    def start(self) -> PolicyServer:
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="policy-server")
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, addr = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return  # closed by stop()
            threading.Thread(target=self._serve, args=(conn, addr), daemon=True).start()

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        logger.info("Robot client connected from %s", addr)
        with conn:
            try:
                header, _ = recv_message(conn)
                if header.get("type") != "hello":
                    raise ProtocolError(f"Expected a hello message first, got {header.get('type')!r}.")
                if header.get("policy_path"):
                    with self._lock:
                        self.policy = load_policy(header["policy_path"], self.device, self.cpu_acceleration)
                if self.policy is None:
                    send_message(conn, {"type": "error", "message": "no policy loaded; pass --policy.path"})
                    return
                cfg = self.policy.config
                send_message(
                    conn,
                    {"type": "ready", "policy_type": cfg.type, "input_features": sorted(cfg.input_features)},
                )
                while not self._stop.is_set():
                    header, arrays = recv_message(conn)
                    try:
                        chunk, ms = self._predict(arrays, header.get("task", ""))
                    except Exception as e:  # a bad observation must not kill the server
                        send_message(conn, {"type": "error", "message": f"{type(e).__name__}: {e}"})
                        continue
                    send_message(conn, {"type": "actions", "inference_ms": ms}, {"actions": chunk})
            except EOFError:
                logger.info("Robot client %s disconnected", addr)
            except (ProtocolError, OSError) as e:
                logger.warning("Dropped client %s: %s", addr, e)

    def _predict(self, observation: dict[str, np.ndarray], task: str) -> tuple[np.ndarray, float]:
        obs: dict[str, Any] = {k: torch.from_numpy(np.array(v)) for k, v in observation.items()}
        if task:
            obs["task"] = task
        start = time.perf_counter()
        with self._lock, torch.no_grad():
            chunk = self.policy.predict_action_chunk(obs)
        return chunk[0].cpu().numpy().astype(np.float32), 1e3 * (time.perf_counter() - start)

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=2.0)


@dataclass
class ServerPolicyConfig:
    path: str = ""
    """Checkpoint folder (``.../pretrained_model``) or Hub id; clients may also name one."""
    device: str | None = None


@dataclass
class PolicyServerConfig:
    policy: ServerPolicyConfig = field(default_factory=ServerPolicyConfig)
    host: str = "127.0.0.1"
    """Interface to listen on; 0.0.0.0 for every interface (trusted networks only)."""
    port: int = 8080
    cpu_acceleration: bool = True
    """On the CPU, swap in lerobot.policies.cpu_acceleration's faster modules (same math)."""


@console_main
def main(argv: list[str] | None = None) -> int:
    from lerobot.configs.parser import parse_config

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = parse_config(PolicyServerConfig, argv)
    policy = (
        load_policy(cfg.policy.path, cfg.policy.device, cfg.cpu_acceleration) if cfg.policy.path else None
    )
    server = PolicyServer(policy, cfg.host, cfg.port, cfg.policy.device, cfg.cpu_acceleration)
    print(f"Policy server listening on {cfg.host}:{server.port} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
