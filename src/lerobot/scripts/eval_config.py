"""``lerobot-eval`` configuration, and the pieces training shares with it (policy / env sections).

::

    lerobot-eval --policy.path=outputs/train/.../checkpoints/last/pretrained_model \\
        --env.type=pusht --env.task=PushT-v0 --eval.n_episodes=50 --eval.batch_size=10 \\
        --eval.max_steps=300 --output_dir=outputs/eval/pusht --seed=1000 --device=cpu

``--policy.path`` loads the checkpoint's ``config.json``; other ``--policy.*`` flags override its
fields (``--policy.n_action_steps=8``). ``--policy=act`` is the guide's ``--policy.type=act``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from lerobot.configs.parser import ConfigError, build, merge_config_file, parse_args
from lerobot.envs.configs import EnvConfig
from lerobot.policies.config import PreTrainedConfig
from lerobot.robots import RobotConfig

# Spellings shared by lerobot-train and lerobot-eval.
COMMON_ALIASES = {"policy": "policy.type", "device": "policy.device"}
EVAL_ALIASES = {**COMMON_ALIASES, "robot_type": "robot.type"}  # the guide's --robot-type


@dataclass
class EvalConfig:
    n_episodes: int = 50
    """Episodes to roll out; episode i is reset with seed + i."""
    batch_size: int = 10
    """Environments stepped in parallel (a vector env)."""
    max_steps: int | None = None
    """Steps per episode before it is cut (default: the env's episode_length)."""
    max_videos: int = 10
    """Rollout videos of the first episodes to save (0: none)."""

    def __post_init__(self) -> None:
        if self.n_episodes < 1 or self.batch_size < 1:
            raise ConfigError(
                f"--eval.n_episodes and --eval.batch_size must be >= 1, got {self.n_episodes}, {self.batch_size}."
            )


@dataclass
class EvalPipelineConfig:
    env: EnvConfig | None = None
    """The simulation: --env.type=pusht --env.task=... (an EnvConfig)."""
    robot: RobotConfig | None = None
    """Evaluate on a robot or its twin instead (--robot.type=so100_sim, or so100_follower --robot.port=...)."""
    control_frequency: float | None = None
    """Robot evaluation: control rate in Hz (default: the twin's fps, else 30)."""
    task: str = ""
    """Robot evaluation: instruction for language-conditioned policies."""
    safety_checks: bool = True
    """Robot evaluation: every action goes through the safety layer (joint limits, e-stop key)."""
    max_relative_target: float | None = None
    """Robot evaluation: largest move per step and motor, in the robot's units (safety layer)."""
    policy: PreTrainedConfig | None = None
    """--policy.path=<checkpoint folder or Hub id>, optionally with --policy.<field> overrides."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: Path | None = None
    """Default outputs/eval/<date>/<time>_<env>_<policy>."""
    job_name: str | None = None
    """Name of the run in the default output_dir (default: <env>_<policy>)."""
    seed: int = 1000
    """Episode i of the evaluation uses env seed seed + i."""
    cpu_acceleration: bool = True
    """On the CPU, swap in lerobot.policies.cpu_acceleration's faster modules (same math)."""

    def validate(self) -> None:
        if self.policy is None or not self.policy.pretrained_path:
            raise ConfigError(
                "Give the policy to evaluate: --policy.path=<checkpoint folder or Hub repo id>."
            )
        if self.env is None and self.robot is None:
            raise ConfigError(
                "Give the environment (--env.type=<pusht|aloha|...> and --env.task=...) or a robot "
                "(--robot.type=<robot or twin>)."
            )
        if self.env is not None and self.robot is not None:
            raise ConfigError("Give --env.* or --robot.*, not both: one evaluation runs in one place.")
        if self.output_dir is None:
            where = self.env.type if self.env is not None else self.robot.type
            name = self.job_name or f"{where}_{self.policy.type}"
            self.output_dir = default_output_dir("eval", name)


def default_output_dir(kind: str, job_name: str) -> Path:
    now = dt.datetime.now()
    return Path("outputs") / kind / now.strftime("%Y-%m-%d") / f"{now.strftime('%H-%M-%S')}_{job_name}"


def policy_config_from_tree(tree: Any) -> PreTrainedConfig | None:
    """The ``policy`` section of the flags -> a policy config.

    ``{"type": "act", ...}`` builds a fresh config; ``{"path": p, ...}`` loads ``p``'s config.json
    and applies the remaining keys as overrides (and remembers ``p`` as ``pretrained_path``).
    Unknown keys fail with the closest valid spelling.
    """
    if tree is None:
        return None
    import lerobot.policies  # noqa: F401  (registers the built-in policy types)

    tree = {"type": tree} if isinstance(tree, str) else dict(tree)
    path = tree.pop("path", None)
    if path is not None:
        if "type" in tree:
            raise ConfigError(
                "--policy.path and --policy.type exclude each other: the checkpoint's config.json names the type."
            )
        tree = {**PreTrainedConfig.from_pretrained(str(path)).to_dict(), **tree, "pretrained_path": str(path)}
    return build(PreTrainedConfig, tree, prefix="policy.")


def env_config_from_tree(tree: Any) -> EnvConfig | None:
    """The ``env`` section -> a registered ``EnvConfig`` (``--env.type=pusht``); None when absent."""
    if tree is None:
        return None
    tree = {"type": tree} if isinstance(tree, str) else dict(tree)
    return build(EnvConfig, tree, prefix="env.")


def config_to_dict(value: Any) -> Any:
    """A config (nested dataclasses) -> JSON-able dict, registered choices with their ``type`` first."""
    if isinstance(value, PreTrainedConfig):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        kind = getattr(type(value), "type", None)
        if isinstance(kind, str) and kind and "type" not in {f.name for f in dataclasses.fields(value)}:
            out["type"] = kind
        for f in dataclasses.fields(value):
            if f.init:
                out[f.name] = config_to_dict(getattr(value, f.name))
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): config_to_dict(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [config_to_dict(v) for v in value]
    return value


def parse_eval_config(argv: list[str] | None = None) -> EvalPipelineConfig:
    tree, _ = merge_config_file(parse_args(argv, EVAL_ALIASES))
    policy, env = tree.pop("policy", None), tree.pop("env", None)
    cfg = build(EvalPipelineConfig, tree)
    cfg.policy = policy_config_from_tree(policy)
    cfg.env = env_config_from_tree(env)
    cfg.validate()
    return cfg
