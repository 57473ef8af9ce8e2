"""Hostile clients of the policy server (issue 17, finding 9), on 127.0.0.1 only.

Each case sends what a probe sent: a hello naming a checkpoint to load, malformed or oversized
headers, missing or wrong tokens, too many or silent connections. The server must answer with an
error (or close), keep serving everyone else, never load anything a client names, and never let an
exception escape a thread.
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import lerobot.async_inference.policy_server as policy_server_module
import lerobot.scripts.policy_server as policy_server_cli
from lerobot.async_inference.policy_server import PolicyServer
from lerobot.async_inference.robot_client import RemotePredictor
from lerobot.async_inference.transport import MAGIC, TOKEN_ENV, ProtocolError, recv_message, send_message
from lerobot.scripts.robot_client import main as robot_client_main
from lerobot.utils.net_security import check_exposure, hmac_hex

TOKEN = "correct-horse-battery-staple-42"
STATE = {"observation.state": np.array([1, 2, 3, 4], dtype=np.float32)}


class OffsetPolicy:
    """Chunk of 3 actions ``state + offset`` (or all ``fill``)."""

    def __init__(self, offset: float = 0.0, fill: float | None = None, dim: int = 4):
        self.offset, self.fill, self.calls, self.dim = offset, fill, 0, dim
        self.config = SimpleNamespace(type="offset", input_features={"observation.state": None})

    def predict_action_chunk(self, obs):
        self.calls += 1
        state = torch.as_tensor(obs["observation.state"], dtype=torch.float32).reshape(1, 1, self.dim)
        chunk = state.repeat(1, 3, 1) + self.offset
        return torch.full_like(chunk, self.fill) if self.fill is not None else chunk


class CountingPolicy(OffsetPolicy):
    """Actions equal the number of chunks this instance computed: shows whether instances are shared."""

    def predict_action_chunk(self, obs):
        self.calls += 1
        return torch.full((1, 3, 4), float(self.calls))


@pytest.fixture(autouse=True)
def no_thread_dies(monkeypatch):
    """Fail the test if any server thread ends with an uncaught exception."""
    errors = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    yield
    assert not errors, f"uncaught exceptions in threads: {errors}"


@pytest.fixture(autouse=True)
def nothing_is_ever_loaded(monkeypatch):
    """After start-up the server must never load a checkpoint, whatever a client asks."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"the server tried to load {args}")

    monkeypatch.setattr(policy_server_module, "load_policy", refuse)


@pytest.fixture
def serve():
    servers = []

    def start(policies, **kwargs) -> PolicyServer:
        server = PolicyServer(policies, port=0, **kwargs).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def address(server: PolicyServer) -> str:
    return f"127.0.0.1:{server.port}"


def raw_session(server: PolicyServer) -> tuple[socket.socket, dict]:
    """A bare connection that has read the server's challenge."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5.0)
    challenge, _ = recv_message(sock, timeout_s=5.0)
    return sock, challenge


def frame(header_bytes: bytes, payload: bytes = b"", declared_len: int | None = None) -> bytes:
    n = len(header_bytes) if declared_len is None else declared_len
    return MAGIC + struct.pack("!I", n) + header_bytes + payload


def reply_then_close(sock: socket.socket) -> dict:
    """The server's answer to a bad message: one error, then the connection closes."""
    with sock:
        header, _ = recv_message(sock, timeout_s=5.0)
        with pytest.raises((EOFError, ProtocolError, ConnectionResetError)):
            recv_message(sock, timeout_s=5.0)
    return header


# ------------------------------------------------------------------ policies: only the operator's


def test_a_hello_naming_a_checkpoint_loads_nothing_and_changes_no_other_client(serve, tmp_path):
    server = serve({"operator/act": OffsetPolicy(0.5), "operator/other": OffsetPolicy(100.0)})
    victim = RemotePredictor(address(server))
    assert victim.info["policy"] == "operator/act"  # the first one is the default
    np.testing.assert_allclose(victim.predict_chunk(STATE)[0], [1.5, 2.5, 3.5, 4.5])
    evil = tmp_path / "evil_ckpt"
    evil.mkdir()
    (evil / "config.json").write_text('{"type": "act"}')
    for name in (str(evil), "../../etc", "lerobot/some_hub_policy", 7, ["operator/act"]):
        sock, _ = raw_session(server)
        send_message(sock, {"type": "hello", "policy": name})
        assert "is not served here" in reply_then_close(sock)["message"]
    # The victim still runs the operator's policy; a client may pick another of the operator's.
    np.testing.assert_allclose(victim.predict_chunk(STATE)[0], [1.5, 2.5, 3.5, 4.5])
    other = RemotePredictor(address(server), policy="operator/other")
    np.testing.assert_allclose(other.predict_chunk(STATE)[0], [101, 102, 103, 104])
    np.testing.assert_allclose(victim.predict_chunk(STATE)[0], [1.5, 2.5, 3.5, 4.5])
    victim.close()
    other.close()


