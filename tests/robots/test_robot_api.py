"""The Robot API's two dialects, its checks, and the registry, on the documented template robot."""

import subprocess
import sys
import time

import numpy as np
import pytest

from lerobot.robots import ROBOT_CONFIGS, make_robot_from_config
from lerobot.robots.myrobot import MyRobot, MyRobotConfig
from lerobot.utils.registry import Registry

THREE_JOINTS = ["joint_1", "joint_2", "joint_3", "gripper"]  # a smaller arm than the default six


def test_template_robot_moves_toward_goal_and_answers_both_views():
    with MyRobot(MyRobotConfig(id="t", max_speed_deg_s=1e6, joints=THREE_JOINTS)) as robot:
        sent = robot.send_action({"joint_positions": [0.1, 0.2, 0.3], "gripper": 0.5})
        assert sent == {"joint_1.pos": 0.1, "joint_2.pos": 0.2, "joint_3.pos": 0.3, "gripper.pos": 0.5}
        time.sleep(0.01)  # the joints move with elapsed time; 10 ms at 1e6 deg/s reaches any goal
        obs = robot.get_observation()
        assert set(obs) == set(robot.observation_features)  # iteration sees only the flat keys
        np.testing.assert_allclose(obs["joint_positions"], [0.1, 0.2, 0.3], rtol=1e-6)
        assert obs["joint_positions"].dtype == np.float32
        assert obs["gripper"] == pytest.approx(0.5)
        assert obs["cameras"] == {}
        assert obs["joint_1.pos"] == pytest.approx(0.1)
    assert not robot.is_connected


def test_flat_action_and_clear_errors():
    robot = MyRobot(id="t", joints=THREE_JOINTS, max_speed_deg_s=1e6)
    robot.connect()
    robot.send_action({"joint_1.pos": 1, "joint_2.pos": 2, "joint_3.pos": 3, "gripper.pos": 0})
    with pytest.raises(
        ValueError, match=r"expects 3 joint positions \(joint_1.pos, joint_2.pos, joint_3.pos\), got 2"
    ):
        robot.send_action({"joint_positions": [0.1, 0.2], "gripper": 0.0})
    # no gripper in a structured action: the gripper holds its last target (the guide's G4 loop)
    assert robot.send_action({"joint_positions": [0.1, 0.2, 0.3]})["gripper.pos"] == 0.0
    with pytest.raises(
        ValueError, match=r"missing keys \['gripper.pos'\] and unexpected keys \['grip.pos'\]"
    ):
        robot.send_action({"joint_1.pos": 1, "joint_2.pos": 2, "joint_3.pos": 3, "grip.pos": 0})
    robot.disconnect()
    with pytest.raises(ConnectionError, match="not connected"):
        robot.get_observation()


def test_make_robot_from_config_and_unknown_type():
    robot = make_robot_from_config(MyRobotConfig(id="x"))
    assert isinstance(robot, MyRobot) and robot.calibration_fpath.name == "x.json"
    with pytest.raises(ValueError, match="Unknown robot type 'myrobott'. Did you mean 'myrobot'"):
        ROBOT_CONFIGS.get("myrobott")


def test_registry_refuses_duplicates():
    reg: Registry[type] = Registry("thing")

    @reg.register("a")
    class A:
        pass

    with pytest.raises(ValueError, match="already registered"):

        @reg.register("a")
        class B:
            pass

    assert A.type == "a" and reg.get("a") is A


def test_lazy_choice_is_listed_and_names_what_to_install():
    reg: Registry[type] = Registry("thing")
    reg.register_lazy("heavy", "lerobot_no_such_module", "pip install 'lerobot[heavy]'")
    assert "heavy" in reg and reg.names() == ["heavy"]
    with pytest.raises(ImportError, match=r"thing type 'heavy' needs lerobot_no_such_module: pip install"):
        reg.get("heavy")


def test_simulated_twins_load_mujoco_only_when_made():
    code = (
        "import sys\n"
        "from lerobot.robots import ROBOT_CONFIGS, make_robot_from_config\n"
        "config = ROBOT_CONFIGS.get('so100_sim')(task='pick_place')\n"
        "assert 'mujoco' not in sys.modules, 'importing lerobot.robots loaded MuJoCo'\n"
        "robot = make_robot_from_config(config)\n"
        "assert type(robot).__name__ == 'SO100Sim' and 'mujoco' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_calibration_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_LEROBOT_CALIBRATION", str(tmp_path))
    assert MyRobot(id="arm").calibration_fpath == tmp_path / "robots" / "myrobot" / "arm.json"


def test_structured_view_of_a_mobile_manipulator_holds_only_the_arm():
    from lerobot.robots.robot import RobotObservation, split_arm_gripper

    keys = ["arm_shoulder_pan.pos", "arm_elbow.pos", "arm_gripper.pos", "x.vel", "theta.vel"]
    assert split_arm_gripper(keys) == (["arm_shoulder_pan.pos", "arm_elbow.pos"], ["arm_gripper.pos"])
    obs = RobotObservation(dict(zip(keys, [1.0, 2.0, 30.0, 0.1, 0.2])), keys, [])
    assert obs["joint_positions"].tolist() == [1.0, 2.0] and obs["gripper"] == 30.0


def test_one_base_builds_or_refuses_the_config():
    """Device builds config_class(**fields); a config with fields, or of another class, is one TypeError."""
    from lerobot.teleoperators.sim_leader import SimLeader, SimLeaderConfig

    assert MyRobot(id="a").config == MyRobotConfig(id="a")
    with pytest.raises(TypeError, match="either a config or keyword fields"):
        MyRobot(MyRobotConfig(), id="a")
    with pytest.raises(TypeError, match="MyRobot needs a MyRobotConfig, got SimLeaderConfig"):
        MyRobot(SimLeaderConfig())
    with pytest.raises(TypeError, match="SimLeader needs a SimLeaderConfig, got MyRobotConfig"):
        SimLeader(config=MyRobotConfig())
