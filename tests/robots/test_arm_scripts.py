"""The arm CLIs (calibrate, setup-motors, find-port, record) and the guide's helpers, on emulated arms."""

from __future__ import annotations

import builtins

import numpy as np
import pytest
from tests.datasets.validate import validate_v30
from tests.robots.arm_helpers import REST, raw_to_degrees, scripted_calibration_input, write_calibration_file

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.motors import load_calibration
from lerobot.motors.emulator import DynamixelEmulator, FeetechEmulator, start_emulated_arm
from lerobot.robots.so100 import SO100Robot
from lerobot.robots.so100_follower import SO100Follower
from lerobot.scripts import calibrate, find_port, setup_motors
from lerobot.scripts.record import parse_record_config, record


@pytest.mark.parametrize("section", ["robot", "teleop"])
def test_lerobot_calibrate_with_injected_input(tmp_path, monkeypatch, section):
    kind = "so100_follower" if section == "robot" else "so100_leader"
    with start_emulated_arm(kind) as emu:
        monkeypatch.setattr(builtins, "input", scripted_calibration_input(emu, REST, spread=300))
        argv = [f"--{section}.type={kind}", f"--{section}.port={emu.port}", f"--{section}.id=cli",
                f"--{section}.calibration_dir={tmp_path}"]  # fmt: skip
        assert calibrate.main(argv) == 0
        saved = load_calibration(tmp_path / "cli.json")
        assert saved["shoulder_lift"].range_max - saved["shoulder_lift"].range_min == pytest.approx(
            600, abs=2
        )
        assert [emu.motor(i).get("Torque_Enable") for i in range(1, 7)] == [0] * 6  # released after


def test_lerobot_calibrate_needs_exactly_one_device():
    with pytest.raises(ValueError, match="exactly one device"):
        calibrate.calibrate(calibrate.CalibrateConfig())


@pytest.mark.parametrize(
    ("emu_cls", "kind", "model"),
    [(FeetechEmulator, "so100_follower", "sts3215"), (DynamixelEmulator, "koch_leader", "xl330-m077")],
)
def test_setup_motors_one_factory_new_motor_at_a_time(emu_cls, kind, model, monkeypatch, capsys):
    section = "robot" if kind.endswith("follower") else "teleop"
    with emu_cls() as emu:
        done = []

        def plug_next_new_motor(prompt: str) -> str:
            assert "only" in prompt
            for motor in emu.motors.copy().values():  # unplug the motor set up in the previous step
                done.append(emu.remove_motor(motor.id))
            emu.add_motor(model)  # id 1, the vendor's factory baud rate
            return ""

        monkeypatch.setattr(builtins, "input", plug_next_new_motor)
        assert setup_motors.main([f"--{section}.type={kind}", f"--{section}.port={emu.port}"]) == 0
        for motor in done:
            emu.plug(motor)
        assert sorted(emu.motors) == [1, 2, 3, 4, 5, 6]
        assert "'gripper' motor id set to 6" in capsys.readouterr().out.splitlines()[0]
        assert {m.get("Baud_Rate") for m in emu.motors.values()} == {emu.protocol.baudrates[1_000_000]}


def test_find_port_diffs_the_ports_around_unplugging(capsys):
    emu = FeetechEmulator()
    try:
        port = find_port.find_port(
            input_fn=lambda prompt: emu.close(),
            list_ports=lambda: find_port.find_available_ports(include_pts=True),
            settle_s=0,
        )
    finally:
        emu.close()
    assert port == emu.port and f"'{emu.port}'" in capsys.readouterr().out


def test_find_port_without_ports_explains_permissions(capsys):
    assert find_port.find_port(list_ports=list, settle_s=0) is None
    out = capsys.readouterr().out
    assert "No serial ports found" in out and "usermod -aG dialout" in out and "chmod 666" in out
    with pytest.raises(OSError, match="No port disappeared"):
        find_port.find_port(input_fn=str, list_ports=lambda: ["/dev/ttyACM0"], settle_s=0)


def test_so100robot_of_the_guide(tmp_path):
    write_calibration_file(tmp_path, "guide")
    with start_emulated_arm("so100_follower") as emu:
        robot = SO100Robot(port=emu.port, id="guide", calibration_dir=tmp_path, max_relative_target=20.0)
        assert isinstance(robot, SO100Follower) and robot.config.max_relative_target == 20.0
        assert SO100Robot().config.port == "/dev/ttyUSB0"
        with robot:
            obs = robot.get_observation()
            assert obs["joint_positions"][1] == pytest.approx(raw_to_degrees(REST[1]), abs=0.1)
            robot.send_action({"joint_positions": obs["joint_positions"], "gripper": 50.0})


def test_lerobot_record_on_two_emulated_arms(tmp_path):
    write_calibration_file(tmp_path / "f", "f")
    write_calibration_file(tmp_path / "l", "l")
    root = tmp_path / "ds"
    with start_emulated_arm("so100_follower") as foll, start_emulated_arm("so100_leader") as lead:
        lead.move_by_hand(2, 1800)
        cfg = parse_record_config(
            ["--robot.type=so100_follower", f"--robot.port={foll.port}", "--robot.id=f",
             f"--robot.calibration_dir={tmp_path / 'f'}", "--teleop.type=so100_leader",
             f"--teleop.port={lead.port}", "--teleop.id=l", f"--teleop.calibration_dir={tmp_path / 'l'}",
             "--dataset.repo_id=me/so100", f"--dataset.root={root}", "--dataset.num_episodes=2",
             "--dataset.episode_time_s=1", "--dataset.reset_time_s=0", "--dataset.fps=10",
             "--dataset.single_task=follow", "--realtime=false"]
        )  # fmt: skip
        record(cfg)
        assert foll.motor(1).get("Torque_Enable") == 0  # lerobot-record disconnected the follower
    validate_v30(root)
    ds = LeRobotDataset("me/so100", root=root)
    assert ds.num_episodes == 2 and len(ds) == 20 and ds.meta.robot_type == "so_follower"
    assert ds.features["observation.state"]["names"][0] == "shoulder_pan.pos"
    expected = raw_to_degrees(1800)  # the leader's shoulder_lift, as the action of every frame
    np.testing.assert_allclose(ds[3]["action"].numpy()[1], expected, atol=0.1)
