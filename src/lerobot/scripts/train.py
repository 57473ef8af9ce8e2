"""``lerobot-train``: train a policy on a LeRobotDataset, with checkpoints you can resume exactly.

::

    lerobot-train --policy.type=act --dataset.repo_id=me/demo --steps=20000 --batch_size=8 \\
        --output_dir=outputs/train/act_demo --policy.device=cpu
    lerobot-train --policy=act --dataset.repo_id=me/demo --training.num_steps=20000 \\
        --training.batch_size=8 --training.learning_rate=1e-4 --device=cpu      # the guide's spelling
    lerobot-train --resume=true --output_dir=outputs/train/act_demo             # continue, bit for bit
    torchrun --nproc_per_node=2 -m lerobot.scripts.train ...                     # DistributedDataParallel
    torchrun --nproc_per_node=2 -m lerobot.scripts.train --fsdp=true ...         # sharded (FSDP2)
    lerobot-train --policy.path=<checkpoint> --peft.method_type=LORA --peft.r=8 ...  # LoRA adapters
    lerobot-train --policy.type=tdmpc --env.type=so100 --env.task=reach --env.obs_type=state \\
        --steps=20000                  # no dataset: learn online in the sim (lerobot.scripts.train_online)

In Python: ``train(policy_name="act", dataset_repo_id="me/demo", training_steps=20000, ...)`` or
``train_policy(policy_type="act", dataset=ds, training_steps=20000)``. See
:mod:`lerobot.scripts.train_config` for every flag.

One step = ``gradient_accumulation_steps`` micro-batches of ``batch_size`` samples per process, then
one optimizer update (clip, step, schedule). The data order is a function of (seed, step), and the
checkpoint holds the optimizer, scheduler and every RNG, so ``--resume=true`` reaches the same
weights as a run that was never interrupted. Under torchrun each process trains on its own share of
every batch stream (DistributedDataParallel averages the gradients); rank 0 alone logs (its own
loss), evaluates and writes checkpoints, to which every rank adds its RNG state.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lerobot.configs.parser import print_help_if_asked
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.metadata import LeRobotDatasetMetadata
from lerobot.datasets.transforms import ImageTransforms
from lerobot.optim import make_optimizer, make_scheduler, resolve_optimizer, resolve_scheduler
from lerobot.policies import peft_adapters
from lerobot.policies.config import missing_features
from lerobot.policies.cpu_acceleration import accelerate_on_cpu
from lerobot.policies.factory import make_policy
from lerobot.policies.policy_protocol import PolicyWithUpdate
from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.scripts.train_config import (
    CHECKPOINTS_DIR,
    GUIDE_ALIASES,
    LAST_CHECKPOINT,
    PRETRAINED_DIR,
    TrainPipelineConfig,
    config_from_tree,
    parse_train_config,
)
from lerobot.scripts.train_utils import (
    ResumableShuffleSampler,
    checkpoint_name,
    delta_timestamps_for,
    init_distributed,
    load_ema,
    load_rng,
    load_training_state,
    save_checkpoint,
    shard_with_fsdp,
    split_episodes,
)
from lerobot.utils.cli import console_main
from lerobot.utils.logging_utils import CSV_NAME, TrainLogger, format_duration
from lerobot.utils.memory import reuse_freed_memory
from lerobot.utils.random_utils import preserved_rng, set_seed

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished run leaves behind."""

    policy: PreTrainedPolicy = field(repr=False)
    output_dir: Path
    checkpoint_dir: Path | None
    """``checkpoints/last`` (a ``pretrained_model/`` inside loads with ``from_pretrained``)."""
    log_path: Path
    plot_path: Path | None
    final_loss: float
    """Mean training loss over the last logging window."""
    last_eval: dict[str, Any] | None = field(repr=False)


