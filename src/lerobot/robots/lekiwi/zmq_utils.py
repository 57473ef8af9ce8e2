"""ZeroMQ for LeKiwi's host and client: one import with a clear error, socket options, CurveZMQ from a token.

Security: with a shared token (``LEROBOT_LEKIWI_TOKEN`` or ``auth_token``) both sides derive CurveZMQ
key pairs from it, one for the host and one for the client. The host only completes handshakes with
a peer holding the client's key (checked by a ZAP handler in constant time), so without the token
nobody can send actions or receive observations, and all traffic (camera frames included) is
encrypted. Nothing but the token has to be distributed; it never crosses the network.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from types import ModuleType
from typing import Any

TOKEN_ENV = "LEROBOT_LEKIWI_TOKEN"

logger = logging.getLogger(__name__)


def import_zmq() -> ModuleType:
    try:
        import zmq
    except ImportError as e:
        raise ImportError(
            "LeKiwi's host and client talk over ZeroMQ, which is not installed: pip install pyzmq"
        ) from e
    return zmq


def latest_only(socket, max_message_bytes: int | None = None) -> None:
    """Keep only the newest message in the socket's queue and drop unsent ones on close.

    ``max_message_bytes`` makes ZeroMQ drop any peer that sends a bigger message before it is
    buffered (``ZMQ_MAXMSGSIZE``); the peer may reconnect and send valid messages again.
    """
    zmq = import_zmq()
    socket.setsockopt(zmq.CONFLATE, 1)
    socket.setsockopt(zmq.LINGER, 0)
    if max_message_bytes is not None:
        socket.setsockopt(zmq.MAXMSGSIZE, int(max_message_bytes))


def curve_keys(token: str, role: str) -> tuple[bytes, bytes]:
    """``(public, secret)`` Z85 CurveZMQ keys of ``role`` ("host" or "client"), derived from ``token``."""
    zmq = import_zmq()
    from zmq.utils import z85

    secret = z85.encode(hmac.new(token.encode(), f"lerobot-lekiwi-{role}".encode(), hashlib.sha256).digest())
    return zmq.curve_public(secret), secret


def require_curve() -> None:
    if not import_zmq().has("curve"):
        raise ImportError(
            "A LeKiwi auth token needs ZeroMQ built with CurveZMQ (libsodium): pip install pyzmq"
        )


def secure_server(socket, token: str) -> None:
    """Make a bound socket a CurveZMQ server with the host's keys (call before bind)."""
    public, secret = curve_keys(token, "host")
    socket.curve_server = True
    socket.curve_publickey, socket.curve_secretkey = public, secret


def secure_client(socket, token: str) -> None:
    """Make a connecting socket a CurveZMQ client that expects the host's key (call before connect)."""
    public, secret = curve_keys(token, "client")
    socket.curve_serverkey = curve_keys(token, "host")[0]
    socket.curve_publickey, socket.curve_secretkey = public, secret


class _ClientKeyCheck:
    """ZAP callback: only the client key derived from the token may finish a handshake."""

    def __init__(self, token: str):
        self._expected = curve_keys(token, "client")[0]

    def callback(self, domain: str, key: bytes) -> bool:
        allowed = hmac.compare_digest(key, self._expected)
        if not allowed:
            logger.warning("Refused a LeKiwi peer whose CurveZMQ key does not come from the host's token.")
        return allowed


def start_authenticator(context, token: str) -> Any:
    """Start a ZAP handler on ``context`` that admits only token holders; call ``.stop()`` when done."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context, log=logging.getLogger(f"{__name__}.zap"))
    auth.start()
    auth.configure_curve_callback("*", _ClientKeyCheck(token))
    return auth
