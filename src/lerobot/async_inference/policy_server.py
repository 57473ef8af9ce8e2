"""A policy server: a policy on one machine (the GPU box) computes action chunks for robots elsewhere.

    export LEROBOT_POLICY_SERVER_TOKEN=...   # python -c "import secrets; print(secrets.token_urlsafe(24))"
    python -m lerobot.scripts.policy_server --policy.path=outputs/train/act/checkpoints/last/pretrained_model \\
        --host=0.0.0.0 --port=8080 [--policy.extra_paths='["outputs/other/pretrained_model"]'] [--policy.device=cuda]

A robot connects with ``lerobot-deploy ... --server_address=gpu-box:8080`` (same token in its
environment) or :class:`~lerobot.async_inference.robot_client.RemotePredictor`.

What a client can and cannot do:

- The operator names every checkpoint at start-up (``--policy.path``, the default, and optionally
  ``--policy.extra_paths``); all are loaded then. A client may pick one of those names in its hello
  and gets its own copy of that policy, so no client can change what another one runs, and nothing
  a client names is ever loaded from disk or the Hub.
- With a token (``--auth_token`` or ``$LEROBOT_POLICY_SERVER_TOKEN``) the server opens each connection
  with a random challenge and the client must answer ``HMAC-SHA256(token, challenge)``; the token itself
  never crosses the network. Wrong answers are refused (constant-time compare). The server binds
  127.0.0.1 by default and refuses any other address without a token unless
  ``--allow_unauthenticated=true``. The link is not encrypted: observations (camera frames) travel in
  the clear, so cross untrusted networks through an SSH tunnel or a VPN.
- Limits: ``max_connections`` at once (others are told the server is busy), a hello within
  ``handshake_timeout_s``, each later message within ``idle_timeout_s``, ``max_message_mb`` per message,
  and the header limits of :mod:`~lerobot.async_inference.transport`. A malformed message is answered
  with an error and the connection closed; nothing a client sends can end the server or another session.

Protocol (messages of :mod:`~lerobot.async_inference.transport`, JSON + raw arrays, never pickle)::

    server: {"type": "challenge", "nonce": hex, "auth_required": bool}
    client: {"type": "hello", "policy": name | null, "auth": hex | null}
    server: {"type": "ready", "policy": name, "policy_type": ..., "input_features": [...],
             "n_obs_steps": int, "rtc": bool} | {"type": "error"}
    client: {"type": "observation", "task": str, "timestep": int, "timestamp": float,
             ["inference_delay": int]} + arrays [+ "rtc.prev_chunk_left_over" (P, A)]
    server: {"type": "actions", "timestep": int, "timestamp": float, "inference_ms": float} + actions (T, A)

Every reply names the control step (and echoes the wall-clock time) of the observation it answers:
the client places the actions from that step on, drops those whose moment has passed, and discards
a reply meant for another request. Any registered policy is served: chunking policies answer with
their chunk, single-step ones with one action (see ``robot_client.policy_chunk``). With real-time
chunking on in the policy's config (``"rtc": true`` above) a request may carry the client's queued
actions and its inference delay, which the policy inpaints its chunk from.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import secrets
import socket
import threading
import time
from typing import Any

import numpy as np
import torch

from lerobot.async_inference.robot_client import PREFIX_KEY, policy_chunk
from lerobot.async_inference.transport import (
    DEFAULT_MAX_MESSAGE_BYTES,
    TOKEN_ENV,
    ProtocolError,
    recv_message,
    send_message,
)
from lerobot.policies.rtc.modeling_rtc import rtc_enabled
from lerobot.utils.net_security import check_exposure, hmac_hex, resolve_token, same_secret

logger = logging.getLogger(__name__)

MAX_TASK_CHARS = 4096
MAX_INFERENCE_DELAY = 10_000  # control steps; a larger one is a client bug, not a slow policy
AUTH_FAILURE_DELAY_S = 0.5  # slows guessing; with max_connections it caps attempts per second


POLICY_BACKENDS = ("auto", "torch", "onnxruntime", "torchscript", "torch_export")


def load_policy(
    path: str,
    device: str | None = None,
    cpu_acceleration: bool = True,
    rtc_config: Any = None,
    backend: str = "auto",
) -> Any:
    """A checkpoint folder or Hub id -> a policy in eval mode (any registered policy type).

    On the CPU it is accelerated (:mod:`lerobot.policies.cpu_acceleration`) unless ``cpu_acceleration``
    is false. ``rtc_config`` (an :class:`~lerobot.policies.rtc.configuration_rtc.RTCConfig`) replaces
    the checkpoint's real-time-chunking section; a policy type without real-time chunking refuses it
    (so does an exported model). An export folder (``lerobot-export``'s output, with ``metadata.json``) loads as an
    :class:`~lerobot.export.ExportedPolicy` on its runtime; ``backend`` names that runtime
    (``onnxruntime``, ...) or ``torch`` (eager PyTorch, checkpoints only); ``auto`` follows the folder.
    """
    from lerobot.export.runtime import RUNTIMES, is_export_folder, load_exported, read_metadata

    if backend not in POLICY_BACKENDS:
        raise ValueError(f"Unknown policy backend {backend!r}; choose one of {', '.join(POLICY_BACKENDS)}.")
    if is_export_folder(path):
        if rtc_config is not None:
            raise ValueError(
                f"--policy.rtc_config: {path} is an exported model, which has no real-time chunking; "
                "serve the checkpoint it came from, or leave --policy.rtc_config out."
            )
        if backend == "torch":
            runtime = RUNTIMES[read_metadata(path)["format"]]
            raise ValueError(
                f"{path} is an exported model: run it with --policy.backend={runtime} (or auto)."
            )
        return load_exported(path, None if backend == "auto" else backend)
    if backend not in ("auto", "torch"):
        raise ValueError(
            f"--policy.backend={backend} runs an exported model and {path} is a checkpoint: export it first "
            f"(lerobot-export --policy.path={path} --format=onnx --output=<folder>) and pass that folder."
        )
    from lerobot.policies.config import PreTrainedConfig
    from lerobot.policies.cpu_acceleration import accelerate_on_cpu
    from lerobot.policies.factory import get_policy_class

    config = PreTrainedConfig.from_pretrained(path)
    policy_cls = get_policy_class(config.type)
    if rtc_config is not None and not policy_cls.supports_rtc():
        raise ValueError(
            f"--policy.rtc_config: {config.type} policies have no real-time chunking (it needs a "
            "denoising sampler: Diffusion or a flow-matching policy). Leave --policy.rtc_config out."
        )
    policy = policy_cls.from_pretrained(path)
    if rtc_config is not None:
        policy.config.rtc_config = rtc_config
    if device:
        policy.to(device)
    return accelerate_on_cpu(policy.eval(), cpu_acceleration)


class PolicyServer:
    """Serves the operator's policies on ``host:port`` until :meth:`stop` (see the module docstring).

    ``policies`` is one policy object or ``{name: policy}``; the first is the default. Each session
    runs on a deep copy of the policy it chose, made when it says hello.
    """

    def __init__(
        self,
        policies: Any,
        host: str = "127.0.0.1",
        port: int = 8080,
        auth_token: str | None = None,
        allow_unauthenticated: bool = False,
        max_connections: int = 4,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        handshake_timeout_s: float = 5.0,
        idle_timeout_s: float = 60.0,
    ):
        if policies is None or (isinstance(policies, dict) and not policies):
            raise ValueError(
                "A policy server needs a policy: pass --policy.path=<checkpoint folder or Hub id>."
            )
        self.policies: dict[str, Any] = (
            dict(policies) if isinstance(policies, dict) else {"default": policies}
        )
        if max_connections < 1 or max_message_bytes < 1 or min(handshake_timeout_s, idle_timeout_s) <= 0:
            raise ValueError("max_connections, max_message_bytes and the timeouts must be positive.")
        self.auth_token = resolve_token(auth_token, TOKEN_ENV)
        check_exposure(host, self.auth_token, allow_unauthenticated, "The policy server", TOKEN_ENV)
        self.max_connections, self.max_message_bytes = max_connections, max_message_bytes
        self.handshake_timeout_s, self.idle_timeout_s = handshake_timeout_s, idle_timeout_s
        self._sock = socket.create_server((host, port))
        self.port = self._sock.getsockname()[1]  # the real port when 0 asked for a free one
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def default_policy(self) -> str:
        return next(iter(self.policies))

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
            with self._conns_lock:
                busy = len(self._conns) >= self.max_connections
                if not busy:
                    self._conns.add(conn)
            if busy:
                logger.warning("Refused %s: %d connections already open.", addr, self.max_connections)
                self._refuse(conn, f"server busy: {self.max_connections} connections already open")
                continue
            threading.Thread(
                target=self._serve, args=(conn, addr), daemon=True, name="policy-session"
            ).start()

    def _refuse(self, conn: socket.socket, message: str) -> None:
        """Say why, then close; a peer that does not read cannot block the accept loop."""
        with conn:
            self._try_send_error(conn, message)

    def _serve(self, conn: socket.socket, addr: Any) -> None:
        """One session. Whatever the client sends, this returns normally and closes the connection."""
        logger.info("Robot client connected from %s", addr)
        try:
            policy = self._handshake(conn, addr)
            if policy is not None:
                self._session(conn, policy)
        except EOFError:
            logger.info("Robot client %s disconnected", addr)
        except ProtocolError as e:
            logger.warning("Dropped client %s: %s", addr, e)
            self._try_send_error(conn, str(e))
        except OSError as e:
            logger.warning("Dropped client %s: %s", addr, e)
        except Exception:  # a bug here must end this session only, never the server
            logger.exception("Unexpected error serving %s; session closed", addr)
            self._try_send_error(conn, "internal server error; see the server log")
        finally:
            with self._conns_lock:
                self._conns.discard(conn)
            conn.close()

    @staticmethod
    def _try_send_error(conn: socket.socket, message: str) -> None:
        """Tell the peer why it is dropped, waiting at most 0.5 s for it to take the message."""
        try:
            conn.settimeout(0.5)
            send_message(conn, {"type": "error", "message": message})
        except OSError:
            pass  # the peer is gone or not reading: closing is all that is left

    def _handshake(self, conn: socket.socket, addr: Any) -> Any | None:
        """Challenge, hello, token check and policy choice -> this session's own policy (or None: refused)."""
        nonce = secrets.token_hex(16)
        conn.settimeout(self.handshake_timeout_s)
        send_message(
            conn, {"type": "challenge", "nonce": nonce, "auth_required": self.auth_token is not None}
        )
        header, _ = recv_message(conn, min(self.max_message_bytes, 1 << 16), self.handshake_timeout_s)
        if header["type"] != "hello":
            raise ProtocolError(f"Expected a hello message first, got {header['type'][:40]!r}.")
        if self.auth_token is not None and not same_secret(
            hmac_hex(self.auth_token, nonce), header.get("auth")
        ):
            logger.warning("Client %s failed authentication.", addr)
            time.sleep(AUTH_FAILURE_DELAY_S)
            send_message(
                conn,
                {
                    "type": "error",
                    "message": f"authentication failed: set the server's token in ${TOKEN_ENV}",
                },
            )
            return None
        name = header.get("policy") or self.default_policy
        if not isinstance(name, str) or name not in self.policies:
            send_message(
                conn,
                {
                    "type": "error",
                    "message": f"policy {str(name)[:200]!r} is not served here; this server serves "
                    f"{sorted(self.policies)} (the operator chooses them at start-up)",
                },
            )
            return None
        policy = copy.deepcopy(self.policies[name])  # this client's own instance
        cfg = policy.config
        send_message(
            conn,
            {
                "type": "ready",
                "policy": name,
                "policy_type": cfg.type,
                "input_features": sorted(cfg.input_features),
                "n_obs_steps": int(getattr(cfg, "n_obs_steps", 1) or 1),
                "rtc": rtc_enabled(policy),
            },
        )
        logger.info("Client %s runs policy %r", addr, name)
        return policy

    def _session(self, conn: socket.socket, policy: Any) -> None:
        while not self._stop.is_set():
            header, arrays = recv_message(conn, self.max_message_bytes, self.idle_timeout_s)
            task = header.get("task", "")
            if header["type"] != "observation" or not isinstance(task, str) or len(task) > MAX_TASK_CHARS:
                send_message(
                    conn,
                    {"type": "error", "message": "expected an observation message with a string task"},
                )
                continue
            stamp = {"timestep": header.get("timestep"), "timestamp": header.get("timestamp")}
            if not all(v is None or _is_number(v) for v in stamp.values()):
                send_message(conn, {"type": "error", "message": "timestep and timestamp must be numbers"})
                continue
            try:
                chunk, ms = self._predict(policy, arrays, task, header.get("inference_delay"))
            except Exception as e:  # a bad observation must not end the session
                send_message(
                    conn, {"type": "error", "message": f"{type(e).__name__}: {str(e)[:500]}", **stamp}
                )
                continue
            send_message(conn, {"type": "actions", "inference_ms": ms, **stamp}, {"actions": chunk})

    @staticmethod
    def _predict(
        policy: Any, observation: dict[str, np.ndarray], task: str, inference_delay: Any = None
    ) -> tuple[np.ndarray, float]:
        observation = dict(observation)
        prefix = observation.pop(PREFIX_KEY, None)
        if prefix is not None:
            if prefix.ndim != 2 or prefix.dtype.kind != "f" or not np.isfinite(prefix).all():
                raise ValueError(f"{PREFIX_KEY} must be a finite (P, A) float array.")
            if not isinstance(inference_delay, int) or not 0 <= inference_delay <= MAX_INFERENCE_DELAY:
                raise ValueError(f"inference_delay must be an integer in 0..{MAX_INFERENCE_DELAY}.")
            prefix = np.array(prefix)  # a writable copy of the received bytes
        obs: dict[str, Any] = {k: torch.from_numpy(np.array(v)) for k, v in observation.items()}
        if task:
            obs["task"] = task
        start = time.perf_counter()
        chunk = policy_chunk(policy, obs, inference_delay, prefix)
        return chunk.astype(np.float32), 1e3 * (time.perf_counter() - start)

    def stop(self) -> None:
        """Stop accepting, close every session, wait for the accept loop."""
        self._stop.set()
        self._sock.close()
        with self._conns_lock:
            for conn in list(self._conns):
                with contextlib.suppress(OSError):  # already closed by its own thread
                    conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=2.0)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)