def run_training(cfg: TrainPipelineConfig) -> TrainResult:
    cfg.validate()
    if cfg.online.enable:  # learning from interaction: acting, a replay buffer, updates in between
        from lerobot.scripts.train_online import run_online_training

        return run_online_training(cfg)
    dist_info = init_distributed(cfg.device)
    device = torch.device(
        f"cuda:{dist_info.local_rank}" if cfg.device.startswith("cuda") and dist_info.enabled else cfg.device
    )
    output_dir = Path(cfg.output_dir)
    resuming = cfg.resume
    if resuming and cfg.checkpoint_path is None:
        raise ValueError(
            "--resume=true: no checkpoint to resume from (parse the flags with parse_train_config)."
        )
    if not resuming and output_dir.is_dir() and any(output_dir.iterdir()):
        raise FileExistsError(
            f"{output_dir} already holds a run. Continue it with --resume=true, or choose another --output_dir."
        )
    set_seed(cfg.seed + dist_info.rank)

    # ---- data: train / val episodes, each sample carrying the frames the policy asks for ----------
    meta = LeRobotDatasetMetadata(cfg.dataset.repo_id, cfg.dataset.root, revision=cfg.dataset.revision)
    episodes = cfg.dataset.episodes if cfg.dataset.episodes is not None else list(range(meta.total_episodes))
    train_eps, val_eps = split_episodes(episodes, cfg.dataset.val_split, cfg.seed)
    delta_timestamps = delta_timestamps_for(cfg.policy, meta.fps, meta.features)

    def open_dataset(eps: list[int], image_transforms: ImageTransforms | None = None) -> LeRobotDataset:
        return LeRobotDataset(
            cfg.dataset.repo_id,
            meta=meta,  # read once above, shared by the train and val datasets
            episodes=eps,
            image_transforms=image_transforms,
            delta_timestamps=delta_timestamps,
            revision=cfg.dataset.revision,
            video_backend=cfg.dataset.video_backend,
        )

    # Augmentation only on the training frames: val_loss measures the frames as recorded.
    augment = ImageTransforms(cfg.dataset.image_transforms) if cfg.dataset.image_transforms.enable else None
    train_ds = open_dataset(train_eps, augment)
    val_ds = open_dataset(val_eps) if val_eps and cfg.val_freq > 0 else None

    # ---- policy (a resumed run starts from its checkpoint's weights) ------------------------------
    policy_cfg = cfg.policy
    saved_model = cfg.checkpoint_path / PRETRAINED_DIR if resuming else None
    # A LoRA run resumes from its start again (the base, or the adapter checkpoint it continued), then
    # loads the saved adapters; any other run from the checkpoint's weights.
    lora_resume = saved_model is not None and peft_adapters.holds_adapter(saved_model)
    if saved_model is not None and not lora_resume:
        policy_cfg = dataclasses.replace(cfg.policy, pretrained_path=str(saved_model))
    policy_meta = RenamedMetadata(meta, cfg.rename_map) if cfg.rename_map else meta
    _check_dataset_has_features(policy_cfg, policy_meta)
    policy = make_policy(policy_cfg, ds_meta=policy_meta)
    policy.rename_map = {**policy.rename_map, **cfg.rename_map}
    if cfg.peft is not None:
        if peft_adapters.is_wrapped(policy):  # --policy.path=<a LoRA checkpoint that holds only adapters>
            raise ValueError(
                f"--policy.path={cfg.policy.pretrained_path} holds LoRA adapters (on the base "
                f"{peft_adapters.base_model_of(policy)}): training continues those; drop the --peft.* flags, or "
                "start from the base checkpoint to add new adapters."
            )
        peft_adapters.wrap_with_peft(policy, cfg.peft)
    if lora_resume:
        peft_adapters.load_adapter(policy, saved_model)
    if cfg.gradient_checkpointing:
        if not hasattr(policy, "gradient_checkpointing_enable"):
            raise ValueError(f"--gradient_checkpointing=true: {type(policy).__name__} does not support it.")
        policy.gradient_checkpointing_enable()
    cfg.policy.input_features = policy.config.input_features  # filled from the dataset when empty
    cfg.policy.output_features = policy.config.output_features
    policy.train()
    accelerate_on_cpu(policy, cfg.cpu_acceleration)
    model: torch.nn.Module = policy
    fsdp = cfg.fsdp and dist_info.enabled
    if fsdp and resuming:
        raise ValueError("--fsdp=true: resuming an FSDP run is not supported yet; resume it without --fsdp.")
    if fsdp and cfg.env is not None and cfg.eval_freq > 0:
        raise ValueError(
            "--fsdp=true: rollouts during training need the whole model on one process; set --eval_freq=0 "
            "and evaluate the checkpoint with lerobot-eval."
        )
    if fsdp:
        model = shard_with_fsdp(policy)
    elif dist_info.enabled:
        ids = [dist_info.local_rank] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(
            policy, device_ids=ids, find_unused_parameters=policy.ddp_find_unused_parameters
        )

    # ---- optimizer, schedule, mixed precision ----------------------------------------------------
    optim_settings = resolve_optimizer(cfg.optimizer, cfg.policy.get_optimizer_preset())
    optimizer = make_optimizer(policy.get_optim_params(), optim_settings)
    scheduler = make_scheduler(
        optimizer, resolve_scheduler(cfg.scheduler, cfg.policy.get_scheduler_preset(), cfg.steps)
    )
    use_amp = cfg.policy.use_amp and device.type == "cuda"
    if cfg.policy.use_amp and not use_amp:
        logger.warning("use_amp is for CUDA only; training in float32 on %s.", device)
    amp_dtype = getattr(torch, cfg.amp_dtype)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    clip = optim_settings.grad_clip_norm
    params = [p for p in policy.parameters() if p.requires_grad]

    step = 0
    samples_per_step = cfg.batch_size * cfg.gradient_accumulation_steps * dist_info.world_size
    consumed = 0  # global position in the sample stream
    if resuming:
        saved = load_training_state(cfg.checkpoint_path, optimizer, scheduler, scaler)
        load_ema(cfg.checkpoint_path, policy)
        step = saved["step"]
        consumed = step * (
            saved.get("batch_size", cfg.batch_size)
            * saved.get("gradient_accumulation_steps", cfg.gradient_accumulation_steps)
            * saved.get("num_processes", dist_info.world_size)
        )
        logger.info("Resuming from %s at step %d.", cfg.checkpoint_path, step)

    # ---- an endless, restartable stream of batches ------------------------------------------------
    # Diffusion-style policies skip sample starts whose action window would be mostly past the episode.
    starts = train_ds.sample_starts(
        getattr(cfg.policy, "drop_n_last_frames", 0),
        cfg.dataset.first_frames,
        cfg.dataset.first_frames_repeat,
    )
    sampler = ResumableShuffleSampler(starts, cfg.seed, consumed, dist_info.rank, dist_info.world_size)
    loader = torch.utils.data.DataLoader(
        train_ds,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda",
        generator=torch.Generator().manual_seed(cfg.seed),  # keeps the global RNG untouched by the loader
    )
    batches = iter(loader)
    if device.type == "cpu":  # after the loader forked its workers: they keep glibc's defaults
        reuse_freed_memory()  # each step frees what the next allocates again: keep it instead of re-faulting
    if resuming:
        load_rng(cfg.checkpoint_path, dist_info)

    tracker = None
    if dist_info.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
        tracker = TrainLogger(
            output_dir, cfg.to_dict(), step if resuming else None, cfg.tensorboard, cfg.wandb
        )
        logger.info(
            "Training %s (%s parameters) on %d frames / %d episodes (%d held out for val_loss), %s, "
            "%d processes, %d samples per step.",
            cfg.policy.type,
            f"{sum(p.numel() for p in params):,}",
            len(train_ds),
            len(train_eps),
            len(val_eps) if val_ds is not None else 0,
            device,
            dist_info.world_size,
            samples_per_step,
        )

    env, last_eval, last_saved = None, None, None
    window_losses, window_start, window_steps, final_loss = [], time.perf_counter(), 0, math.nan
    # Losses and the grad norm stay tensors until a logging step: a .item() every step would make
    # the CPU wait for the GPU each time.
    update = policy.update if isinstance(policy, PolicyWithUpdate) else None  # e.g. an EMA of the weights
    while step < cfg.steps:
        lr = scheduler.get_last_lr()[0]
        micro_losses = []
        for micro in range(cfg.gradient_accumulation_steps):
            batch = _to_device(policy.rename_observation(next(batches)), device)
            sync = micro == cfg.gradient_accumulation_steps - 1 or not dist_info.enabled
            if fsdp:  # FSDP's counterpart of DDP's no_sync
                model.set_requires_gradient_sync(sync)
            with _maybe_no_sync(model, sync or fsdp):
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    loss = model(batch)["loss"] / cfg.gradient_accumulation_steps
                scaler.scale(loss).backward()
            micro_losses.append(loss.detach())
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, clip if clip > 0 else math.inf)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()
        if update is not None:
            update()
        step += 1
        window_losses.append(micro_losses)
        window_steps += 1

        metrics: dict[str, float | None] = {}
        is_last = step == cfg.steps
        if step % cfg.log_freq == 0 or is_last:
            elapsed = time.perf_counter() - window_start
            # Summed per step exactly as the floats were before (micro-batches in order, then steps).
            final_loss = sum(sum(x.item() for x in micro) for micro in window_losses) / len(window_losses)
            grad_norm = (grad_norm.full_tensor() if fsdp else grad_norm).item()
            metrics.update(
                train_loss=final_loss,
                learning_rate=lr,
                grad_norm=grad_norm,
                samples_per_s=window_steps * samples_per_step / elapsed,
            )
            if dist_info.is_main:
                # Sharded weights: one rank cannot act alone (FSDP gathers them collectively).
                metrics["inference_ms"] = math.nan if fsdp else inference_time_ms(policy, batch)
                eta = (cfg.steps - step) * elapsed / window_steps
                logger.info(
                    "step %d/%d  loss %.4f  lr %.2e  grad_norm %.3f  %.0f samples/s  inference %.1f ms  eta %s",
                    step, cfg.steps, final_loss, lr, grad_norm, metrics["samples_per_s"], metrics["inference_ms"],
                    format_duration(eta),
                )  # fmt: skip
            window_losses, window_start, window_steps = [], time.perf_counter(), 0

        if (dist_info.is_main or fsdp) and val_ds is not None and (step % cfg.val_freq == 0 or is_last):
            metrics["val_loss"] = validation_loss(policy, val_ds, cfg, device)  # FSDP: every rank computes it
            logger.info("step %d  val_loss %.4f", step, metrics["val_loss"])

        if (
            dist_info.is_main
            and cfg.env is not None
            and cfg.eval_freq > 0
            and (step % cfg.eval_freq == 0 or is_last)
        ):
            env = env or _make_eval_env(cfg)
            last_eval = evaluate_during_training(policy, env, cfg, step)
            metrics["success_rate"] = last_eval["aggregated"]["pc_success"] / 100
            metrics["avg_sum_reward"] = last_eval["aggregated"]["avg_sum_reward"]

        if tracker is not None and metrics:
            tracker.log(step, metrics)

        if cfg.save_checkpoint and ((cfg.save_freq > 0 and step % cfg.save_freq == 0) or is_last):
            last_saved = save_checkpoint(cfg, step, policy, optimizer, scheduler, scaler, dist_info)
            if dist_info.is_main:
                logger.info("Checkpoint %s", last_saved)

    # ---- wrap up ----------------------------------------------------------------------------------
    if env is not None:
        env.close()
    plot_path = tracker.close() if tracker is not None else None
    if dist_info.enabled:
        torch.distributed.destroy_process_group()
    checkpoint_dir = output_dir / CHECKPOINTS_DIR / LAST_CHECKPOINT if last_saved is not None else None
    return TrainResult(
        policy, output_dir, checkpoint_dir, output_dir / CSV_NAME, plot_path, final_loss, last_eval
    )


