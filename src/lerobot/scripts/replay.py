"""``lerobot-replay``: send a recorded episode's actions to a robot (or its simulated twin) at the dataset's fps.

    lerobot-replay --robot.type=so100_follower --robot.port=/dev/ttyUSB0 \\
        --dataset.repo_id=me/demo --dataset.episode=0 [--dataset.root=DIR]
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.datasets.feature_utils import action_from_vector
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.robots import Robot, RobotConfig, make_robot_from_config
from lerobot.utils.cli import console_main
from lerobot.utils.control_loop import RateLoop

logger = logging.getLogger(__name__)


@dataclass
class DatasetReplayConfig:
    repo_id: str = ""
    """Dataset id whose recorded actions are replayed (required)."""
    episode: int = 0
    """Index of the episode to replay."""
    root: Path | None = None
    """Local folder of the dataset (default $HF_LEROBOT_HOME/<repo_id>)."""


@dataclass
class ReplayConfig:
    robot: RobotConfig | None = None
    """The robot that replays the actions (--robot.type=so100_follower --robot.port=...)."""
    dataset: DatasetReplayConfig = field(default_factory=DatasetReplayConfig)
    """The recorded episode to replay."""
    realtime: bool = True
    """Send the actions at the dataset's fps (false: as fast as the robot takes them)."""


GUIDE_ALIASES = {"robot_type": "robot.type", "repo_id": "dataset.repo_id", "episode": "dataset.episode"}


def replay_episode(robot: Robot, dataset: LeRobotDataset, episode: int, realtime: bool = True) -> list[dict]:
    """Send every action of ``episode``; returns the observations read before each action."""
    if list(robot.action_features) != dataset.features["action"]["names"]:
        raise ValueError(
            f"The dataset's actions {dataset.features['action']['names']} do not match "
            f"{robot.name}'s {list(robot.action_features)}."
        )
    reset = getattr(robot, "reset", None)
    if callable(reset):
        reset(seed=episode)
    frames = dataset.get_episode(episode)
    actions = dataset.hf_dataset.column("action").to_numpy(zero_copy_only=False)[frames.start : frames.stop]
    loop = RateLoop(dataset.fps)
    observations = []
    for vector in actions:
        observations.append(robot.get_observation())
        robot.send_action(action_from_vector(dataset.features, vector))
        if realtime:
            loop.wait()
    return observations


def replay(cfg: ReplayConfig) -> list[dict]:
    if cfg.robot is None:
        raise ValueError("Choose a robot: --robot.type=...")
    dataset = LeRobotDataset(cfg.dataset.repo_id, root=cfg.dataset.root, episodes=[cfg.dataset.episode])
    robot = make_robot_from_config(cfg.robot)
    try:
        robot.connect()
        return replay_episode(robot, dataset, cfg.dataset.episode, cfg.realtime)
    finally:
        if robot.is_connected:
            robot.disconnect()


@console_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, ReplayConfig, GUIDE_ALIASES):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    n = len(replay(parse_config(ReplayConfig, argv, GUIDE_ALIASES)))
    print(f"Replayed {n} actions.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
