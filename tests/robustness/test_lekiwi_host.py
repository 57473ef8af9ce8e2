"""Hostile peers of the LeKiwi host and client (issue 17, finding 10), on 127.0.0.1 only.

The probe stopped the host's serve loop with one ``{"x.vel": [1]}`` and had it parse a 300 MB message
from anyone (bind ``*``, no auth). Here the real host runs on an emulated 9-motor bus: every hostile
action is rejected with a log line while the loop goes on, oversized messages are dropped by ZeroMQ
unparsed, the host binds loopback by default and refuses other addresses without a token, and with a
token only its holders can connect (CurveZMQ). The client skips bad observations the same way.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time

import numpy as np
import pytest
import zmq

from lerobot.cameras import SimCameraConfig
from lerobot.motors import MotorCalibration, save_calibration
from lerobot.motors.emulator import FeetechEmulator
from lerobot.robots.lekiwi import LeKiwi, LeKiwiClient
from lerobot.robots.lekiwi.config import ARM_MOTORS, WHEELS
from lerobot.robots.lekiwi.lekiwi_host import LeKiwiHost, LeKiwiHostConfig
from lerobot.robots.lekiwi.wire import encode_observation, jpeg_size
from lerobot.robots.lekiwi.zmq_utils import TOKEN_ENV
from lerobot.scripts.lekiwi_host import main

TOKEN = "kiwi-token-0123456789abcdef"
CAMERAS = {"front": SimCameraConfig(width=32, height=24, fps=30)}
ACTION_KEYS = [f"{m}.pos" for m in ARM_MOTORS] + ["x.vel", "y.vel", "theta.vel"]


def wait_until(condition, timeout_s: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def valid_action(pan: float = 0.0) -> dict[str, float]:
    return dict.fromkeys(ACTION_KEYS, 0.0) | {"arm_shoulder_pan.pos": pan}


@pytest.fixture
def kiwi(tmp_path, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with FeetechEmulator() as emu:
        for motor_id in range(1, 10):
            emu.add_motor("sts3215", motor_id, 1_000_000, 2048)
        calibration = {
            name: MotorCalibration(i, 0, 0, 500, 3500) for i, name in enumerate([*ARM_MOTORS, *WHEELS], 1)
        }
        save_calibration(tmp_path / "kiwi.json", calibration)
        robot = LeKiwi(port=emu.port, id="kiwi", calibration_dir=tmp_path, cameras=CAMERAS)
        robot.connect()
        robot.emulator = emu
        yield robot
        if robot.is_connected:
            robot.disconnect()


@pytest.fixture
def start_host(kiwi):
    running = []

    def start(**config) -> LeKiwiHost:
        cfg = LeKiwiHostConfig(port_zmq_cmd=0, port_zmq_observations=0, max_loop_freq_hz=100, **config)
        host = LeKiwiHost(kiwi, cfg)
        thread = threading.Thread(target=host.serve, daemon=True)
        thread.start()
        running.append((host, thread))
        return host

    yield start
    for host, thread in running:
        host.stop_event.set()
        thread.join(timeout=5)
        assert not thread.is_alive()
        host.close()


def client_for(host: LeKiwiHost, **kwargs) -> LeKiwiClient:
    return LeKiwiClient(
        remote_ip="127.0.0.1", port_zmq_cmd=host.cmd_port, port_zmq_observations=host.obs_port, cameras=CAMERAS,
        connect_timeout_s=kwargs.pop("connect_timeout_s", 3.0), **kwargs,
    )  # fmt: skip


def pan_goal(kiwi: LeKiwi) -> int:
    return kiwi.emulator.motor(1).get("Goal_Position")


HOSTILE_ACTIONS = {
    "the probe's list value": b'{"x.vel": [1]}',
    "list value with every key": json.dumps({**valid_action(), "x.vel": [1]}).encode(),
    "not JSON": b"{not json",
    "invalid UTF-8": b'{"x.vel": "\xff\xfe"}',
    "JSON array": b"[1, 2, 3]",
    "JSON string": b'"go"',
    "NaN": json.dumps({**valid_action(), "arm_gripper.pos": float("nan")}).encode(),
    "Infinity": json.dumps({**valid_action(), "theta.vel": float("inf")}).encode(),
    "1e400": json.dumps(valid_action()).replace('"y.vel": 0.0', '"y.vel": 1e400').encode(),
    "400-digit integer": json.dumps(valid_action()).replace('"y.vel": 0.0', '"y.vel": ' + "9" * 400).encode(),
    "5000-digit integer": json.dumps(valid_action())
    .replace('"y.vel": 0.0', '"y.vel": ' + "9" * 5000)
    .encode(),
    "boolean": json.dumps({**valid_action(), "x.vel": True}).encode(),
    "string number": json.dumps({**valid_action(), "x.vel": "0.1"}).encode(),
    "object value": json.dumps({**valid_action(), "x.vel": {"a": 1}}).encode(),
    "missing keys": json.dumps({"arm_shoulder_pan.pos": 10.0}).encode(),
    "unknown key": json.dumps({**valid_action(), "arm_elbow_flex.pos; rm -rf": 1.0}).encode(),
    "nested 30000 deep": b"[" * 30000 + b"]" * 30000,
    "empty": b"",
}


def test_every_hostile_action_is_rejected_with_a_log_line_and_serving_goes_on(start_host, kiwi, caplog):
    host = start_host(bind_ip="127.0.0.1")
    before = pan_goal(kiwi)
    ctx = zmq.Context()
    attacker = ctx.socket(zmq.PUSH)
    attacker.connect(f"tcp://127.0.0.1:{host.cmd_port}")
    try:
        for i, (case, message) in enumerate(HOSTILE_ACTIONS.items(), start=1):
            attacker.send(message)
            assert wait_until(lambda i=i: host.rejected_messages == i), case
        assert caplog.text.count("Rejected an action message") == len(HOSTILE_ACTIONS)
        assert pan_goal(kiwi) == before  # nothing hostile reached a motor
        # The loop is still serving: a valid action from a real client moves the arm.
        client = client_for(host)
        client.connect()
        client.send_action(valid_action(pan=10.0))
        assert wait_until(lambda: pan_goal(kiwi) != before)
        client.disconnect()
    finally:
        attacker.close()
        ctx.term()


def test_oversized_message_is_dropped_unparsed(start_host, kiwi, monkeypatch):
    parsed, loads = [], json.loads
    monkeypatch.setattr(json, "loads", lambda m, *a, **k: parsed.append(len(m)) or loads(m, *a, **k))
    host = start_host(bind_ip="127.0.0.1", max_action_bytes=4096)
    ctx = zmq.Context()
    attacker = ctx.socket(zmq.PUSH)
    attacker.connect(f"tcp://127.0.0.1:{host.cmd_port}")
    try:
        attacker.send(b'{"x.vel": ' + b"1" * (1 << 20) + b"}")  # 1 MB here, 300 MB in the probe
        time.sleep(0.3)
        assert max(parsed, default=0) < 4096 and host.rejected_messages == 0  # dropped before delivery
        client = client_for(host)
        client.connect()
        before = pan_goal(kiwi)
        client.send_action(valid_action(pan=-10.0))
        assert wait_until(lambda: pan_goal(kiwi) != before)
        client.disconnect()
    finally:
        attacker.close()
        ctx.term()


def test_host_binds_loopback_by_default_and_needs_a_token_elsewhere(kiwi):
    assert LeKiwiHostConfig().bind_ip == "127.0.0.1"
    for exposed in ("0.0.0.0", "*", "192.168.1.20"):
        with pytest.raises(ValueError, match="without a token.*allow_unauthenticated"):
            LeKiwiHost(kiwi, LeKiwiHostConfig(bind_ip=exposed))  # refused before anything binds
    with pytest.raises(ValueError, match="at least 16"):
        LeKiwiHost(kiwi, LeKiwiHostConfig(bind_ip="127.0.0.1", auth_token="short"))
    assert TOKEN not in repr(LeKiwiHostConfig(auth_token=TOKEN))


def test_with_a_token_only_token_holders_connect(start_host, kiwi, monkeypatch):
    host = start_host(bind_ip="127.0.0.1", auth_token=TOKEN)
    before = pan_goal(kiwi)
    for token in (None, "a-wrong-token-of-enough-length"):
        with pytest.raises(ConnectionError, match=TOKEN_ENV):
            client_for(host, auth_token=token, connect_timeout_s=0.5).connect()
    # A plain (non-Curve) peer cannot even deliver a valid action.
    ctx = zmq.Context()
    plain = ctx.socket(zmq.PUSH)
    plain.connect(f"tcp://127.0.0.1:{host.cmd_port}")
    plain.send(json.dumps(valid_action(pan=20.0)).encode(), zmq.NOBLOCK)
    time.sleep(0.3)
    assert pan_goal(kiwi) == before and host.rejected_messages == 0
    plain.close(linger=0)
    ctx.term()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)  # the environment variable is enough on the client side
    client = client_for(host)
    client.connect()
    assert client.get_observation()["front"].shape == (24, 32, 3)
    client.send_action(valid_action(pan=20.0))
    assert wait_until(lambda: pan_goal(kiwi) != before)
    client.disconnect()


def test_client_skips_bad_observations_and_bounds_their_size(monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    ctx = zmq.Context()
    fake_host = ctx.socket(zmq.PUSH)
    commands = ctx.socket(zmq.PULL)
    obs_port = fake_host.bind_to_random_port("tcp://127.0.0.1")
    cmd_port = commands.bind_to_random_port("tcp://127.0.0.1")
    state = dict.fromkeys(ACTION_KEYS, 0.0)
    frame = np.zeros((24, 32, 3), np.uint8)

    def observation(pan: float) -> bytes:
        return encode_observation({**state, "arm_shoulder_pan.pos": pan, "front": frame}, ["front"])

    good = json.loads(observation(0.0))
    jpeg = base64.b64decode(good["images"]["front"])
    assert jpeg_size(jpeg) == (24, 32)
    sof = jpeg.index(b"\xff\xc0")
    bomb = jpeg[: sof + 5] + (30000).to_bytes(2, "big") * 2 + jpeg[sof + 9 :]  # 30000x30000 declared
    assert jpeg_size(bomb) == (30000, 30000)
    hostile = [
        b"not json",
        json.dumps({**good, "state": {**good["state"], "x.vel": float("nan")}}).encode(),
        json.dumps({**good, "state": {**good["state"], "x.vel": [1]}}).encode(),
        json.dumps({**good, "images": {"front": "@@not base64@@"}}).encode(),
        json.dumps({**good, "images": {"front": base64.b64encode(bomb).decode()}}).encode(),
        json.dumps({**good, "images": {"front": 5}}).encode(),
        json.dumps({"state": {}}).encode(),
        b"[" * 30000,
    ]
    client = LeKiwiClient(
        remote_ip="127.0.0.1", port_zmq_cmd=cmd_port, port_zmq_observations=obs_port, cameras=CAMERAS,
        connect_timeout_s=3.0, polling_timeout_ms=50, max_observation_mb=0.25, max_observation_age_s=60,
    )  # fmt: skip
    try:
        sender = threading.Thread(target=lambda: [time.sleep(0.2), fake_host.send(observation(1.0))])
        sender.start()
        client.connect()
        sender.join()
        for i, message in enumerate(hostile, start=1):
            fake_host.send(message)
            seen = []  # every call returns the last good observation while the bad one is skipped
            assert wait_until(
                lambda i=i, seen=seen: seen.append(client.get_observation()) or client.rejected_messages == i
            )
            assert {obs["arm_shoulder_pan.pos"] for obs in seen} == {1.0}
        fake_host.send(observation(1.5))  # still connected: a good observation gets through
        assert wait_until(lambda: client.get_observation()["arm_shoulder_pan.pos"] == 1.5)
        client.config.max_observation_age_s = 1.0
        fake_host.send(b"x" * (1 << 20))  # over max_observation_mb: dropped by ZeroMQ, never parsed
        assert client.get_observation()["arm_shoulder_pan.pos"] == 1.5
        assert client.rejected_messages == len(hostile)
        # ZeroMQ does not reconnect after that protocol error: rather than hand out an ever older
        # observation, the client raises once the last valid one is older than max_observation_age_s.
        with pytest.raises(ConnectionError, match="max_observation_age_s"):
            for _ in range(50):
                with contextlib.suppress(zmq.Again):  # the client's connection is gone: nobody to send to
                    fake_host.send(observation(2.0), zmq.NOBLOCK)
                assert client.get_observation()["arm_shoulder_pan.pos"] == 1.5
        client.disconnect()
    finally:
        fake_host.close(linger=0)
        commands.close(linger=0)
        ctx.term()


def test_host_cli_help_names_the_security_flags(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    assert "--host.auth_token" in out and "--host.bind_ip" in out and "127.0.0.1" in out