def test_each_client_gets_its_own_policy_instance(serve):
    template = CountingPolicy()
    server = serve(template)
    first, second = RemotePredictor(address(server)), RemotePredictor(address(server))
    assert [first.predict_chunk(STATE)[0, 0] for _ in range(3)] == [1.0, 2.0, 3.0]
    assert second.predict_chunk(STATE)[0, 0] == 1.0  # untouched by the first client's calls
    assert template.calls == 0  # the operator's loaded policy itself never runs
    first.close()
    second.close()


def test_client_refuses_non_finite_or_oversized_chunks(serve):
    nan_server = serve(OffsetPolicy(fill=float("nan")))
    predictor = RemotePredictor(address(nan_server))
    with pytest.raises(RuntimeError, match="non-finite"):
        predictor.predict_chunk(STATE)
    predictor.close()
    small = RemotePredictor(address(serve(OffsetPolicy())), max_message_bytes=100)
    with pytest.raises(ProtocolError, match="exceeds (this side's|the) 100-byte limit"):
        small.predict_chunk(STATE)
    small.close()


# ------------------------------------------------------------------ token


def test_token_is_required_checked_and_never_sent(serve, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    monkeypatch.setattr(policy_server_module, "AUTH_FAILURE_DELAY_S", 0.01)  # keeps the test fast
    server = serve(OffsetPolicy(), auth_token=TOKEN)
    with pytest.raises(RuntimeError, match="requires a token"):
        RemotePredictor(address(server))
    with pytest.raises(RuntimeError, match="authentication failed"):
        RemotePredictor(address(server), auth_token="wrong-token-of-enough-length")
    # Hostile answers to the challenge: the token itself, garbage types, non-ASCII, a replayed proof.
    replayed = hmac_hex(TOKEN, "0" * 32)
    for auth in (TOKEN, None, 12, ["x"], {"a": 1}, "é" * 64, replayed):
        sock, challenge = raw_session(server)
        assert challenge["auth_required"] is True and TOKEN not in json.dumps(challenge)
        send_message(sock, {"type": "hello", "auth": auth})
        assert "authentication failed" in reply_then_close(sock)["message"]
    good = RemotePredictor(address(server), auth_token=TOKEN)
    assert good.predict_chunk(STATE).shape == (3, 4)
    good.close()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)  # the environment variable works on both sides
    from_env = RemotePredictor(address(server))
    assert from_env.info["type"] == "ready"
    from_env.close()


def test_exposed_address_needs_a_token_and_tokens_must_be_long(caplog):
    with pytest.raises(ValueError, match="without a token.*allow_unauthenticated"):
        PolicyServer(OffsetPolicy(), host="0.0.0.0", port=0)  # refused before anything binds
    with pytest.raises(ValueError, match="at least 16"):
        PolicyServer(OffsetPolicy(), port=0, auth_token="short")
    check_exposure("0.0.0.0", None, True, "The policy server", TOKEN_ENV)  # opted out: warns only
    assert "without a token" in caplog.text
    for loopback in ("127.0.0.1", "localhost", "::1"):
        check_exposure(loopback, None, False, "x", TOKEN_ENV)


# ------------------------------------------------------------------ malformed messages

HOSTILE_HELLOS = {
    "bad magic": b"GET / HTTP/1.1\r\n\r\n",
    "header length 4 GB": frame(b"", declared_len=2**32 - 1),
    "not JSON": frame(b"{not json"),
    "invalid UTF-8": frame(b'{"type": "\xff\xfe"}'),
    "nested 30000 deep": frame(b"[" * 30000 + b"]" * 30000),
    "nested 9 deep in a valid object": frame(
        json.dumps({"type": "hello", "x": [[[[[[[[[1]]]]]]]]]}).encode()
    ),
    "5000-digit integer": frame(b'{"type": "hello", "n": ' + b"9" * 5000 + b"}"),
    "header is a list": frame(b'["hello"]'),
    "type is not a string": frame(b'{"type": {"evil": 1}}'),
    "arrays not a list": frame(b'{"type": "hello", "arrays": "x"}'),
    "object dtype": frame(b'{"type": "hello", "arrays": [{"name": "a", "dtype": "object", "shape": [1]}]}'),
    "negative dim": frame(b'{"type": "hello", "arrays": [{"name": "a", "dtype": "uint8", "shape": [-1]}]}'),
    "boolean dim": frame(b'{"type": "hello", "arrays": [{"name": "a", "dtype": "uint8", "shape": [true]}]}'),
    "1 TB array": frame(
        b'{"type": "hello", "arrays": [{"name": "a", "dtype": "uint8", "shape": [1099511627776]}]}'
    ),
    "duplicate names": frame(
        b'{"type": "hello", "arrays": [{"name": "a", "dtype": "uint8", "shape": [1]},'
        b' {"name": "a", "dtype": "uint8", "shape": [1]}]}'
    ),
    "too many arrays": frame(
        json.dumps(
            {
                "type": "hello",
                "arrays": [{"name": f"a{i}", "dtype": "uint8", "shape": [0]} for i in range(65)],
            }
        ).encode()
    ),
    "not a hello": frame(b'{"type": "observation"}'),
    "truncated": frame(b'{"type": "hel', declared_len=200),
}


