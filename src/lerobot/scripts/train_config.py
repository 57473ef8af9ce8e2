"""``lerobot-train`` configuration: one dataclass, every field a flag.

Both spellings give the same config::

    lerobot-train --policy.type=act --dataset.repo_id=me/demo --steps=5000 --batch_size=8 \\
        --optimizer.lr=1e-4 --eval_freq=1000 --save_freq=1000 --policy.device=cpu    # LeRobot's
    lerobot-train --policy=act --dataset.repo_id=me/demo --training.num_steps=5000 \\
        --training.batch_size=8 --training.learning_rate=1e-4 --training.eval_freq=1000 \\
        --training.save_freq=1000 --device=cpu                                          # the guide's

Policy fields are flags too (``--policy.chunk_size=20 --policy.down_dims='[256, 512, 1024]'``);
``--policy.path=<checkpoint>`` fine-tunes a trained policy; ``--config_path=train_config.json``
loads a whole config that later flags override. ``--resume=true --output_dir=<run>`` (or
``--config_path=<run>/checkpoints/<step>/pretrained_model/train_config.json``) continues a run.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lerobot.configs.parser import (
    ConfigError,
    build,
    load_config_file,
    merge_config_file,
    merge_trees,
    parse_args,
)
from lerobot.datasets.transforms import ImageTransformsConfig
from lerobot.envs.configs import EnvConfig
from lerobot.optim.optimizers import OptimizerConfig
from lerobot.optim.schedulers import SchedulerConfig
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.peft_adapters import PeftConfig, holds_adapter
from lerobot.scripts.eval_config import (
    COMMON_ALIASES,
    EvalConfig,
    config_to_dict,
    default_output_dir,
    env_config_from_tree,
    policy_config_from_tree,
)

TRAIN_CONFIG_NAME = "train_config.json"
CHECKPOINTS_DIR = "checkpoints"
LAST_CHECKPOINT = "last"
PRETRAINED_DIR = "pretrained_model"
TRAINING_STATE_DIR = "training_state"

# The user guide's spellings -> LeRobot's fields (see the module docstring).
GUIDE_ALIASES = {
    **COMMON_ALIASES,
    "training.num_steps": "steps",
    "training.steps": "steps",
    "training.batch_size": "batch_size",
    "training.learning_rate": "optimizer.lr",
    "training.lr": "optimizer.lr",
    "training.eval_freq": "eval_freq",
    "training.save_freq": "save_freq",
    "training.log_freq": "log_freq",
    "training.seed": "seed",
    "training.num_workers": "num_workers",
    "training.grad_clip_norm": "optimizer.grad_clip_norm",
    "training.gradient_accumulation_steps": "gradient_accumulation_steps",
    "training.use_amp": "policy.use_amp",
    "training.domain_randomization": "env.domain_randomization",
    "use_amp": "policy.use_amp",
    "env_eval_freq": "eval_freq",  # LeRobot 0.6's name
}


@dataclass
class DatasetConfig:
    repo_id: str = ""
    """Dataset id, e.g. lerobot/pusht or me/demo (required)."""
    root: Path | None = None
    """Local folder of the dataset (default $HF_LEROBOT_HOME/<repo_id>)."""
    episodes: list[int] | None = None
    """Train on these episodes only (default: all)."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of the dataset (default: the current codebase version)."""
    video_backend: str | None = None
    """Video decoder: pyav or torchcodec (default: torchcodec where it decodes here, else pyav)."""
    val_split: float = 0.1
    """Share of episodes held out for val_loss (only when that leaves >= 1 val and >= 2 train episodes)."""
    image_transforms: ImageTransformsConfig = field(default_factory=ImageTransformsConfig)
    """Camera augmentation for the training frames only (--dataset.image_transforms.enable=true;
    --dataset.image_transforms.tfs='{"shift": {"type": "RandomShift", "kwargs": {"pad": 4}}}')."""
    first_frames: int = 0
    """With --dataset.first_frames_repeat: how many frames at the start of each episode are repeated."""
    first_frames_repeat: int = 1
    """Sample each episode's first --dataset.first_frames frames this many times as often as the others
    (for tasks decided at the start, e.g. by the instruction, that later frames reveal anyway)."""


@dataclass
class WandBConfig:
    enable: bool = False
    """Log to Weights & Biases (pip install wandb)."""
    project: str = "lerobot"
    """W&B project the run is logged to."""
    entity: str | None = None
    """W&B user or team (default: your default entity)."""
    run_name: str | None = None
    """Default: the job name."""
    mode: str | None = None
    """online | offline | disabled (default: wandb's own, e.g. $WANDB_MODE)."""
    notes: str | None = None
    """Free text attached to the W&B run."""


