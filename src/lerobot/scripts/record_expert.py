"""Record a sim task's scripted expert into a LeRobotDataset, in the env's own units and feature names.

    python -m lerobot.scripts.record_expert --env.type=aloha --env.task=AlohaTransferCube-v0 \\
        --env.obs_type=state --repo_id=me/aloha_transfer --root=data/aloha_transfer --num_episodes=50

Why not ``lerobot-record --robot.type=aloha_sim --teleop.type=expert``: a simulated twin speaks the
real robot's units (degrees, gripper 0..100), so its datasets train policies for the real robot. A
policy meant for ``lerobot-eval --env.type=...`` must be trained on the env's own observations and
actions, which is what this records. Episode ``i`` uses seed ``first_seed + i``; evaluate on seeds
outside that range (``lerobot-eval --seed=1000``) to measure generalisation.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.envs.configs import EnvConfig
from lerobot.envs.recording import record_expert_dataset
from lerobot.utils.cli import console_main


@dataclass
class RecordExpertConfig:
    env: EnvConfig | None = None
    """--env.type=so100|aloha|pusht, --env.task=..., --env.obs_type=state|pixels_agent_pos."""
    repo_id: str = ""
    root: Path | None = None
    num_episodes: int = 50
    first_seed: int = 0
    task: str = ""
    """Instruction stored with every frame (default: "<type> <task>"; a language task such as so100
    pick_color stores each episode's own instruction and takes none)."""
    video: bool = True
    action_noise: float = 0.0
    """Std of Gaussian noise added to the executed (not the stored) actions, in action units (DART)."""
    rewards: bool = False
    """Also store each step's next.reward, next.done and next.success (for offline + online RL, e.g.
    TD-MPC's --online.enable=true)."""


@console_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, RecordExpertConfig):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = parse_config(RecordExpertConfig, argv)
    if cfg.env is None or not cfg.repo_id:
        raise SystemExit("Give --env.type=... and --repo_id=<user>/<name> (and --root=<dir>).")
    dataset, success = record_expert_dataset(
        cfg.env,
        cfg.repo_id,
        cfg.root,
        cfg.num_episodes,
        cfg.task or None,
        cfg.first_seed,
        cfg.video,
        cfg.action_noise,
        cfg.rewards,
    )
    print(
        f"Recorded {dataset.meta.total_episodes} episodes ({dataset.meta.total_frames} frames, "
        f"{100 * success:.0f}% successful) into {dataset.root}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
