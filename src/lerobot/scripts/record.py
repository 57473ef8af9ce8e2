"""``lerobot-record``: record episodes from a robot driven by a teleoperator (or a script) into a dataset.

Both spellings work::

    lerobot-record --robot.type=myrobot --teleop.type=... --dataset.repo_id=me/demo \\
        --dataset.num_episodes=5 --dataset.single_task="pick the cube" --dataset.episode_time_s=20
    lerobot-record --robot-type=myrobot --repo-id=me/demo --num-episodes=5 --episode-length=20 \\
        --fps=30 --control-mode=teleoperation

Keys while recording: right arrow ends the episode, left arrow re-records it, Esc stops. Every
saved episode is on disk the moment it is saved; ``--resume=true`` continues an interrupted session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lerobot.configs.parser import config_help, parse_config
from lerobot.datasets.feature_utils import build_dataset_frame, hw_to_dataset_features
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.robots import Robot, RobotConfig, make_robot_from_config
from lerobot.teleoperators import Teleoperator, TeleoperatorConfig, make_teleoperator_from_config
from lerobot.utils.control_loop import KeyboardEvents, RateLoop

logger = logging.getLogger(__name__)


@dataclass
class DatasetRecordConfig:
    repo_id: str = ""
    """Dataset id, e.g. ``me/so100_pick`` (required)."""
    single_task: str = ""
    """The instruction stored with every frame, e.g. "pick up the cube"."""
    root: Path | None = None
    """Where to write (default ``$HF_LEROBOT_HOME/<repo_id>``)."""
    fps: int = 30
    episode_time_s: float = 60.0
    reset_time_s: float = 60.0
    num_episodes: int = 50
    video: bool = True
    """Encode cameras to AV1 video (else PNG images in parquet)."""
    vcodec: str = "libsvtav1"
    push_to_hub: bool = False
    private: bool = False


@dataclass
class RecordConfig:
    robot: RobotConfig | None = None
    teleop: TeleoperatorConfig | None = None
    dataset: DatasetRecordConfig = field(default_factory=DatasetRecordConfig)
    control_mode: str = "teleoperation"
    """teleoperation | scripted (a teleoperator that is a script, e.g. a sim expert) | policy."""
    resume: bool = False
    realtime: bool = True
    """Pace the loop at fps. Simulated robots may run faster than real time with false."""
    display_data: bool = False


# The user guide's flags, mapped onto the same fields.
GUIDE_ALIASES = {
    "robot_type": "robot.type",
    "teleop_type": "teleop.type",
    "repo_id": "dataset.repo_id",
    "num_episodes": "dataset.num_episodes",
    "episode_length": "dataset.episode_time_s",
    "fps": "dataset.fps",
    "task": "dataset.single_task",
}


def parse_record_config(argv: list[str] | None = None) -> RecordConfig:
    """Parse flags; ``--robot-config=file.json`` supplies the robot section from a file."""
    return parse_config(RecordConfig, argv, GUIDE_ALIASES, {"robot_config": "robot"})


def record_loop(
    robot: Robot,
    get_action: Callable[[], dict[str, float]],
    fps: int,
    duration_s: float,
    events: KeyboardEvents,
    dataset: LeRobotDataset | None = None,
    task: str = "",
    realtime: bool = True,
) -> RateLoop:
    """Read, act, store, at ``fps``, for ``duration_s`` or until a key ends the episode."""
    features = dataset.features if dataset is not None else None
    loop = RateLoop(fps)
    n_cycles = round(duration_s * fps)
    for _ in range(n_cycles):
        if events.exit_early:
            break
        observation = robot.get_observation()
        sent = robot.send_action(get_action())
        if dataset is not None:
            dataset.add_frame(build_dataset_frame(features, observation, sent), task=task)
        if realtime:
            loop.wait()
    return loop


def record(cfg: RecordConfig) -> LeRobotDataset:
    """Run a recording session; returns the dataset (finalized, every saved episode on disk)."""
    if cfg.robot is None:
        raise ValueError("Choose a robot: --robot.type=... (or --robot-type=...).")
    if not cfg.dataset.repo_id:
        raise ValueError("Name the dataset: --dataset.repo_id=<user>/<name> (or --repo-id=...).")
    if cfg.control_mode not in ("teleoperation", "scripted", "policy"):
        raise ValueError(
            f"--control-mode must be teleoperation, scripted or policy, got {cfg.control_mode!r}."
        )
    if cfg.control_mode == "policy":
        raise NotImplementedError(
            "Policy-driven recording arrives with the policies; use teleoperation or scripted."
        )
    robot = make_robot_from_config(cfg.robot)
    teleop = make_teleoperator_from_config(cfg.teleop) if cfg.teleop is not None else None
    if teleop is None:
        raise ValueError(
            "Choose who drives the robot: --teleop.type=... (a leader arm, keyboard, or a scripted expert)."
        )
    if list(teleop.action_features) != list(robot.action_features):
        raise ValueError(
            f"Teleoperator {teleop.name} produces {list(teleop.action_features)} but robot {robot.name} "
            f"expects {list(robot.action_features)}."
        )
    features = hw_to_dataset_features(robot.observation_features, robot.action_features, cfg.dataset.video)
    dataset = LeRobotDataset.create(
        cfg.dataset.repo_id,
        fps=cfg.dataset.fps,
        features=features,
        robot_type=robot.name,
        root=cfg.dataset.root,
        use_videos=cfg.dataset.video,
        vcodec=cfg.dataset.vcodec,
        resume=cfg.resume,
    )
    events = KeyboardEvents()
    try:
        robot.connect()
        teleop.connect()
        recorded = dataset.meta.total_episodes if cfg.resume else 0
        while recorded < cfg.dataset.num_episodes and not events.stop_recording:
            _reset_for_episode(robot, teleop, recorded)
            logger.info("Recording episode %d/%d", recorded + 1, cfg.dataset.num_episodes)
            loop = record_loop(
                robot, teleop.get_action, cfg.dataset.fps, cfg.dataset.episode_time_s, events, dataset,
                cfg.dataset.single_task, cfg.realtime,
            )  # fmt: skip
            stats = loop.stats()
            if stats["cycles"] and stats["on_time_share"] < 0.99 and cfg.realtime:
                logger.warning(
                    "Only %.0f%% of cycles were on time this episode.", 100 * stats["on_time_share"]
                )
            if events.rerecord_episode:
                logger.info("Re-recording episode %d.", recorded + 1)
                dataset.clear_episode_buffer()
                events.rerecord_episode = events.exit_early = False
                continue
            dataset.save_episode()
            recorded += 1
            events.exit_early = False
            if (
                recorded < cfg.dataset.num_episodes
                and cfg.dataset.reset_time_s > 0
                and not events.stop_recording
            ):
                logger.info("Reset the environment (%.0f s)", cfg.dataset.reset_time_s)
                record_loop(
                    robot,
                    teleop.get_action,
                    cfg.dataset.fps,
                    cfg.dataset.reset_time_s,
                    events,
                    None,
                    "",
                    cfg.realtime,
                )
                events.exit_early = False
    finally:
        events.stop()
        dataset.finalize()
        if teleop.is_connected:
            teleop.disconnect()
        if robot.is_connected:
            robot.disconnect()  # torque off, also after an exception or Ctrl-C
    if cfg.dataset.push_to_hub:
        dataset.push_to_hub(private=cfg.dataset.private)
    return dataset


def _reset_for_episode(robot: Robot, teleop: Teleoperator, episode: int) -> None:
    """Simulated robots restart their scene (and scripted teleoperators their plan) per episode."""
    for device in (robot, teleop):
        reset = getattr(device, "reset", None)
        if callable(reset):
            reset(seed=episode)


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if "--help" in argv or "-h" in argv:
        print(__doc__)
        print("\n".join(config_help(RecordConfig)))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    started = time.perf_counter()
    dataset = record(parse_record_config(argv))
    print(
        f"Recorded {dataset.meta.total_episodes} episodes ({dataset.meta.total_frames} frames) into {dataset.root} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
