"""Length-prefixed messages of a JSON header plus raw numpy arrays, over a TCP socket.

Why not pickle (as the reference's gRPC service does): a policy server listens on a network port, and
unpickling bytes from a socket runs arbitrary code. A message here is::

    b"LRA2" | uint32 header length | header JSON | array bytes, concatenated in header order

where the header is ``{"type": ..., ..., "arrays": [{"name", "dtype", "shape"}, ...]}``. Everything a
peer declares is checked before anything is allocated or parsed further: the header's size
(:data:`MAX_HEADER_BYTES`) and nesting (:data:`MAX_HEADER_DEPTH`), the number, dtypes and ranks of the
arrays, and the size of the whole message (``max_bytes``). A whole message must arrive within
``timeout_s``, so a peer that trickles bytes cannot hold a connection forever. Every violation is one
:class:`ProtocolError` naming the limit.
"""

from __future__ import annotations

import json
import math
import socket
import struct
import time
from typing import Any

import numpy as np

MAGIC = b"LRA2"
MAX_HEADER_BYTES = 64 << 10
MAX_HEADER_DEPTH = 8
MAX_ARRAYS = 64
MAX_ARRAY_DIMS = 8
MAX_NAME_CHARS = 256
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20  # several full-HD camera frames; far above any action chunk
TOKEN_ENV = "LEROBOT_POLICY_SERVER_TOKEN"  # the shared secret, read by server and client alike
_ALLOWED_DTYPES = {"uint8", "int32", "int64", "float16", "float32", "float64", "bool"}


class ProtocolError(ConnectionError):
    """The peer sent something that is not a message of this protocol (or hung up mid-message)."""


def send_message(
    sock: socket.socket, header: dict[str, Any], arrays: dict[str, np.ndarray] | None = None
) -> None:
    arrays = {k: np.ascontiguousarray(v) for k, v in (arrays or {}).items()}
    meta = [{"name": k, "dtype": str(v.dtype), "shape": list(v.shape)} for k, v in arrays.items()]
    head = json.dumps({**header, "arrays": meta}).encode()
    sock.sendall(
        b"".join([MAGIC, struct.pack("!I", len(head)), head, *(a.tobytes() for a in arrays.values())])
    )


def recv_message(
    sock: socket.socket, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, timeout_s: float | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One message; raises :class:`ProtocolError` on garbage and ``EOFError`` when the peer closed cleanly.

    ``timeout_s`` bounds the wait for the whole message (``None``: the socket's own timeout per read).
    """
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    previous_timeout = sock.gettimeout()
    try:
        return _recv_message(sock, max_bytes, deadline)
    finally:
        if deadline is not None:
            sock.settimeout(previous_timeout)  # the deadline was for this message only


def _recv_message(
    sock: socket.socket, max_bytes: int, deadline: float | None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    prefix = _recv_exact(sock, 8, deadline, allow_eof=True)
    if prefix is None:
        raise EOFError("The peer closed the connection.")
    if prefix[:4] != MAGIC:
        raise ProtocolError(
            f"Unexpected bytes {prefix[:4]!r} from the peer: it is not a lerobot policy server/client "
            "(check --server_address and that both sides run the same lerobot version)."
        )
    (head_len,) = struct.unpack("!I", prefix[4:])
    head_limit = min(MAX_HEADER_BYTES, max_bytes)
    if head_len > head_limit:
        raise ProtocolError(f"Message header of {head_len} bytes exceeds the {head_limit}-byte limit.")
    header = parse_header(_recv_exact(sock, head_len, deadline))
    specs = _array_specs(header.pop("arrays", []))
    total = 8 + head_len + sum(nbytes for *_, nbytes in specs)
    if total > max_bytes:
        raise ProtocolError(
            f"A message of {total} bytes exceeds this side's {max_bytes}-byte limit (max_message_bytes)."
        )
    arrays = {}
    for name, dtype, shape, nbytes in specs:
        arrays[name] = np.frombuffer(_recv_exact(sock, nbytes, deadline), dtype=dtype).reshape(shape)
    return header, arrays


def parse_header(raw: bytes) -> dict[str, Any]:
    """Header bytes -> dict with a string ``type``; any malformed, too deep or odd JSON is a ProtocolError."""
    try:
        header = json.loads(raw)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, 5000-digit integers, [[[[...
        raise ProtocolError(f"Malformed message header: {str(e)[:200]}") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ProtocolError("A message header must be a JSON object with a string 'type'.")
    if _depth_exceeds(header, MAX_HEADER_DEPTH):
        raise ProtocolError(f"Message header nested deeper than {MAX_HEADER_DEPTH} levels.")
    return header


def _depth_exceeds(obj: Any, limit: int) -> bool:
    """Whether ``obj`` nests containers deeper than ``limit`` (iterative: no recursion on hostile input)."""
    stack = [(obj, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return False


def _array_specs(meta: Any) -> list[tuple[str, np.dtype, tuple[int, ...], int]]:
    """Validate the declared arrays: ``[(name, dtype, shape, nbytes)]``, nothing allocated yet."""
    if not isinstance(meta, list) or len(meta) > MAX_ARRAYS:
        raise ProtocolError(f"'arrays' must be a list of at most {MAX_ARRAYS} array descriptions.")
    specs, names = [], set()
    for spec in meta:
        if not isinstance(spec, dict):
            raise ProtocolError("Each entry of 'arrays' must be an object with name, dtype and shape.")
        name, dtype, shape = spec.get("name"), spec.get("dtype"), spec.get("shape")
        if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_CHARS or name in names:
            raise ProtocolError(f"Array name {str(name)[:80]!r} is missing, too long or repeated.")
        if dtype not in _ALLOWED_DTYPES:
            raise ProtocolError(f"Array '{name}' has unsupported dtype {str(dtype)[:40]!r}.")
        if (
            not isinstance(shape, list)
            or len(shape) > MAX_ARRAY_DIMS
            or not all(type(d) is int and d >= 0 for d in shape)
        ):
            raise ProtocolError(
                f"Array '{name}' has shape {str(shape)[:80]}; expected at most {MAX_ARRAY_DIMS} "
                "non-negative integers."
            )
        dt = np.dtype(dtype)
        nbytes = dt.itemsize * math.prod(shape)  # Python ints: no overflow
        names.add(name)
        specs.append((name, dt, tuple(shape), nbytes))
    return specs


def _recv_exact(sock: socket.socket, n: int, deadline: float | None, allow_eof: bool = False) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ProtocolError("No complete message arrived in time; closing the connection.")
            sock.settimeout(remaining)
        try:
            chunk = sock.recv(min(n - len(buf), 1 << 20))
        except TimeoutError:
            raise ProtocolError("No complete message arrived in time; closing the connection.") from None
        if not chunk:
            if allow_eof and not buf:
                return None
            raise ProtocolError(f"The peer hung up after {len(buf)} of {n} bytes of a message.")
        buf += chunk
    return bytes(buf)


def parse_address(address: str) -> tuple[str, int]:
    """``"localhost:8080"`` -> ``("localhost", 8080)``, with an error that shows the expected form."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"Server address {address!r} must look like host:port, e.g. localhost:8080.")
    return host, int(port)