# ---- pieces of the loop -----------------------------------------------------------------------------
def validation_loss(
    policy: PreTrainedPolicy, val_ds: LeRobotDataset, cfg: TrainPipelineConfig, device: torch.device
) -> float:
    """Mean loss over the same ``val_batches`` held-out batches each time, in eval mode (no dropout).

    For a CVAE policy such as ACT, eval mode means the zero latent used at inference, so val_loss
    is the reconstruction term alone while train_loss also carries the KL term.
    """
    loader = torch.utils.data.DataLoader(
        val_ds, batch_size=cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(cfg.seed)
    )
    losses = []
    policy.eval()
    with torch.no_grad(), preserved_rng():
        for _, batch in zip(range(cfg.val_batches), loader):
            losses.append(policy.forward(_to_device(policy.rename_observation(batch), device))["loss"].item())
    policy.train()
    return sum(losses) / len(losses)


def inference_time_ms(policy: PreTrainedPolicy, batch: dict[str, Any]) -> float:
    """Milliseconds of one ``select_action`` on the first sample of ``batch``, as a robot would call it.

    Eval mode and a fresh action queue (so the policy really runs, not pops a queued action); the
    training run's random streams are left as they were.
    """
    observation = {}
    for key, ft in policy.config.input_features.items():
        if key in batch:
            x = batch[key][:1]
            observation[key] = x[:, -1] if x.dim() == len(ft.shape) + 2 else x  # last of an obs history
    if "task" in batch:  # a language-conditioned policy's instruction
        observation["task"] = list(batch["task"][:1])
    sync = torch.cuda.synchronize if policy.config.device.startswith("cuda") else (lambda: None)
    policy.eval()
    try:
        with torch.no_grad(), preserved_rng():
            policy.reset()
            sync()
            start = time.perf_counter()
            policy.select_action(observation)
            sync()
            return (time.perf_counter() - start) * 1000
    finally:
        policy.reset()
        policy.train()


