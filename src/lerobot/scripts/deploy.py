"""``lerobot-deploy``: run a trained policy on a robot at a fixed rate, behind the safety layer.

    lerobot-deploy --policy.path=outputs/train/act/checkpoints/last/pretrained_model \\
        --robot.type=so100_follower --robot.port=/dev/ttyACM0 --robot.id=my_arm --control_frequency=30
    lerobot-deploy --policy.path=... --robot-type=so100_follower --robot-config=robot.json --control-frequency=30

Each cycle reads the robot, turns the observation into the dataset's feature names (the one mapping
in :mod:`lerobot.datasets.feature_utils`), asks the policy for an action and sends it through
:class:`~lerobot.robots.safety.SafetyLayer` (joint limits, ``--max_relative_target``, e-stop key).
``--async_inference=true`` keeps the loop at rate while the next chunk is computed on a background
thread, or on a remote policy server with ``--server_address=host:port``; with real-time chunking
(the checkpoint's ``rtc_config``, or ``--policy.rtc_config.enabled=true``) each new chunk continues
the actions still queued, so chunk switches do not jump (:mod:`lerobot.policies.rtc`). Ctrl-C, an error or the
end of ``--duration_s`` disconnects the robot, which disables torque.

Python: ``deploy_policy(policy=..., robot=..., safety_checks=True)``.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lerobot.async_inference.policy_server import load_policy
from lerobot.async_inference.robot_client import ControlReport, LocalPredictor, RemotePredictor, RobotClient
from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.configs.types import FeatureType
from lerobot.datasets.feature_utils import (
    ACTION,
    IMAGES_PREFIX,
    action_from_vector,
    build_observation_frame,
    hw_to_dataset_features,
)
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.robots import Robot, RobotConfig, make_robot_from_config
from lerobot.robots.safety import SafetyConfig, SafetyLayer, with_safety
from lerobot.utils.cli import console_main
from lerobot.utils.control_loop import RateLoop

logger = logging.getLogger(__name__)


def check_policy_fits_robot(policy: Any, robot: Robot) -> None:
    """One error listing every mismatch between what the policy was trained on and what the robot has."""
    features = hw_to_dataset_features(robot.observation_features, robot.action_features)
    problems = []
    for name, ft in policy.config.input_features.items():
        if ft.type is FeatureType.LANGUAGE:
            continue
        if name not in features:
            problems.append(f"the policy reads '{name}', which {robot.name} does not provide")
            continue
        have = tuple(features[name]["shape"])
        if name.startswith(IMAGES_PREFIX):
            have = (have[2], have[0], have[1])  # the robot gives H x W x C, the policy reads C x H x W
        if have != tuple(ft.shape):
            problems.append(f"'{name}' is {tuple(ft.shape)} for the policy but {have} on {robot.name}")
    out = policy.config.output_features.get(ACTION)
    if out is not None and tuple(out.shape) != tuple(features[ACTION]["shape"]):
        problems.append(
            f"the policy outputs {tuple(out.shape)} actions but {robot.name} takes {features[ACTION]['shape']}"
        )
    if problems:
        raise ValueError(
            f"This policy does not fit {robot.name}: " + "; ".join(problems) + ". Deploy a policy trained "
            f"on data recorded with this robot (its features: {sorted(k for k in features if k != ACTION)})."
        )


class PolicyDriver:
    """A policy in the teleoperator's seat: ``get_action(observation)`` -> the robot's action dict.

    Used by the synchronous deploy loop and by ``lerobot-record --control-mode=policy`` (evaluation
    rollouts recorded as datasets), so both map robot keys to policy features the same way.
    """

    name = "policy"
    is_connected = True

    def __init__(self, policy: Any, robot: Robot, task: str = ""):
        check_policy_fits_robot(policy, robot)
        self.policy, self.task = policy, task
        self.features = hw_to_dataset_features(robot.observation_features, robot.action_features)
        self.action_features = robot.action_features
        self.inference_ms: list[float] = []

    def connect(self) -> None:
        """Nothing to open: the policy is already loaded."""

    def disconnect(self) -> None:
        """Nothing to close."""

    def reset(self) -> None:
        self.policy.reset()

    def get_action(self, observation: dict[str, Any]) -> dict[str, float]:
        import torch

        frame = build_observation_frame(self.features, observation)
        if self.task:
            frame["task"] = self.task
        start = time.perf_counter()
        with torch.no_grad():
            action = self.policy.select_action(frame)["action"]
        self.inference_ms.append(1e3 * (time.perf_counter() - start))
        return action_from_vector(self.features, np.asarray(action.cpu()).reshape(-1))


def deploy_policy(
    policy: Any,
    robot: Robot,
    safety_checks: bool | SafetyConfig = True,
    control_frequency: float = 30,
    duration_s: float | None = None,
    max_steps: int | None = None,
    task: str = "",
    async_inference: bool = False,
    server_address: str | None = None,
    chunk_size_threshold: float = 0.5,
    aggregate_fn_name: str = "weighted_average",
    stop: threading.Event | None = None,
    auth_token: str | None = None,
    server_policy: str | None = None,
) -> ControlReport:
    """Run ``policy`` (a policy object or a checkpoint path) on ``robot`` until a limit or Ctrl-C.

    Connects the robot if needed and disconnects it at the end only in that case (torque off). With
    neither ``duration_s`` nor ``max_steps`` it runs until Ctrl-C, ``stop`` or an emergency stop.
    ``auth_token`` is the policy server's (default: ``$LEROBOT_POLICY_SERVER_TOKEN``); ``server_policy``
    picks one of the policies the server's operator named (default: the server's default).
    """
    if isinstance(policy, str | Path):
        policy = load_policy(str(policy))
    driven = with_safety(robot, safety_checks)
    remote = async_inference or server_address
    # Both branches refuse a policy that does not fit the robot before anything connects.
    driver = None if remote else PolicyDriver(policy, robot, task)
    if remote:
        check_policy_fits_robot(policy, robot)
    opened_here = not robot.is_connected
    if opened_here:
        driven.connect()
    try:
        policy.reset()
        if driver is None:
            predictor = (
                RemotePredictor(server_address, server_policy, auth_token=auth_token)
                if server_address
                else LocalPredictor(policy)
            )
            client = RobotClient(
                driven, predictor, control_frequency, chunk_size_threshold, aggregate_fn_name, task
            )
            report = client.run(duration_s, max_steps, stop)
        else:
            report = _sync_loop(driver, driven, control_frequency, duration_s, max_steps, stop)
    finally:
        if opened_here and driven.is_connected:
            driven.disconnect()
    if isinstance(driven, SafetyLayer):
        report.interventions = len(driven.interventions)
    return report


def _sync_loop(
    driver: PolicyDriver,
    robot: Robot,
    fps: float,
    duration_s: float | None,
    max_steps: int | None,
    stop: threading.Event | None,
) -> ControlReport:
    """Read, infer, act, wait: the simplest loop, right for policies that infer within one period."""
    report = ControlReport()
    loop = RateLoop(fps)
    end = None if not duration_s else time.perf_counter() + duration_s
    while (max_steps is None or report.steps < max_steps) and (end is None or time.perf_counter() < end):
        if stop is not None and stop.is_set():
            break
        robot.send_action(driver.get_action(robot.get_observation()))
        report.steps += 1
        loop.wait()
    report.loop, report.inference_ms = loop.stats(), driver.inference_ms
    return report


# --------------------------------------------------------------------------------------------- CLI


@dataclass
class PolicyPathConfig:
    path: str = ""
    """Checkpoint folder (``.../checkpoints/last/pretrained_model``), Hub id or lerobot-export folder (required unless --server_address)."""
    rtc_config: RTCConfig | None = None
    """Real-time chunking with --async_inference (--policy.rtc_config.execution_horizon=8); default: the checkpoint's."""
    backend: str = "auto"
    """torch (a checkpoint), onnxruntime / torchscript / torch_export (a lerobot-export folder); auto: by the path."""


