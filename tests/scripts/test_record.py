"""lerobot-record on the template robot with a scripted teleoperator: a valid dataset, both spellings."""

import json
from dataclasses import dataclass

import numpy as np
import pytest
from tests.datasets.validate import validate_v30

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.scripts.record import main, parse_record_config, record
from lerobot.teleoperators import TELEOPERATOR_CONFIGS, TELEOPERATORS, Teleoperator, TeleoperatorConfig


@TELEOPERATOR_CONFIGS.register("test_sine")
@dataclass(kw_only=True)
class SineTeleopConfig(TeleoperatorConfig):
    joints: tuple[str, ...] = (*(f"joint_{i}" for i in range(1, 7)), "gripper")  # myrobot's


@TELEOPERATORS.register("test_sine")
class SineTeleop(Teleoperator):
    """A script standing in for a person: slow sines on every joint."""

    config_class = SineTeleopConfig
    name = "test_sine"

    def __init__(self, config):
        super().__init__(config)
        self._t, self._on = 0, False

    @property
    def action_features(self):
        return {f"{j}.pos": float for j in self.config.joints}

    @property
    def is_connected(self):
        return self._on

    def connect(self, calibrate=True):
        self._on = True

    def reset(self, seed=0):
        self._t = 0

    def get_action(self):
        self._t += 1
        return {f"{j}.pos": float(np.sin(0.1 * self._t + i)) for i, j in enumerate(self.config.joints)}

    def disconnect(self):
        self._on = False


def test_guide_and_lerobot_spellings_parse_alike(tmp_path):
    a = parse_record_config(
        ["--robot.type=myrobot", "--teleop.type=test_sine", "--dataset.repo_id=me/x", "--dataset.num_episodes=2",
         "--dataset.episode_time_s=1", "--dataset.fps=10"]
    )  # fmt: skip
    robot_cfg = tmp_path / "robot.json"
    robot_cfg.write_text(json.dumps({"type": "myrobot"}))
    b = parse_record_config(
        [f"--robot-config={robot_cfg}", "--teleop-type=test_sine", "--repo-id=me/x", "--num-episodes=2",
         "--episode-length=1", "--fps=10"]
    )  # fmt: skip
    assert a == b


def test_record_writes_a_valid_dataset(tmp_path):
    root = tmp_path / "ds"
    cfg = parse_record_config(
        ["--robot.type=myrobot", "--robot.max_speed_deg_s=100000", "--teleop.type=test_sine",
         "--dataset.repo_id=me/sine", f"--dataset.root={root}", "--dataset.num_episodes=2",
         "--dataset.episode_time_s=1", "--dataset.reset_time_s=0", "--dataset.fps=20",
         "--dataset.single_task=wave", "--realtime=false"]
    )  # fmt: skip
    record(cfg)
    validate_v30(root)
    ds = LeRobotDataset("me/sine", root=root)
    assert ds.num_episodes == 2 and len(ds) == 40 and ds.fps == 20
    assert ds.features["action"]["names"] == [*(f"joint_{i}.pos" for i in range(1, 7)), "gripper.pos"]
    assert ds[0]["task"] == "wave" and ds.meta.robot_type == "myrobot"
    # the action stored at frame t is what the teleoperator sent: sin(0.1 * (t + 1) + joint)
    np.testing.assert_allclose(ds[5]["action"].numpy(), np.sin(0.6 + np.arange(7)), rtol=1e-5)


def test_resume_continues_to_the_requested_count(tmp_path):
    root = tmp_path / "ds"
    base = ["--robot.type=myrobot", "--teleop.type=test_sine", "--dataset.repo_id=me/r", f"--dataset.root={root}",
            "--dataset.episode_time_s=0.5", "--dataset.reset_time_s=0", "--dataset.fps=10", "--realtime=false"]  # fmt: skip
    record(parse_record_config([*base, "--dataset.num_episodes=1"]))
    record(parse_record_config([*base, "--dataset.num_episodes=3", "--resume=true"]))
    assert LeRobotDataset("me/r", root=root).num_episodes == 3


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--robot.type=nope", "--dataset.repo_id=a/b"], "Unknown robot type 'nope'"),
        (["--robot.type=myrobot", "--teleop.type=test_sine"], "--dataset.repo_id"),
        (["--robot.type=myrobot", "--dataset.repo_id=a/b"], "--teleop.type"),
    ],
)
def test_clear_errors(argv, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        record(parse_record_config([*argv, f"--dataset.root={tmp_path / 'x'}"]))


def test_main_help(capsys):
    assert main(["--help"]) == 0
    assert "--dataset.num_episodes" in capsys.readouterr().out


def test_replay_sends_the_recorded_actions(tmp_path):
    from lerobot.robots.myrobot import MyRobot, MyRobotConfig
    from lerobot.scripts.replay import replay_episode

    root = tmp_path / "ds"
    record(
        parse_record_config(
            ["--robot.type=myrobot", "--teleop.type=test_sine", "--dataset.repo_id=me/rp", f"--dataset.root={root}",
             "--dataset.num_episodes=2", "--dataset.episode_time_s=1", "--dataset.reset_time_s=0",
             "--dataset.fps=10", "--realtime=false"]
        )
    )  # fmt: skip
    ds = LeRobotDataset("me/rp", root=root)
    robot = MyRobot(MyRobotConfig(max_speed_deg_s=1e9))
    sent = []
    robot._send_action = lambda a: sent.append(a) or a
    robot.connect()
    replay_episode(robot, ds, episode=1, realtime=False)
    assert len(sent) == 10
    np.testing.assert_allclose(list(sent[3].values()), ds.get_episode(1)[3]["action"].numpy(), rtol=1e-6)


def test_teleoperate_runs_for_the_given_time():
    from lerobot.robots.myrobot import MyRobotConfig
    from lerobot.scripts.teleoperate import TeleoperateConfig, teleoperate

    loop = teleoperate(
        TeleoperateConfig(robot=MyRobotConfig(), teleop=SineTeleopConfig(), fps=50, teleop_time_s=0.2)
    )
    assert loop.stats()["cycles"] == 10


def test_live_view_streams_the_session_to_a_rerun_file(tmp_path):
    pytest.importorskip("rerun")
    rrd = tmp_path / "live.rrd"
    record(
        parse_record_config(
            [
                "--robot.type=myrobot",
                "--teleop.type=test_sine",
                "--dataset.repo_id=me/live",
                f"--dataset.root={tmp_path / 'ds'}",
                "--dataset.num_episodes=1",
                "--dataset.episode_time_s=0.5",
                "--dataset.reset_time_s=0",
                "--dataset.fps=10",
                "--realtime=false",
                "--display_data=true",
                f"--display_save_path={rrd}",
            ]
        )  # fmt: skip
    )
    data = rrd.read_bytes()
    assert data[:4] == b"RRF2"  # rerun's file magic
    assert b"action/joint_1.pos" in data and b"observation/gripper.pos" in data
