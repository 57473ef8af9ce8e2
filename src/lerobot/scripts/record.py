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

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lerobot.async_inference.policy_server import load_policy
from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.datasets.feature_utils import build_dataset_frame, hw_to_dataset_features
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.robots import Robot, RobotConfig, make_robot_from_config
from lerobot.robots.sim.config import SimTwinConfig
from lerobot.scripts.deploy import PolicyDriver, PolicyPathConfig
from lerobot.teleoperators import (
    TELEOPERATOR_CONFIGS,
    Teleoperator,
    TeleoperatorConfig,
    make_teleoperator_from_config,
)
from lerobot.utils.cli import console_main
from lerobot.utils.control_loop import KeyboardEvents, RateLoop
from lerobot.utils.live_view import LiveView

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
    """Frames recorded per second (the control loop's rate)."""
    episode_time_s: float = 60.0
    """Length of each episode in seconds (the right-arrow key ends one early)."""
    reset_time_s: float = 60.0
    """Time between episodes to reset the scene, in seconds (not recorded)."""
    num_episodes: int = 50
    """Episodes to record."""
    video: bool = True
    """Encode cameras to AV1 video (else PNG images in parquet)."""
    vcodec: str = "libsvtav1"
    """FFmpeg encoder of the camera videos (libsvtav1 is AV1; h264 plays everywhere)."""
    push_to_hub: bool = False
    """Upload the finished dataset to the Hub as repo_id."""
    private: bool = False
    """With --dataset.push_to_hub: make the Hub repo private."""


@dataclass
class RecordConfig:
    robot: RobotConfig | None = None
    """The robot to record (--robot.type=so100_follower --robot.port=...)."""
    teleop: TeleoperatorConfig | None = None
    """What drives the robot in teleoperation or scripted mode (--teleop.type=so100_leader ...)."""
    dataset: DatasetRecordConfig = field(default_factory=DatasetRecordConfig)
    """The dataset the episodes are written to."""
    policy: PolicyPathConfig = field(default_factory=PolicyPathConfig)
    """With --control-mode=policy: the checkpoint that drives the robot (--policy.path=...)."""
    control_mode: str = "teleoperation"
    """teleoperation | scripted (a teleoperator that is a script, e.g. a sim expert) | policy."""
    resume: bool = False
    """Add episodes to an existing dataset (also one a killed recording left unfinished)."""
    realtime: bool = True
    """Pace the loop at fps. Simulated robots may run faster than real time with false."""
    display_data: bool = False
    """Show cameras, joints and actions live in the rerun viewer."""
    display_save_path: Path | None = None
    """With --display_data: write the live stream to this .rrd file instead of spawning the viewer."""
    cpu_acceleration: bool = True
    """With --control-mode=policy on the CPU: lerobot.policies.cpu_acceleration's faster modules (same math)."""


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
    get_action: Callable[..., dict[str, float]],
    fps: int,
    duration_s: float,
    events: KeyboardEvents,
    dataset: LeRobotDataset | None = None,
    task: str = "",
    realtime: bool = True,
    view: LiveView | None = None,
) -> RateLoop:
    """Read, act, store (and show), at ``fps``, for ``duration_s`` or until a key ends the episode."""
    features = dataset.features if dataset is not None else None
    loop = RateLoop(fps)
    wants_obs = bool(inspect.signature(get_action).parameters)  # a policy reads the observation
    n_cycles = round(duration_s * fps)
    for _ in range(n_cycles):
        if events.exit_early:
            break
        observation = robot.get_observation()
        sent = robot.send_action(get_action(observation) if wants_obs else get_action())
        if dataset is not None:
            dataset.add_frame(build_dataset_frame(features, observation, sent), task=task)
        if view is not None:
            view.log(observation, sent)
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
    if isinstance(cfg.robot, SimTwinConfig):
        # A twin steps its physics once per action and renders in lockstep when the loop is not paced.
        cfg.robot.fps, cfg.robot.realtime = cfg.dataset.fps, cfg.realtime
    robot = make_robot_from_config(cfg.robot)
    if cfg.control_mode == "policy":
        if not cfg.policy.path:
            raise ValueError("--control-mode=policy needs --policy.path=<checkpoint folder or Hub id>.")
        policy = load_policy(cfg.policy.path, cpu_acceleration=cfg.cpu_acceleration)
        teleop = PolicyDriver(policy, robot, cfg.dataset.single_task)
    elif cfg.teleop is not None:
        teleop = make_teleoperator_from_config(cfg.teleop)
    elif cfg.control_mode == "teleoperation":
        teleop = leader_arm_for(robot)
    else:
        raise ValueError(
            "Choose who drives the robot: --teleop.type=... (a leader arm, keyboard, or a scripted expert)."
        )
    check_teleop_fits_robot(teleop, robot)
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
    record_session(
        robot, teleop, dataset, num_episodes=cfg.dataset.num_episodes, episode_time_s=cfg.dataset.episode_time_s,
        reset_time_s=cfg.dataset.reset_time_s, task=cfg.dataset.single_task, realtime=cfg.realtime,
        view=LiveView(cfg.dataset.repo_id, cfg.display_save_path) if cfg.display_data else None,
    )  # fmt: skip
    if cfg.dataset.push_to_hub:
        dataset.push_to_hub(private=cfg.dataset.private)
    return dataset


def sim_leader_for(robot: Robot) -> Teleoperator | None:
    """A simulated twin's leader arm (its action keys, its rate); None for a robot that is not a twin."""
    if not isinstance(robot.config, SimTwinConfig):
        return None
    from lerobot.teleoperators.sim_leader import SimLeaderConfig

    return make_teleoperator_from_config(
        SimLeaderConfig(action_keys=list(robot.action_features), fps=robot.config.fps)
    )