@dataclass
class DeployConfig:
    robot: RobotConfig | None = None
    """The robot the policy drives (--robot.type=so100_follower --robot.port=...)."""
    policy: PolicyPathConfig = field(default_factory=PolicyPathConfig)
    """The trained policy (--policy.path=...)."""
    control_frequency: float = 30.0
    """Control rate in Hz (the dataset's fps is the natural choice)."""
    duration_s: float = 0.0
    """Stop after this many seconds; 0 runs until Ctrl-C."""
    task: str = ""
    """Instruction for language-conditioned policies."""
    safety_checks: bool = True
    """Route every action through the safety layer (joint limits from calibration, e-stop key)."""
    max_relative_target: float | None = None
    """Largest move per step and motor, in the robot's units (safety layer)."""
    async_inference: bool = False
    """Compute the next action chunk on a background thread while the loop keeps its rate."""
    server_address: str = ""
    """host:port of a policy server (implies asynchronous inference)."""
    chunk_size_threshold: float = 0.5
    """Asynchronous: ask for the next chunk when the queue falls below this share of a chunk (0-1)."""
    aggregate_fn_name: str = "weighted_average"
    """Asynchronous: how overlapping chunks blend: weighted_average (0.3 old + 0.7 new), latest_only, average."""
    cpu_acceleration: bool = True
    """On the CPU, swap in lerobot.policies.cpu_acceleration's faster modules (same math)."""
    auth_token: str | None = field(default=None, repr=False)
    """The policy server's token; better set $LEROBOT_POLICY_SERVER_TOKEN (a flag shows in ps)."""
    server_policy: str = ""
    """Which of the server's policies to run (a path its operator passed); empty: the server's default."""