def _make_eval_env(cfg: TrainPipelineConfig) -> Any:
    from lerobot.envs import make_env

    return make_env(cfg.env, n_envs=min(cfg.eval.batch_size, cfg.eval.n_episodes))


def evaluate_during_training(
    policy: PreTrainedPolicy, env: Any, cfg: TrainPipelineConfig, step: int
) -> dict[str, Any]:
    """Roll out in the sim (seeds seed .. seed + n - 1); the training's random streams are left as they were."""
    from lerobot.scripts.eval import eval_policy, write_json

    name = checkpoint_name(step, cfg.steps)
    eval_dir = Path(cfg.output_dir) / "eval"
    with preserved_rng():
        info = eval_policy(
            policy,
            env,
            cfg.eval.n_episodes,
            max_steps=cfg.eval.max_steps,
            seed=cfg.seed,
            videos_dir=eval_dir / f"videos_step_{name}",
            max_videos=cfg.eval.max_videos,
            fps=cfg.env.fps,
        )
    policy.train()
    write_json(info, eval_dir / f"eval_info_step_{name}.json")
    agg = info["aggregated"]
    logger.info("step %d  eval: success %.1f%%  avg sum reward %.3f  inference %.1f ms/step (%d episodes, %.1f s)",
                step, agg["pc_success"], agg["avg_sum_reward"], agg["inference_ms"], agg["n_episodes"],
                agg["eval_s"])  # fmt: skip
    return info


