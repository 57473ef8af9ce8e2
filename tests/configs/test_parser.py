"""Flags -> nested configs: both spellings, registered choice types, coercion, clear errors."""

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lerobot.configs.parser import ConfigError, config_help, parse_config
from lerobot.robots import RobotConfig
from lerobot.robots.myrobot import MyRobotConfig


@dataclass
class DatasetSection:
    repo_id: str = "local/x"
    num_episodes: int = 50
    episode_time_s: float = 60.0


@dataclass
class Job:
    robot: RobotConfig | None = None
    dataset: DatasetSection = field(default_factory=DatasetSection)
    down_dims: list[int] = field(default_factory=lambda: [512, 1024])
    resume: bool = False
    output_dir: Path | None = None
    rename_map: dict[str, str] = field(default_factory=dict)


GUIDE_ALIASES = {
    "robot-type": "robot.type",
    "repo-id": "dataset.repo_id",
    "num-episodes": "dataset.num_episodes",
}


def test_both_spellings_give_the_same_config():
    lerobot = parse_config(
        Job, ["--robot.type=myrobot", "--dataset.repo_id=me/data", "--dataset.num_episodes=3"]
    )
    guide = parse_config(
        Job, ["--robot-type", "myrobot", "--repo-id=me/data", "--num-episodes=3"], GUIDE_ALIASES
    )
    assert lerobot == guide
    assert isinstance(guide.robot, MyRobotConfig) and guide.dataset.num_episodes == 3


def test_coercion_of_nested_lists_bools_paths_dicts():
    job = parse_config(
        Job,
        ["--down_dims=[256, 512, 1024]", "--resume", "--output_dir=out/x", "--rename_map={\"a\": \"b\"}",
         "--robot.type=myrobot", "--robot.joints=[a, b]", "--robot.max_speed_deg_s=90"],
    )  # fmt: skip
    assert job.down_dims == [256, 512, 1024] and job.resume is True and job.output_dir == Path("out/x")
    assert (
        job.rename_map == {"a": "b"} and job.robot.joints == ["a", "b"] and job.robot.max_speed_deg_s == 90.0
    )


def test_config_path_then_flags_override(tmp_path):
    cfg = tmp_path / "job.json"
    cfg.write_text(json.dumps({"dataset": {"repo_id": "me/a", "num_episodes": 7}, "resume": True}))
    job = parse_config(Job, [f"--config_path={cfg}", "--dataset.num_episodes=9"])
    assert job.dataset.repo_id == "me/a" and job.dataset.num_episodes == 9 and job.resume


@pytest.mark.parametrize(
    "argv,match",
    [
        (
            ["--dataset.num_episode=3"],
            r"Unknown flag --dataset.num_episode .*Did you mean --dataset.num_episodes\?",
        ),
        (["--robot.type=myrobott"], r"Unknown robot type 'myrobott'. Did you mean 'myrobot'"),
        (["--robot.port=/dev/x"], r"--robot.type is required"),
        (["--dataset.num_episodes=many"], r"--dataset.num_episodes expects int, got 'many'"),
        (["--resume=maybe"], r"--resume expects true or false"),
    ],
)
def test_bad_flags_are_one_clear_error(argv, match):
    with pytest.raises(ConfigError, match=match):
        parse_config(Job, argv)


def test_help_lists_nested_flags():
    text = "\n".join(config_help(Job))
    assert "--dataset.num_episodes" in text and "default=50" in text


def test_cameras_are_settable_from_the_command_line():
    """``--robot.cameras`` takes each camera's ``type`` (a JSON mapping or dotted flags)."""
    from lerobot.cameras.opencv import OpenCVCameraConfig
    from lerobot.robots.so100_follower import SO100FollowerConfig

    front = '{"front": {"type": "opencv", "index_or_path": 0, "width": 640, "height": 480, "fps": 30}}'
    config = parse_config(SO100FollowerConfig, ["--port=/dev/ttyACM0", f"--cameras={front}"])
    assert config.cameras == {"front": OpenCVCameraConfig(index_or_path=0, width=640, height=480, fps=30)}
    dotted = [
        "--port=/dev/ttyACM0",
        "--cameras.wrist.type=opencv",
        "--cameras.wrist.index_or_path=/dev/video2",
    ]
    dotted += ["--cameras.wrist.width=320", "--cameras.wrist.height=240", "--cameras.wrist.fps=30"]
    assert parse_config(SO100FollowerConfig, dotted).cameras["wrist"].index_or_path == Path("/dev/video2")
    with pytest.raises(ConfigError, match=r"--cameras.front.type is required: choose one of .*opencv"):
        parse_config(
            SO100FollowerConfig, ["--port=/dev/ttyACM0", '--cameras={"front": {"index_or_path": 0}}']
        )
