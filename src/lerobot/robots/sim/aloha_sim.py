"""Simulated bimanual ALOHA (``--robot.type=aloha_sim``): two ViperX 300s arms on gym-aloha's table.

The scene is :mod:`lerobot.envs.aloha` (tasks ``transfer_cube``, default, and ``insertion``; the gym ids
``AlohaTransferCube-v0`` / ``AlohaInsertion-v0`` are accepted too). There is no real ALOHA driver here,
so the features follow our bimanual convention: ``left_waist.pos`` .. ``left_wrist_rotate.pos`` in
degrees, ``left_gripper.pos`` 0 (closed) .. 100 (open), then the same for ``right_``. The natural
control rate is 50 Hz (the scene's physics runs at 500 Hz, a whole number of steps per period).
Camera views: the scene's ``top``, ``angle``, ``front_close``, ``left_pillar``, ``right_pillar``,
``left_wrist``, ``right_wrist``.
"""

from __future__ import annotations

import numpy as np

from lerobot.envs import aloha
from lerobot.robots.robot import ROBOTS
from lerobot.robots.sim.config import AlohaSimConfig
from lerobot.robots.sim.twin import JointUnits, SimTwin


@ROBOTS.register("aloha_sim")
class AlohaSim(SimTwin):
    """Bimanual twin: 14 joints (2 x 6 arm joints + gripper)."""

    config_class = AlohaSimConfig
    name = "aloha_sim"
    sim_kind = "aloha"

    def _make_sim(self) -> aloha.AlohaEnv:
        by_task = {task: gym_id for gym_id, task in aloha.TASKS.items()}
        gym_id = by_task.get(self.config.task, self.config.task)
        if gym_id not in aloha.TASKS:
            raise ValueError(f"Unknown aloha_sim task {self.config.task!r}; tasks: {', '.join(by_task)}.")
        return aloha.AlohaEnv(task=gym_id, obs_type="state", render_mode=None, fps=self.config.fps)

    def _joint_units(self) -> list[JointUnits]:
        units = []
        for name in aloha.JOINT_NAMES:
            side, joint = name.split("_", 1)
            if joint == "gripper":
                units.append(JointUnits(f"{name}.pos", 0.0, 1.0, "gripper"))
            else:
                lo, hi = self.model.joint(f"vx300s_{side}/{joint}").range
                units.append(JointUnits(f"{name}.pos", float(lo), float(hi), self._units_kind(name)))
        return units

    def _sim_joints(self) -> np.ndarray:
        return self.sim.joint_state

    def check_task_completion(self) -> bool:
        with self.lock:
            return self.sim.reward() == 4
