"""LeKiwi: omni-base kinematics, the host on an emulated 9-motor bus, the client over ZeroMQ on localhost."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from lerobot.cameras import SimCameraConfig
from lerobot.motors import MotorCalibration, save_calibration
from lerobot.motors.emulator import FeetechEmulator
from lerobot.robots import ROBOT_CONFIGS, make_robot_from_config
from lerobot.robots.lekiwi import LeKiwi, LeKiwiClient, LeKiwiClientConfig, LeKiwiConfig, OmniBase
from lerobot.robots.lekiwi.config import ARM_MOTORS, WHEELS
from lerobot.robots.lekiwi.lekiwi_host import LeKiwiHost, LeKiwiHostConfig

REST = [2048, 1100, 3000, 2200, 2048, 1900]
CAMERAS = {"front": SimCameraConfig(width=64, height=48, fps=30)}


def wait_until(condition, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# ---------------------------------------------------------------------------------- kinematics


def test_omni_kinematics_round_trip_and_known_motions():
    base = OmniBase()
    rng = np.random.default_rng(0)
    for vx, vy, wz in rng.uniform(-0.3, 0.3, size=(50, 3)) * [1, 1, 300]:
        assert base.wheels_to_body(base.body_to_wheels(vx, vy, wz)) == pytest.approx((vx, vy, wz), abs=1e-9)
    # Pure rotation: every wheel turns at omega * R / r.
    np.testing.assert_allclose(base.body_to_wheels(0, 0, 90), np.full(3, np.pi / 2 * 0.125 / 0.05))
    # Straight ahead: the back wheel (rolling sideways) does not turn, left and right turn opposite.
    left, back, right = base.body_to_wheels(0.2, 0, 0)
    assert back == pytest.approx(0) and left == pytest.approx(-right) and left < 0


def test_wheel_speed_limit_keeps_the_direction():
    base = OmniBase(max_wheel_speed_raw=1000)
    raw = base.body_to_raw(2.0, 1.0, 0.0)  # far beyond what the wheels can do
    assert max(abs(v) for v in raw) == 1000
    vx, vy, _ = base.raw_to_body(raw)
    assert vx / vy == pytest.approx(2.0, rel=1e-2)


def test_invalid_dimensions_are_refused():
    with pytest.raises(ValueError, match="radius"):
        OmniBase(wheel_radius_m=0)


# ---------------------------------------------------------------------------------- features


def test_features_and_registry_without_hardware():
    client = make_robot_from_config(
        ROBOT_CONFIGS.get("lekiwi_client")(remote_ip="127.0.0.1", cameras=CAMERAS)
    )
    assert isinstance(client, LeKiwiClient)
    expected = [f"{m}.pos" for m in ARM_MOTORS] + ["x.vel", "y.vel", "theta.vel"]
    assert list(client.action_features) == expected
    assert client.observation_features == {**dict.fromkeys(expected, float), "front": (48, 64, 3)}
    robot = LeKiwi(LeKiwiConfig(port="/dev/null", cameras=CAMERAS))
    assert robot.observation_features == client.observation_features
    assert list(robot.bus.motors) == [*ARM_MOTORS, *WHEELS]
    assert [m.id for m in robot.bus.motors.values()] == list(range(1, 10))
    default = LeKiwiClientConfig(remote_ip="10.0.0.2")  # the stock front + wrist cameras
    assert LeKiwiClient(default).observation_features["wrist"] == (640, 480, 3)


def test_client_without_host_gives_a_clear_error():
    client = LeKiwiClient(
        remote_ip="127.0.0.1", port_zmq_cmd=1, port_zmq_observations=2, connect_timeout_s=0.2
    )
    with pytest.raises(ConnectionError, match="lerobot-lekiwi-host"):
        client.connect()
    assert not client.is_connected


# ---------------------------------------------------------------------------------- host + client


@pytest.fixture
def emulator():
    with FeetechEmulator() as emu:
        for motor_id in range(1, 10):
            emu.add_motor("sts3215", motor_id, 1_000_000, REST[motor_id - 1] if motor_id <= 6 else 2048)
        yield emu


@pytest.fixture
def kiwi(emulator, tmp_path):
    full_turn = {"arm_wrist_roll", *WHEELS}
    calibration = {
        name: MotorCalibration(i, 0, 0, *((0, 4095) if name in full_turn else (500, 3500)))
        for i, name in enumerate([*ARM_MOTORS, *WHEELS], start=1)
    }
    save_calibration(tmp_path / "kiwi.json", calibration)
    robot = LeKiwi(port=emulator.port, id="kiwi", calibration_dir=tmp_path, cameras=CAMERAS)
    robot.connect()
    yield robot
    if robot.is_connected:
        robot.disconnect()


@pytest.fixture
def served(kiwi):
    host = LeKiwiHost(
        kiwi,
        LeKiwiHostConfig(
            port_zmq_cmd=0, port_zmq_observations=0, bind_ip="127.0.0.1", watchdog_timeout_ms=300
        ),
    )
    thread = threading.Thread(target=host.serve, daemon=True)
    thread.start()
    client = LeKiwiClient(
        remote_ip="127.0.0.1",
        port_zmq_cmd=host.cmd_port,
        port_zmq_observations=host.obs_port,
        cameras=CAMERAS,
    )
    client.connect()
    yield host, client
    client.disconnect()
    host.stop_event.set()
    thread.join()
    host.close()


def goal_velocities(emulator) -> list[int]:
    return [emulator.motor(i).get("Goal_Velocity") for i in (7, 8, 9)]


def test_connect_puts_wheels_in_velocity_mode(kiwi, emulator):
    assert [emulator.motor(i).get("Operating_Mode") for i in range(1, 10)] == [0] * 6 + [1] * 3
    assert emulator.motor(6).get("Max_Torque_Limit") == 500


def test_actions_reach_the_motors_and_observations_come_back(served, emulator, kiwi):
    host, client = served
    obs = client.get_observation()
    assert set(obs) == set(client.observation_features)
    assert obs["front"].shape == (48, 64, 3) and obs["front"].dtype == np.uint8
    action = {f"{m}.pos": 0.0 for m in ARM_MOTORS} | {"arm_gripper.pos": 50.0}
    action |= {"arm_shoulder_pan.pos": 10.0, "x.vel": 0.1, "y.vel": 0.0, "theta.vel": 30.0}
    expected_raw = kiwi.base.body_to_raw(0.1, 0.0, 30.0)
    assert all(v != 0 for v in expected_raw)
    client.send_action(action)
    assert wait_until(lambda: goal_velocities(emulator) == expected_raw)
    # Arm goal in raw steps: 10 degrees from the centre (2000) of the calibrated range 500..3500.
    assert emulator.motor(1).get("Goal_Position") == int(10 * 4095 / 360 + 2000)
    # The wheels report the commanded speed; the client sees the body velocity it asked for.
    for motor_id, raw in zip((7, 8, 9), expected_raw):
        emulator.motor(motor_id).set("Present_Velocity", raw)

    def base_velocity_seen() -> bool:
        obs = client.get_observation()
        return (
            abs(obs["x.vel"] - 0.1) < 2e-3 and abs(obs["theta.vel"] - 30.0) < 0.5 and abs(obs["y.vel"]) < 2e-3
        )

    assert wait_until(base_velocity_seen)


def test_watchdog_stops_the_base_when_actions_stop(served, emulator, kiwi):
    host, client = served
    action = {f"{m}.pos": 0.0 for m in ARM_MOTORS} | {"x.vel": 0.0, "y.vel": 0.2, "theta.vel": 0.0}
    client.send_action(action)
    assert wait_until(lambda: any(goal_velocities(emulator)))
    assert wait_until(lambda: goal_velocities(emulator) == [0, 0, 0])  # no further action: watchdog trips
    assert host.watchdog_trips == 1
    assert emulator.motor(1).get("Torque_Enable") == 1  # the arm keeps holding its pose


def test_camera_size_mismatch_is_a_clear_error(served):
    host, _ = served
    wrong = LeKiwiClient(
        remote_ip="127.0.0.1",
        port_zmq_cmd=host.cmd_port,
        port_zmq_observations=host.obs_port,
        cameras={"front": SimCameraConfig(width=640, height=480, fps=30)},
    )
    with pytest.raises(ValueError, match="width/height"):
        wrong.connect()
    assert not wrong.is_connected  # the failed connect closed its sockets


def test_host_cli_serves_then_releases_the_robot(emulator, tmp_path):
    from lerobot.scripts.lekiwi_host import main

    calibration = {
        name: MotorCalibration(i, 0, 0, 0, 4095) for i, name in enumerate([*ARM_MOTORS, *WHEELS], start=1)
    }
    save_calibration(tmp_path / "kiwi.json", calibration)
    main([
        f"--robot.port={emulator.port}", "--robot.id=kiwi", f"--robot.calibration_dir={tmp_path}",
        "--robot.cameras={}", "--host.port_zmq_cmd=0", "--host.port_zmq_observations=0",
        "--host.bind_ip=127.0.0.1", "--host.connection_time_s=0.2",
    ])  # fmt: skip
    assert [emulator.motor(i).get("Torque_Enable") for i in range(1, 10)] == [0] * 9
