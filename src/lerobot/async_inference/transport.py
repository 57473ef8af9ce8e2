"""Length-prefixed messages of a JSON header plus raw numpy arrays, over a TCP socket.

Why not pickle (as the reference's gRPC service does): a policy server listens on a network port, and
unpickling bytes from a socket runs arbitrary code. A message here is::

    b"LRAI" | uint32 header length | header JSON | array bytes, concatenated in header order

where the header is ``{"type": ..., ..., "arrays": [{"name", "dtype", "shape"}, ...]}``. Sizes are
checked against :data:`MAX_HEADER_BYTES` / :data:`MAX_ARRAY_BYTES` before anything is allocated, so a
peer that speaks another protocol gets a clear :class:`ProtocolError` rather than a 4 GB allocation.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

import numpy as np

MAGIC = b"LRAI"
MAX_HEADER_BYTES = 1 << 20
MAX_ARRAY_BYTES = 256 << 20  # a few 4K camera frames; far above any observation or action chunk
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


def recv_message(sock: socket.socket) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """One message; raises :class:`ProtocolError` on garbage and ``EOFError`` when the peer closed cleanly."""
    prefix = _recv_exact(sock, 8, allow_eof=True)
    if prefix is None:
        raise EOFError("The peer closed the connection.")
    if prefix[:4] != MAGIC:
        raise ProtocolError(
            f"Unexpected bytes {prefix[:4]!r} from the peer: it is not a lerobot policy server/client "
            "(check --server_address and that both sides run the same lerobot version)."
        )
    (head_len,) = struct.unpack("!I", prefix[4:])
    if head_len > MAX_HEADER_BYTES:
        raise ProtocolError(f"Message header of {head_len} bytes exceeds the {MAX_HEADER_BYTES}-byte limit.")
    try:
        header = json.loads(_recv_exact(sock, head_len))
    except json.JSONDecodeError as e:
        raise ProtocolError(f"Malformed message header: {e}") from e
    arrays = {}
    for spec in header.pop("arrays", []):
        if spec.get("dtype") not in _ALLOWED_DTYPES:
            raise ProtocolError(f"Array '{spec.get('name')}' has unsupported dtype {spec.get('dtype')!r}.")
        dtype = np.dtype(spec["dtype"])
        shape = tuple(int(d) for d in spec["shape"])
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes > MAX_ARRAY_BYTES:
            raise ProtocolError(
                f"Array '{spec['name']}' of {nbytes} bytes exceeds the {MAX_ARRAY_BYTES}-byte limit."
            )
        arrays[spec["name"]] = np.frombuffer(_recv_exact(sock, nbytes), dtype=dtype).reshape(shape)
    return header, arrays


def _recv_exact(sock: socket.socket, n: int, allow_eof: bool = False) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(min(n - len(buf), 1 << 20))
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