GUIDE_ALIASES = {"robot_type": "robot.type", "policy_path": "policy.path", "fps": "control_frequency"}


def parse_deploy_config(argv: list[str] | None = None) -> DeployConfig:
    """Parse flags; ``--robot-config=file.json`` supplies the robot section from a file."""
    return parse_config(DeployConfig, argv, GUIDE_ALIASES, {"robot_config": "robot"})


def deploy(cfg: DeployConfig) -> ControlReport:
    if cfg.robot is None:
        raise ValueError("Choose a robot: --robot.type=... (or --robot-type=...).")
    if not cfg.policy.path and not cfg.server_address:
        raise ValueError(
            "Choose a policy: --policy.path=<checkpoint folder or Hub id> (or --server_address)."
        )
    robot = make_robot_from_config(cfg.robot)
    safety: bool | SafetyConfig = cfg.safety_checks
    if cfg.safety_checks and cfg.max_relative_target is not None:
        safety = SafetyConfig(max_relative_target=cfg.max_relative_target)
    policy = (
        load_policy(
            cfg.policy.path,
            cpu_acceleration=cfg.cpu_acceleration,
            rtc_config=cfg.policy.rtc_config,
            backend=cfg.policy.backend,
        )
        if cfg.policy.path
        else _RemoteOnly()
    )
    return deploy_policy(
        policy, robot, safety, cfg.control_frequency, cfg.duration_s or None, None, cfg.task,
        cfg.async_inference, cfg.server_address or None, cfg.chunk_size_threshold, cfg.aggregate_fn_name,
        auth_token=cfg.auth_token, server_policy=cfg.server_policy or None,
    )  # fmt: skip


class _RemoteOnly:
    """Stands in for a policy that lives on the server: nothing to check or reset locally."""

    class config:  # noqa: N801 (mirrors policy.config)
        input_features: dict = {}
        output_features: dict = {}

    def reset(self) -> None:
        pass


@console_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, DeployConfig, GUIDE_ALIASES):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        report = deploy(parse_deploy_config(argv))
    except KeyboardInterrupt:
        print("Stopped (Ctrl-C); the robot was disconnected with torque off.")
        return 130
    print(f"Deployment finished: {report.summary()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
