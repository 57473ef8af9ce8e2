"""The one place that imports ZeroMQ, so a missing ``pyzmq`` gives one clear error for host and client."""

from __future__ import annotations

from types import ModuleType


def import_zmq() -> ModuleType:
    try:
        import zmq
    except ImportError as e:
        raise ImportError(
            "LeKiwi's host and client talk over ZeroMQ, which is not installed: pip install pyzmq"
        ) from e
    return zmq


def latest_only(socket) -> None:
    """Keep only the newest message in the socket's queue and drop unsent ones on close."""
    zmq = import_zmq()
    socket.setsockopt(zmq.CONFLATE, 1)
    socket.setsockopt(zmq.LINGER, 0)
