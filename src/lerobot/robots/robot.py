"""The ``Robot`` API every arm implements, real or simulated, and the configs that select one.

One robot speaks two dialects, so both LeRobot scripts and the user guide's code run unchanged:

- LeRobot's flat view: ``get_observation()`` is a dict of ``"<motor>.pos"`` floats and camera
  images keyed by camera name; ``send_action({"<motor>.pos": float, ...})``.
- The guide's structured view, on the same dict: ``obs["joint_positions"]`` (float32 vector of the
  arm joints), ``obs["gripper"]``, ``obs["cameras"]["front"]`` (H x W x 3 uint8); and
  ``send_action({"joint_positions": [...], "gripper": 1.0})``.

Subclasses implement ``_get_observation`` / ``_send_action`` on flat dicts; the base class does the
translation and the checks (action keys and sizes) once for every robot.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from lerobot.utils.device import Device, DeviceConfig
from lerobot.utils.registry import Registry

GRIPPER = "gripper"


@dataclass(kw_only=True)
class RobotConfig(DeviceConfig):
    """Base of every registered robot config (``--robot.type=<name>`` picks the subclass)."""

    cameras: dict[str, Any] = field(default_factory=dict)
    """Camera name -> camera config (fps, width and height must be set so recordings know their shapes)."""


ROBOT_CONFIGS: Registry[type[RobotConfig]] = Registry("robot")
RobotConfig.choices = ROBOT_CONFIGS  # lets the CLI parser resolve --robot.type
ROBOTS: Registry[type[Robot]] = Registry("robot")

# The user guide's robot names (``--robot-type=so100``, ``RobotConfig(robot_type="koch")``).
GUIDE_ROBOT_NAMES = {
    "so100": "so100_follower",
    "so101": "so101_follower",
    "koch": "koch_follower",
    "openarm": "openarm_follower",
    "hope_jr": "hope_jr_arm",
}
for _alias, _name in GUIDE_ROBOT_NAMES.items():
    ROBOT_CONFIGS.register_alias(_alias, _name)


def split_arm_gripper(keys: list[str]) -> tuple[list[str], list[str]]:
    """Position keys of the arm joints and of the gripper (``gripper.pos``, ``arm_gripper.pos``).

    Velocity keys (a mobile base's ``x.vel``) belong to neither, so the guide's ``joint_positions``
    view of a mobile manipulator holds only its arm.
    """
    positions = [k for k in keys if k.endswith(".pos")]
    grip = [k for k in positions if k.removesuffix(".pos").endswith(GRIPPER)]
    return [k for k in positions if k not in grip], grip


class RobotObservation(dict):
    """A flat observation dict that also answers the guide's structured keys.

    ``joint_positions``, ``gripper`` and ``cameras`` are computed on access from the flat keys, so
    recording code that iterates the dict sees exactly the robot's ``observation_features``.
    """

    def __init__(self, flat: dict[str, Any], joint_keys: list[str], camera_keys: list[str]):
        super().__init__(flat)
        self._joint_keys, self._camera_keys = joint_keys, camera_keys

    def __missing__(self, key: str) -> Any:
        arm, grip = split_arm_gripper(self._joint_keys)
        if key == "joint_positions":
            return np.array([self[k] for k in arm], dtype=np.float32)
        if key == GRIPPER and grip:
            return float(self[grip[0]])
        if key == "cameras":
            return {name: self[name] for name in self._camera_keys}
        raise KeyError(key)


class Robot(Device):
    """A robot: connect, calibrate, read observations, send actions, disconnect."""

    config_class: ClassVar[type[RobotConfig]]
    calibration_kind = "robots"

    def __init__(self, config: RobotConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self.robot_type = self.name

    @classmethod
    def resolve_config(cls, config: Any, fields: dict[str, Any]) -> RobotConfig:
        """As ``Device.resolve_config``; the guide's ``RobotConfig(robot_type=...)`` is checked by the
        registered config it wraps and kept as given, so its ``control_frequency`` stays readable."""
        registered = super().resolve_config(getattr(config, "robot_config", config), fields)
        return registered if config is None else config

    # ------------------------------------------------------------------ declared features

    @property
    def observation_features(self) -> dict[str, type | tuple[int, ...]]:
        """``{"<motor>.pos": float, ..., "<camera>": (H, W, 3)}``: what a recording stores.

        By default what the robot is commanded (its action keys, read back) plus its configured
        cameras; a robot that senses more or other things overrides this.
        """
        cams = {name: (cfg.height, cfg.width, 3) for name, cfg in self.config.cameras.items()}
        return {**self.action_features, **cams}

    @property
    @abc.abstractmethod
    def action_features(self) -> dict[str, type]:
        """``{"<motor>.pos": float, ...}``: the keys ``send_action`` expects."""

    @property
    def camera_keys(self) -> list[str]:
        return [k for k, v in self.observation_features.items() if isinstance(v, tuple)]

    @property
    def joint_keys(self) -> list[str]:
        return [k for k, v in self.observation_features.items() if not isinstance(v, tuple)]

    # ------------------------------------------------------------------ I/O

    def get_observation(self) -> RobotObservation:
        return RobotObservation(self._get_observation(), self.joint_keys, self.camera_keys)

    def send_action(self, action: dict[str, Any]) -> dict[str, float]:
        """Send an action (flat or structured); returns the action actually sent (after clipping).

        A structured action without ``"gripper"`` (the guide's ``{"joint_positions": ...}``) leaves
        the gripper where it was last sent, or where it is now if it was never sent.
        """
        sent = self._send_action(self.flat_action(action))
        self._last_sent = sent
        return sent

    def _held_gripper(self, key: str) -> float:
        """The gripper target that keeps it still: the last one sent, else its present position."""
        last = getattr(self, "_last_sent", None)
        if last and key in last:
            return float(last[key])
        return float(self._get_observation()[key])

    def read_present(self) -> dict[str, float]:
        """The present value of every action key, read now: what a relative step is measured from.

        From a fresh observation by default; a robot that can read its joints alone (without camera
        frames) overrides this.
        """
        obs = self.get_observation()
        missing = [k for k in self.action_features if k not in obs]
        if missing:
            raise RuntimeError(f"{self.name}'s observation lacks {missing}, so its present state is unknown.")
        return {k: float(obs[k]) for k in self.action_features}

    @abc.abstractmethod
    def _get_observation(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    def _send_action(self, action: dict[str, float]) -> dict[str, float]: ...

    def flat_action(self, action: dict[str, Any]) -> dict[str, float]:
        """Translate the guide's ``{"joint_positions": [...], "gripper": g}`` and check the keys."""
        keys = list(self.action_features)
        if "joint_positions" in action:
            arm, grip = split_arm_gripper(keys)
            joints = np.asarray(action["joint_positions"], dtype=np.float64).reshape(-1)
            if len(joints) != len(arm):
                raise ValueError(
                    f"{self.name} expects {len(arm)} joint positions ({', '.join(arm)}), got {len(joints)}."
                )
            flat = dict(zip(arm, joints.tolist()))
            if grip:
                flat[grip[0]] = float(action[GRIPPER]) if GRIPPER in action else self._held_gripper(grip[0])
            rest = [k for k in keys if k not in flat]  # e.g. a mobile base's x.vel, given flat
            missing = [k for k in rest if k not in action]
            if missing:
                raise ValueError(f"{self.name} also needs {missing} in the action (flat keys).")
            return {**flat, **{k: float(np.asarray(action[k]).reshape(())) for k in rest}}
        missing = [k for k in keys if k not in action]
        extra = [k for k in action if k not in keys]
        if missing or extra:
            raise ValueError(
                f"Action for {self.name} has missing keys {missing} and unexpected keys {extra}; expected "
                f"{keys} or the structured form {{'joint_positions': [...], 'gripper': ...}}."
            )
        return {k: float(np.asarray(action[k]).reshape(())) for k in keys}

    def check_task_completion(self) -> bool:
        """Whether the current task is done; only simulated robots can tell."""
        raise NotImplementedError(
            f"{self.name} cannot tell whether a task is complete (only simulated robots can)."
        )

    def forward_kinematics(self, joint_positions: Any) -> np.ndarray:
        """(x, y, z) of the tool point, in metres in the base frame, for the given joint positions.

        ``joint_positions`` is the guide's arm-joint vector (``obs["joint_positions"]``, a policy's
        action; list, array or tensor) or a flat ``{"<joint>.pos": degrees}`` dict. Uses the arm's
        kinematic chain (:mod:`lerobot.robots.kinematics`); a robot without one gets an error naming
        the chains there are.
        """
        from lerobot.robots.kinematics import chain_for_robot, forward_kinematics

        chain = chain_for_robot(self, None, "forward_kinematics")
        if isinstance(joint_positions, dict):
            angles = {j: float(joint_positions[f"{j}.pos"]) for j in chain.joint_names}
        else:
            arm, _ = split_arm_gripper(list(self.action_features))
            values = np.asarray(joint_positions, dtype=np.float64).reshape(-1)
            if len(values) != len(arm):
                raise ValueError(
                    f"{self.name} has {len(arm)} arm joints ({', '.join(arm)}), got {len(values)} values."
                )
            by_key = dict(zip(arm, values))
            angles = {j: float(by_key[f"{j}.pos"]) for j in chain.joint_names}
        return forward_kinematics(chain, angles)[:3, 3]


class RobotWrapper(Robot):
    """A robot in front of another one (the safety layer, end-effector control): same name and config.

    Everything is passed through to ``self.robot``; subclasses override what they change.
    Attributes not defined here (``bus``, ``cameras``, ...) are read from the wrapped robot.
    """

    def __init__(self, robot: Robot):
        self.robot = robot
        self.name = robot.name
        super().__init__(robot.config)
        self.robot_type = robot.robot_type

    def __getattr__(self, name: str) -> Any:
        robot = self.__dict__.get("robot")
        if robot is None:
            raise AttributeError(name)
        return getattr(robot, name)

    @property
    def observation_features(self) -> dict[str, type | tuple[int, ...]]:
        return self.robot.observation_features

    @property
    def action_features(self) -> dict[str, type]:
        return self.robot.action_features

    @property
    def is_connected(self) -> bool:
        return self.robot.is_connected

    @property
    def is_calibrated(self) -> bool:
        return self.robot.is_calibrated

    def connect(self, calibrate: bool = True) -> None:
        self.robot.connect(calibrate)

    def calibrate(self) -> None:
        self.robot.calibrate()

    def configure(self) -> None:
        self.robot.configure()

    def disconnect(self) -> None:
        self.robot.disconnect()

    def check_task_completion(self) -> bool:
        return self.robot.check_task_completion()

    def _get_observation(self) -> dict[str, Any]:
        return self.robot.get_observation()

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        return self.robot.send_action(action)


def make_robot_from_config(config: RobotConfig) -> Robot:
    """Instantiate the robot registered under ``config.type``."""
    import lerobot.robots  # noqa: F401  (registers the built-in robots)

    return ROBOTS.get(config.type)(config)