def leader_arm_for(robot: Robot) -> Teleoperator:
    """Who drives ``robot`` when only ``--control-mode=teleoperation`` is given: its leader arm.

    A simulated twin gets a simulated leader; a real arm's leader is another device on its own port,
    so it must be named, and the error says how.
    """
    leader = sim_leader_for(robot)
    if leader is not None:
        return leader
    family_leader = robot.config.type.removesuffix("_follower") + "_leader"
    flags = (
        f"--teleop.type={family_leader} --teleop.port=<the leader's port> --teleop.id=<its name>"
        if family_leader in TELEOPERATOR_CONFIGS
        else "--teleop.type=... (a leader arm, keyboard, gamepad or phone)"
    )
    raise ValueError(
        f"--control-mode=teleoperation: {robot.config.type} is driven by a leader arm on its own port; name it with "
        f"{flags}."
    )


def check_teleop_fits_robot(teleop: Teleoperator, robot: Robot) -> None:
    if list(teleop.action_features) != list(robot.action_features):
        raise ValueError(
            f"Teleoperator {teleop.name} produces {list(teleop.action_features)} but robot {robot.name} "
            f"expects {list(robot.action_features)}."
        )


def record_session(
    robot: Robot,
    teleop: Teleoperator,
    dataset: LeRobotDataset,
    num_episodes: int,
    episode_time_s: float,
    reset_time_s: float = 0.0,
    task: str = "",
    realtime: bool = True,
    view: LiveView | None = None,
) -> int:
    """Record until ``dataset`` holds ``num_episodes`` episodes (or Esc); returns how many were saved here.

    Shared by ``lerobot-record`` and ``collect_demonstrations``. Connects whatever is not connected yet,
    lets a teleoperator that needs the robot (``bind(robot)``: a scripted expert, a simulated leader)
    see it, and always finalizes the dataset. At the end it disconnects (torque off) what it connected;
    a device the caller had connected stays connected for the caller's next step (calibrated robot,
    a second session), except after an error or Ctrl-C, when everything is disconnected.
    A simulated twin must step at the dataset's rate.
    """
    fps = dataset.fps
    if isinstance(robot.config, SimTwinConfig) and robot.config.fps != fps:
        raise ValueError(
            f"{robot.name} advances its physics 1/{robot.config.fps} s per action but the dataset runs at "
            f"{fps} fps; create the robot with fps={fps} (--robot.fps={fps})."
        )
    events = KeyboardEvents()
    start = recorded = dataset.meta.total_episodes
    opened_here = [device for device in (robot, teleop) if not device.is_connected]
    finished = False
    try:
        connect_pair(robot, teleop)
        while recorded < num_episodes and not events.stop_recording:
            _reset_for_episode(robot, teleop, recorded)
            episode_task = _episode_task(robot, task)
            if isinstance(teleop, PolicyDriver):
                teleop.task = episode_task  # a language-conditioned policy acts on this episode's instruction
            logger.info(
                "Recording episode %d/%d: %s", recorded + 1, num_episodes, episode_task or "(no task)"
            )
            loop = record_loop(
                robot, teleop.get_action, fps, episode_time_s, events, dataset, episode_task, realtime, view
            )
            stats = loop.stats()
            if stats["cycles"] and stats["on_time_share"] < 0.99 and realtime:
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
            if recorded < num_episodes and reset_time_s > 0 and not events.stop_recording:
                logger.info("Reset the environment (%.0f s)", reset_time_s)
                record_loop(robot, teleop.get_action, fps, reset_time_s, events, None, "", realtime, view)
                events.exit_early = False
        finished = True
    finally:
        events.stop()
        dataset.finalize()
        if view is not None:
            view.close()
        for device in (teleop, robot):  # the robot last: torque off, also after an exception or Ctrl-C
            if device.is_connected and (device in opened_here or not finished):
                device.disconnect()
    return recorded - start


def connect_pair(robot: Robot, teleop: Teleoperator) -> None:
    """Connect whichever is not connected yet, then let a teleoperator that drives from the robot's
    own state (``bind(robot)``: a scripted expert, a simulated leader) see the robot."""
    for device in (robot, teleop):
        if not device.is_connected:
            device.connect()
    bind = getattr(teleop, "bind", None)
    if callable(bind):
        bind(robot)


def _episode_task(robot: Robot, task: str) -> str:
    """The task stored with this episode's frames: the scene's own instruction when the robot is a
    simulated scene that draws one per episode (so100_sim ``pick_color``), else ``--dataset.single_task``."""
    instruction = getattr(robot, "episode_instruction", "")
    if instruction and task and task != instruction:
        logger.warning("The scene asks %r this episode; storing that instead of %r.", instruction, task)
    return instruction or task


def _reset_for_episode(robot: Robot, teleop: Teleoperator, episode: int) -> None:
    """Start an episode: a simulated robot redraws its scene from the episode's seed, then the
    teleoperator restarts with what its ``reset`` asks for (``seed``: a script; ``observation``: a
    keyboard or gamepad integrating from the robot's present pose, so the first action is no jump)."""
    reset = getattr(robot, "reset", None)
    if callable(reset):
        reset(seed=episode)
    reset = getattr(teleop, "reset", None)
    if callable(reset):
        params = inspect.signature(reset).parameters
        kwargs: dict = {"seed": episode} if "seed" in params else {}
        if "observation" in params:
            kwargs["observation"] = robot.get_observation()
        reset(**kwargs)


@console_main
def main(argv: list[str] | None = None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, RecordConfig, GUIDE_ALIASES):
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