def _check_dataset_has_features(policy_cfg: Any, meta: LeRobotDatasetMetadata) -> None:
    """A policy config that already names its features (a checkpoint, explicit flags) must find them in the data."""
    missing = missing_features(policy_cfg, meta.features)
    if missing:
        raise ValueError(
            f"The policy needs {missing}, which dataset {meta.repo_id!r} does not have (it has "
            f"{sorted(k for k in meta.features if k.startswith(('observation', 'action')))}). Map the dataset's "
            'names to the policy\'s with --rename_map=\'{"<dataset key>": "<policy key>"}\', train on a dataset with '
            "those features, or start from --policy.type instead of a checkpoint made for other data."
        )


class RenamedMetadata:
    """A dataset's metadata seen through ``--rename_map``: features and stats under the policy's names."""

    def __init__(self, meta: LeRobotDatasetMetadata, rename_map: dict[str, str]):
        unknown = sorted(set(rename_map) - set(meta.features))
        if unknown:
            raise ValueError(
                f"--rename_map renames {unknown}, which dataset {meta.repo_id!r} does not have (it has "
                f"{sorted(k for k in meta.features if k.startswith(('observation', 'action')))})."
            )
        self._meta = meta
        self.features = {rename_map.get(k, k): v for k, v in meta.features.items()}
        self.stats = {rename_map.get(k, k): v for k, v in (meta.stats or {}).items()}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._meta, name)


