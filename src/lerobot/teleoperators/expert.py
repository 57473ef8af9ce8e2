"""The scripted experts as a teleoperator (``--teleop.type=expert --teleop.env=so100 --teleop.task=pick_cube``).

An expert plans from privileged simulator state, so it can only drive a simulated twin, and only once it
knows which one: ``bind(robot)`` (called by ``lerobot-record`` / ``collect_demonstrations`` after
connecting) hands it the twin, whose scene (``robot.sim``) it reads. ``reset()`` (called after the twin
is reset for an episode) plans the new episode; ``get_action()`` returns the next target in the twin's
units. Everything is deterministic given the episode's seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lerobot.envs.experts import EXPERTS, Expert
from lerobot.teleoperators.teleoperator import (
    TELEOPERATOR_CONFIGS,
    TELEOPERATORS,
    Teleoperator,
    TeleoperatorConfig,
)
from lerobot.utils.errors import DeviceNotConnectedError


@TELEOPERATOR_CONFIGS.register("expert")
@dataclass(kw_only=True)
class ExpertTeleopConfig(TeleoperatorConfig):
    env: str = "so100"
    """Expert family: ``so100`` (drives so100_sim / so101_sim) or ``aloha`` (drives aloha_sim)."""
    task: str = ""
    """The task the twin's scene must be set up for; empty: whatever task the twin has."""


def _action_keys(env: str) -> list[str]:
    """The action keys of the twin an expert family drives (so100_sim's, aloha_sim's)."""
    from lerobot.envs.aloha import JOINT_NAMES as ALOHA_JOINTS
    from lerobot.motors.arm import ARM_JOINTS, GRIPPER

    keys = {"so100": [*ARM_JOINTS, GRIPPER], "aloha": ALOHA_JOINTS}
    if env not in keys:
        raise ValueError(f"No expert teleoperator for env {env!r}; choose one of {sorted(keys)}.")
    return [f"{name}.pos" for name in keys[env]]


@TELEOPERATORS.register("expert")
class ExpertTeleop(Teleoperator):
    """A :mod:`lerobot.envs.experts` expert producing a twin's actions (see the module docstring)."""

    config_class = ExpertTeleopConfig
    name = "expert"
    config: ExpertTeleopConfig

    def __init__(self, config: ExpertTeleopConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        self._keys = _action_keys(self.config.env)
        self.expert: Expert = EXPERTS[self.config.env]()
        self.robot: Any = None
        self._connected = False

    @property
    def action_features(self) -> dict[str, type]:
        return dict.fromkeys(self._keys, float)

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False
        self.robot = None

    def bind(self, robot: Any) -> None:
        """Attach the twin this expert drives; a real robot or another scene is refused with the reason."""
        kind = getattr(robot, "sim_kind", None)
        if kind is None:
            raise ValueError(
                f"The expert teleoperator reads the simulator's state, so it drives simulated twins only, "
                f"not {robot.name}. Use a leader arm, keyboard or gamepad for a real robot."
            )
        if kind != self.config.env:
            raise ValueError(
                f"--teleop.env={self.config.env} cannot drive {robot.name} (a {kind} scene); "
                f"pass --teleop.env={kind}."
            )
        task = robot.sim.task
        if self.config.task and self.config.task not in (task, robot.config.task):
            raise ValueError(
                f"--teleop.task={self.config.task} but {robot.name}'s scene is set up for {task!r}; pass "
                f"--robot.task={self.config.task} or drop --teleop.task."
            )
        self.robot = robot
        self.expert.reset()

    def reset(self) -> None:
        """Plan the next episode from the twin's freshly reset scene."""
        self.expert.reset(self._sim() if self.robot is not None else None)

    def _sim(self) -> Any:
        if not self._connected:
            raise DeviceNotConnectedError(f"{self.name} is not connected; call connect() first.")
        if self.robot is None:
            raise RuntimeError(
                "The expert teleoperator is not bound to a twin: call teleop.bind(robot) first."
            )
        return self.robot.sim

    def get_action(self) -> dict[str, float]:
        sim = self._sim()
        return self.robot.action_from_sim(self.expert.select_action(None, sim))