def test_every_malformed_hello_gets_an_error_and_the_server_keeps_serving(serve):
    server = serve(OffsetPolicy(), max_message_bytes=1 << 20, handshake_timeout_s=1.0)
    for case, data in HOSTILE_HELLOS.items():
        sock, _ = raw_session(server)
        sock.sendall(data)
        if case == "truncated":
            sock.shutdown(socket.SHUT_WR)  # hangs up mid-message: the server must just close
        answer = reply_then_close(sock)
        assert answer["type"] == "error" and answer["message"], case
    good = RemotePredictor(address(server))
    np.testing.assert_allclose(good.predict_chunk(STATE)[0], [1, 2, 3, 4])
    good.close()


def test_bad_observations_mid_session(serve):
    server = serve(OffsetPolicy(), max_message_bytes=1 << 20)
    client = RemotePredictor(address(server))
    # Wrong content is the policy's problem: an error reply, and the session goes on.
    with pytest.raises(RuntimeError, match="failed on this observation"):
        client.predict_chunk({"observation.state": np.zeros(7, dtype=np.float32)})
    for header in (
        {"type": "observation", "task": ["x"]},
        {"type": "observation", "task": "x" * 5000},
        {"type": "other"},
    ):
        send_message(client._sock, header, STATE)
        assert recv_message(client._sock, timeout_s=5.0)[0]["type"] == "error"
    np.testing.assert_allclose(client.predict_chunk(STATE)[0], [1, 2, 3, 4])
    # A message over the total limit (here 2 arrays of 0.6 MB each, each under it) is refused unread.
    big = {"a": np.zeros(600_000, np.uint8), "b": np.zeros(600_000, np.uint8)}
    with pytest.raises((RuntimeError, ProtocolError, ConnectionError), match="(?i)exceeds|reset|broken"):
        client.predict_chunk(big)
    client.close()
    assert RemotePredictor(address(server)).predict_chunk(STATE).shape == (3, 4)


# ------------------------------------------------------------------ connections and idle time


def test_connection_limit_and_timeouts(serve):
    server = serve(OffsetPolicy(), max_connections=2, handshake_timeout_s=1.0, idle_timeout_s=0.6)
    silent = [raw_session(server)[0] for _ in range(2)]
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="server busy"):
        RemotePredictor(address(server))
    for sock in silent:  # never said hello: dropped after the handshake timeout, with an error
        assert "in time" in reply_then_close(sock)["message"]
    assert time.monotonic() - start < 4.0
    # A client that trickles its hello slower than the handshake allows is dropped too.
    sock, _ = raw_session(server)
    hello = frame(json.dumps({"type": "hello"}).encode())
    start = time.monotonic()
    with sock, pytest.raises((BrokenPipeError, ConnectionResetError)):
        for byte in hello:  # 3.75 s at this pace: the server must hang up long before the end
            sock.sendall(bytes([byte]))
            time.sleep(0.15)
    assert time.monotonic() - start < 3.0
    # A session that goes quiet is closed after idle_timeout_s; a new one is then welcome.
    idle = RemotePredictor(address(server))
    time.sleep(0.9)
    with pytest.raises((RuntimeError, ConnectionError)):  # the server's error, or the closed socket
        idle.predict_chunk(STATE)
    idle.close()
    fresh = RemotePredictor(address(server))
    assert fresh.predict_chunk(STATE).shape == (3, 4)
    fresh.close()


# ------------------------------------------------------------------ CLIs


def test_help_works_on_server_and_client_clis(capsys):
    from lerobot.scripts.deploy import main as deploy_main

    assert policy_server_cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "--auth_token" in out and "--policy.extra_paths" in out and "--max_connections" in out
    deploy_main(["--help"])
    assert "--auth_token" in capsys.readouterr().out
    assert robot_client_main(["--help"]) == 0
    assert "--server_policy" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--server_address"):
        robot_client_main(["--robot.type=myrobot"])


def test_cli_refuses_exposed_address_before_loading_anything(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(ValueError, match="without a token"):
        policy_server_cli.main(["--policy.path=outputs/x", "--host=0.0.0.0", "--port=0"])


def test_deploy_cli_brings_the_token_and_picks_the_operators_policy(serve, monkeypatch, caplog):
    from lerobot.scripts.deploy import deploy, parse_deploy_config

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    server = serve(
        {"operator/a": OffsetPolicy(dim=7), "operator/b": OffsetPolicy(0.001, dim=7)}
    )  # myrobot: 6 joints + gripper
    caplog.set_level("INFO", logger=policy_server_module.__name__)
    cfg = parse_deploy_config([
        "--robot.type=myrobot", "--robot.max_speed_deg_s=1e6", f"--server_address={address(server)}",
        "--server_policy=operator/b", "--safety_checks=false", "--duration_s=0.2",
    ])  # fmt: skip
    assert TOKEN not in repr(cfg)
    report = deploy(cfg)
    assert report.steps > 0 and report.inference_ms
    assert "runs policy 'operator/b'" in caplog.text