@dataclass
class OnlineConfig:
    enable: bool = False
    """Learn from interaction in --env (act, store in a replay buffer, update in between); on by itself
    when --env is given without a dataset. With a dataset too, the dataset seeds the buffer (offline + online)."""
    buffer_capacity: int = 100_000
    """Frames the replay buffer keeps (the oldest are overwritten first)."""
    seed_steps: int = 1000
    """Env steps with uniformly random actions before the policy acts and the updates start."""
    updates_per_step: int = 1
    """Optimizer updates after each env step once seed_steps are collected (--steps counts updates)."""


@dataclass
class TrainPipelineConfig:
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    policy: PreTrainedConfig | None = None
    """--policy.type=act (guide: --policy=act) or --policy.path=<checkpoint> to fine-tune."""
    env: EnvConfig | None = None
    """Optional simulation for evaluation every eval_freq steps (--env.type=pusht ...)."""
    output_dir: Path | None = None
    """Default outputs/train/<date>/<time>_<job_name>; must not exist unless --resume=true."""
    job_name: str | None = None
    """Name of the run in logs and the default output_dir (default: [<env>_]<policy>)."""
    resume: bool = False
    """Continue the run in output_dir from its last checkpoint (weights, optimizer, scheduler, RNG, data order)."""
    seed: int = 1000
    """Seeds torch, numpy and Python, the data order and the evaluation episodes."""
    steps: int = 100_000
    """Optimizer updates (guide: --training.num_steps)."""
    batch_size: int = 8
    """Samples per micro-batch per process."""
    gradient_accumulation_steps: int = 1
    """Micro-batches summed into one optimizer update."""
    num_workers: int = 4
    """DataLoader worker processes (0: load in the training process)."""
    amp_dtype: str = "bfloat16"
    """Autocast dtype with --policy.use_amp=true on CUDA: bfloat16 or float16 (float16 adds a GradScaler)."""
    log_freq: int = 200
    """Log the training loss, learning rate and speed every N steps."""
    save_freq: int = 20_000
    """Checkpoint every N steps (and at the end); 0: only at the end."""
    save_checkpoint: bool = True
    """Write checkpoints at all (false: a throwaway run that leaves only logs)."""
    eval_freq: int = 20_000
    """Evaluate in --env every N steps (0: never)."""
    val_freq: int = 1000
    """Compute val_loss on the held-out episodes every N steps (0: never)."""
    val_batches: int = 8
    """Batches per val_loss estimate."""
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    """Overrides of the policy's optimizer preset."""
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    """Overrides of the policy's learning-rate schedule preset."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Rollouts in --env every eval_freq steps."""
    gradient_checkpointing: bool = False
    """Recompute layer activations in the backward pass (less memory; for policies that support it: smolvla)."""
    rename_map: dict[str, str] = field(default_factory=dict)
    """Dataset feature name -> the policy's, e.g. '{"observation.images.front": "observation.images.camera1"}'
    to fine-tune a checkpoint whose cameras are named otherwise; saved with the checkpoint."""
    fsdp: bool = False
    """With several processes (torchrun / accelerate launch): shard parameters, gradients and optimizer
    state over them (torch's fully_shard) instead of DistributedDataParallel's
    full replicas, for models too big to replicate. Checkpoints hold the gathered full weights and
    optimizer state (the same files as DDP). Resuming an FSDP run is not supported yet."""
    peft: PeftConfig | None = None
    """LoRA adapters instead of full fine-tuning: --peft.method_type=LORA --peft.r=8 (see
    lerobot.policies.peft_adapters for the fields and what checkpoints hold)."""
    online: OnlineConfig = field(default_factory=OnlineConfig)
    """Online training for policies that learn from interaction (TD-MPC): see lerobot.scripts.train_online."""
    wandb: WandBConfig = field(default_factory=WandBConfig)
    """Weights & Biases logging (off by default)."""
    tensorboard: bool = True
    """Write TensorBoard logs to output_dir/tensorboard (when tensorboard is installed)."""
    cpu_acceleration: bool = True
    """On the CPU, swap in lerobot.policies.cpu_acceleration's faster modules (same math and checkpoints)."""
    checkpoint_path: Path | None = field(default=None, init=False)
    """The checkpoint a resumed run continues from (set when parsing --resume=true)."""

    @property
    def device(self) -> str:
        return str(self.policy.device) if self.policy is not None else "cpu"

    def validate(self) -> None:
        """Complain about what cannot work before any data is loaded."""
        if self.policy is None:
            raise ConfigError(
                "Choose a policy: --policy.type=act (guide: --policy=act), or --policy.path=<checkpoint> to fine-tune."
            )
        if not self.dataset.repo_id and self.env is not None:
            self.online.enable = True  # nothing to learn from but the env (the guide's G28)
        if not self.dataset.repo_id and not self.online.enable:
            raise ConfigError(
                "Name the dataset: --dataset.repo_id=<user>/<name> (and --dataset.root=<dir> if local), or "
                "learn online in a sim: --env.type=<sim> without a dataset."
            )
        if self.online.enable and self.env is None:
            raise ConfigError(
                "--online.enable=true learns by acting in a sim: choose one with --env.type=<sim>."
            )
        if self.online.enable and self.gradient_accumulation_steps != 1:
            raise ConfigError(
                "Online training updates once per sampled batch: leave --gradient_accumulation_steps at 1 "
                f"(got {self.gradient_accumulation_steps}); raise --batch_size instead."
            )
        if self.online.enable and (self.online.buffer_capacity < 2 or self.online.updates_per_step < 1):
            raise ConfigError(
                "--online.buffer_capacity must be >= 2 and --online.updates_per_step >= 1, got "
                f"{self.online.buffer_capacity} and {self.online.updates_per_step}."
            )
        for name in ("steps", "batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be >= 1, got {getattr(self, name)}.")
        if self.amp_dtype not in ("bfloat16", "float16"):
            raise ConfigError(f"--amp_dtype must be bfloat16 or float16, got {self.amp_dtype!r}.")
        if not 0.0 <= self.dataset.val_split < 1.0:
            raise ConfigError(f"--dataset.val_split must be in [0, 1), got {self.dataset.val_split}.")
        if self.dataset.first_frames < 0 or self.dataset.first_frames_repeat < 1:
            raise ConfigError(
                "--dataset.first_frames must be >= 0 and --dataset.first_frames_repeat >= 1, got "
                f"{self.dataset.first_frames} and {self.dataset.first_frames_repeat}."
            )
        if self.job_name is None:
            self.job_name = (
                f"{self.env.type}_{self.policy.type}" if self.env is not None else self.policy.type
            )
        if self.output_dir is None:
            self.output_dir = default_output_dir("train", self.job_name)

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    def save(self, directory: Path) -> None:
        (directory / TRAIN_CONFIG_NAME).write_text(json.dumps(self.to_dict(), indent=4))


