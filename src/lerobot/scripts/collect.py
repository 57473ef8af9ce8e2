"""The guide's one-call data collection: ``collect_demonstrations(robot=..., control_device=..., ...)``.

It picks the teleoperator for ``control_device``, creates the dataset from the robot's declared
features and runs the same session as ``lerobot-record`` (:func:`lerobot.scripts.record.record_session`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from lerobot.datasets.feature_utils import hw_to_dataset_features
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import hf_lerobot_home
from lerobot.robots import Robot, RobotConfig, make_robot_from_config
from lerobot.robots.robot import ROBOT_CONFIGS
from lerobot.robots.sim.config import SimTwinConfig
from lerobot.scripts.record import check_teleop_fits_robot, record_session, sim_leader_for
from lerobot.teleoperators import Teleoperator, TeleoperatorConfig, make_teleoperator_from_config
from lerobot.teleoperators.keyboard import EE_ACTION_KEYS

CONTROL_DEVICES = ("keyboard", "gamepad", "leader", "phone", "expert")


def _make_robot(robot: Robot | RobotConfig | str, task: str, fps: int | None, realtime: bool) -> Robot:
    """A robot from an instance, a config or a type name; a twin built here takes ``task`` if it has it."""
    if isinstance(robot, Robot):
        return robot
    config = ROBOT_CONFIGS.get(robot)() if isinstance(robot, str) else robot
    if not isinstance(config, SimTwinConfig):
        return make_robot_from_config(config)
    config = dataclasses.replace(config, fps=fps or config.fps, realtime=realtime)
    try:  # "pick_and_place" selects so100_sim's pick_place scene; a free-form instruction does not
        return make_robot_from_config(dataclasses.replace(config, task=task))
    except ValueError:
        return make_robot_from_config(config)


def _make_teleop(control_device: str, robot: Robot, leader: TeleoperatorConfig | None) -> Teleoperator:
    keys = list(robot.action_features)
    if control_device == "keyboard":
        from lerobot.teleoperators.keyboard import KeyboardTeleopConfig

        return make_teleoperator_from_config(KeyboardTeleopConfig(action_keys=keys))
    if control_device == "gamepad":
        from lerobot.teleoperators.gamepad import GamepadTeleopConfig

        axes = {key: (i, 1.0) for i, key in enumerate(k for k in keys if "gripper" not in k)}
        buttons = {key: (0, 1) for key in keys if "gripper" in key}
        return make_teleoperator_from_config(
            GamepadTeleopConfig(action_keys=keys, axes=axes, buttons=buttons, step=1.0)
        )
    if control_device == "phone":
        from lerobot.teleoperators.phone import PhoneTeleopConfig

        return make_teleoperator_from_config(PhoneTeleopConfig())
    if control_device == "expert":
        from lerobot.teleoperators.expert import ExpertTeleopConfig

        kind = getattr(robot, "sim_kind", None)
        if kind is None:
            raise ValueError(
                f"control_device='expert' needs a simulated robot (so100_sim, aloha_sim), not {robot.name}."
            )
        return make_teleoperator_from_config(ExpertTeleopConfig(env=kind))
    if control_device == "leader":
        if leader is not None:
            return make_teleoperator_from_config(leader)
        sim_leader = sim_leader_for(robot)
        if sim_leader is not None:
            return sim_leader
        raise ValueError(
            f"control_device='leader' with the real {robot.name} needs your leader arm: pass "
            "leader=SO100LeaderConfig(port='/dev/ttyACM1', id='my_leader') (or KochLeaderConfig(...)) "
            "from lerobot.teleoperators.so100_leader / koch_leader."
        )
    raise ValueError(
        f"Unknown control_device {control_device!r}; choose one of {', '.join(CONTROL_DEVICES)}."
    )


def _free_default_repo_id(base: str, root: str | Path | None) -> str:
    """``base``, or ``base_2``, ``base_3``... when an earlier call already recorded under that id."""
    if root is not None:  # the caller chose the folder; the id only names the dataset
        return base
    candidate, n = base, 1
    while (hf_lerobot_home() / candidate).exists():
        n += 1
        candidate = f"{base}_{n}"
    return candidate


def collect_demonstrations(
    robot: Robot | RobotConfig | str,
    control_device: str = "keyboard",
    num_episodes: int = 30,
    task: str = "pick_and_place",
    repo_id: str | None = None,
    root: str | Path | None = None,
    fps: int | None = None,
    episode_time_s: float = 30.0,
    reset_time_s: float = 0.0,
    leader: TeleoperatorConfig | None = None,
    realtime: bool | None = None,
    use_videos: bool = True,
    resume: bool = False,
) -> LeRobotDataset:
    """Record ``num_episodes`` demonstrations of ``task`` and return the finalized dataset.

    ``robot``: a robot, its config or a registered type (``"so100_sim"``). ``control_device``: keyboard,
    gamepad, leader (a simulated leader arm for a twin; a real robot needs ``leader=<leader config>``),
    phone (it moves the end effector: the arm follows through its kinematic chain) or expert (a scripted expert, simulated robots only). ``task`` is the instruction stored with
    every frame (and picks a twin's scene when it names one, e.g. ``pick_and_place``). The dataset goes
    to ``root`` (default ``$HF_LEROBOT_HOME/<repo_id>``, ``repo_id`` defaulting to
    ``local/<robot>_<task>``, then ``..._2``, ``..._3`` on later calls, so a second call adds a dataset
    instead of failing). A robot the caller connected stays connected afterwards (to train and deploy
    on next); one connected here is disconnected. ``realtime`` (default: paced unless the expert drives) paces the loop at
    ``fps`` (default: a twin's rate, else 30).
    """
    if control_device not in CONTROL_DEVICES:
        raise ValueError(
            f"Unknown control_device {control_device!r}; choose one of {', '.join(CONTROL_DEVICES)}."
        )
    if realtime is None:
        realtime = control_device != "expert"  # no person in the loop: run as fast as the simulator can
    robot = _make_robot(robot, task, fps, realtime)
    fps = fps or getattr(robot.config, "fps", None) or 30
    teleop = _make_teleop(control_device, robot, leader)
    if set(teleop.action_features) == set(EE_ACTION_KEYS) and set(robot.action_features) != set(
        EE_ACTION_KEYS
    ):
        # a phone moves the gripper in space: the arm follows through its inverse kinematics
        from lerobot.robots.end_effector import EndEffectorControl

        robot = EndEffectorControl(robot)
    check_teleop_fits_robot(teleop, robot)
    repo_id = repo_id or _free_default_repo_id(f"local/{robot.name}_{task.replace(' ', '_')}", root)
    dataset = LeRobotDataset.create(
        repo_id,
        fps=fps,
        features=hw_to_dataset_features(robot.observation_features, robot.action_features, use_videos),
        robot_type=robot.name,
        root=root,
        use_videos=use_videos,
        resume=resume,
    )
    record_session(
        robot, teleop, dataset, num_episodes=num_episodes, episode_time_s=episode_time_s,
        reset_time_s=reset_time_s, task=task, realtime=realtime,
    )  # fmt: skip
    return dataset