def _to_device(batch: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {
        k: v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v for k, v in batch.items()
    }


def _maybe_no_sync(model: torch.nn.Module, sync: bool) -> Any:
    """Under DDP, skip the gradient all-reduce on micro-batches that only accumulate."""
    from contextlib import nullcontext

    return nullcontext() if sync else model.no_sync()


# ---- Python API -------------------------------------------------------------------------------------
def train(
    cfg: TrainPipelineConfig | None = None,
    *,
    policy_name: str | None = None,
    dataset_repo_id: str | None = None,
    output_dir: str | Path | None = None,
    training_steps: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    eval_freq: int | None = None,
    save_freq: int | None = None,
    num_workers: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    **more: Any,
) -> TrainResult:
    """Train from a config, or from keywords: ``train(policy_name="act", dataset_repo_id="me/demo", ...)``.

    ``more`` sets any other flag, nested as a dict or dotted: ``policy={"chunk_size": 20}``,
    ``**{"dataset.root": "data/demo"}``, ``log_freq=50``, ``env={"type": "pusht"}``.
    """
    if cfg is None:
        cfg = _config_from_keywords({
            "policy.type": policy_name,
            "dataset.repo_id": dataset_repo_id,
            "output_dir": output_dir,
            "steps": training_steps,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "eval_freq": eval_freq,
            "save_freq": save_freq,
            "num_workers": num_workers,
            "device": device,
            "seed": seed,
            **more,
        })  # fmt: skip
    return run_training(cfg)


# The guide's keyword names that are not flag names.
_TRAIN_KEYWORDS = {"learning_rate": "optimizer.lr", "device": "policy.device"}


def _config_from_keywords(flags: dict[str, Any]) -> TrainPipelineConfig:
    """A validated config from ``{flag or guide keyword (dotted or nested): value}``; None means default."""
    tree: dict[str, Any] = {}
    for key, value in flags.items():
        if value is not None:
            _set_nested(tree, _TRAIN_KEYWORDS.get(key, key), value)
    cfg = config_from_tree(tree)
    cfg.validate()
    return cfg


def train_policy(
    policy_type: str, dataset: LeRobotDataset | str, training_steps: int = 100_000, **kwargs: Any
) -> PreTrainedPolicy:
    """The guide's one call: ``train_policy(policy_type="act", dataset=ds, training_steps=5000)`` -> the policy.

    ``dataset`` is a LeRobotDataset (its folder is used) or a repo id; ``kwargs`` are those of :func:`train`.
    The caller gets the policy, so on disk only what is needed to use or continue it is kept: the
    final checkpoint (no intermediate ones unless ``save_freq`` is given) and the training log, in
    ``output_dir`` (default ``outputs/train/<date>_<time>_<policy>``), which is logged at the start.
    """
    if isinstance(dataset, LeRobotDataset):
        kwargs.setdefault("dataset.root", str(dataset.root))
        dataset = dataset.repo_id
    kwargs.setdefault("save_freq", 0)
    cfg = _config_from_keywords(
        {"policy.type": policy_type, "dataset.repo_id": dataset, "steps": training_steps, **kwargs}
    )
    logger.warning(
        "train_policy: the run (final checkpoint, train_log.csv) goes to %s; pass output_dir=... to choose.",
        cfg.output_dir,
    )
    return train(cfg).policy


def _set_nested(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for p in parents:
        node = node.setdefault(p, {})
    if isinstance(value, dict) and isinstance(node.get(leaf), dict):
        node[leaf].update(value)
    else:
        node[leaf] = value


@console_main
def main(argv: list[str] | None = None) -> int:
    import sys

    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, TrainPipelineConfig, GUIDE_ALIASES):
        return 0

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    result = run_training(parse_train_config(argv))
    if os.environ.get("RANK", "0") != "0":  # under torchrun, rank 0 reports
        return 0
    if result.checkpoint_dir is not None:
        print(f"Trained policy: {result.checkpoint_dir / PRETRAINED_DIR}")
    print(f"Training log: {result.log_path}" + (f", curves: {result.plot_path}" if result.plot_path else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