def parse_train_config(argv: list[str] | None = None) -> TrainPipelineConfig:
    """Flags (either spelling) -> a validated config; ``--resume=true`` reads the run's saved config first."""
    return config_from_tree(parse_args(argv, GUIDE_ALIASES))


def config_from_tree(tree: dict[str, Any]) -> TrainPipelineConfig:
    """A nested dict of flag values (strings or JSON values) -> a validated config."""
    tree, config_path = merge_config_file(tree)
    checkpoint = None
    if _truthy(tree.get("resume")):
        checkpoint = find_resume_checkpoint(config_path, tree.get("output_dir"))
        if config_path is None:
            tree = merge_trees(load_config_file(checkpoint / PRETRAINED_DIR / TRAIN_CONFIG_NAME), tree)
        # The policy continues from the checkpoint's weights, not the run's original starting point;
        # a LoRA run (--peft.*, or one that continued an adapter checkpoint) rebuilds that starting point
        # and loads the checkpoint's adapters into it.
        if not holds_adapter(checkpoint / PRETRAINED_DIR):
            tree["policy"] = {**tree["policy"], "pretrained_path": None}
    _reject_unknown_guide_flags(tree.pop("training", None))
    policy, env = tree.pop("policy", None), tree.pop("env", None)
    cfg = build(TrainPipelineConfig, tree)
    cfg.policy = policy_config_from_tree(policy)
    cfg.env = env_config_from_tree(env)
    cfg.checkpoint_path = checkpoint
    cfg.validate()
    return cfg


def _reject_unknown_guide_flags(section: Any) -> None:
    """``--training.*`` flags that are not aliases arrive here: say which guide flag was meant."""
    if not section:
        return
    known = [name for name in GUIDE_ALIASES if name.startswith("training.")]
    flag = f"training.{next(iter(section))}" if isinstance(section, dict) else "training"
    close = difflib.get_close_matches(flag, known, n=1)
    hint = f" Did you mean --{close[0]}?" if close else ""
    raise ConfigError(
        f"Unknown flag --{flag}.{hint} The guide's training flags: " + ", ".join(f"--{k}" for k in known)
    )


def find_resume_checkpoint(config_path: Path | None, output_dir: Any) -> Path:
    """The checkpoint folder ``--resume=true`` continues from (``.../checkpoints/<step>``)."""
    if config_path is not None and config_path.parent.name == PRETRAINED_DIR:
        return config_path.parent.parent.resolve()
    if output_dir is None:
        raise ConfigError(
            "--resume=true needs the run to continue: --output_dir=<run folder> "
            "(or --config_path=<run>/checkpoints/<step>/pretrained_model/train_config.json)."
        )
    last = Path(output_dir) / CHECKPOINTS_DIR / LAST_CHECKPOINT
    if not (last / PRETRAINED_DIR / TRAIN_CONFIG_NAME).is_file():
        raise ConfigError(
            f"--resume=true: {last} holds no checkpoint (no {PRETRAINED_DIR}/{TRAIN_CONFIG_NAME})."
        )
    return last.resolve()


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("true", "1", "yes", "on")
