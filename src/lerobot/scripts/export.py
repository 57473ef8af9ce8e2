"""``lerobot-export``: export a trained policy (ONNX, TorchScript, torch.export, int8) after checking parity.

    lerobot-export --policy.path=outputs/train/act/checkpoints/last/pretrained_model --format=onnx \\
        --output=exported/act_onnx [--dataset.repo_id=me/demo --dataset.root=data/demo]

The exported model maps a raw observation (robot units; cameras as uint8 H x W x C) to an action chunk
in robot units, normalisation included; every random draw is an input (see ``metadata.json``). Before
anything is written, the original policy and the export act on ``--n_observations`` recorded
observations of ``--dataset.*`` (default: the training dataset named in the checkpoint's
``train_config.json``, when it is on this machine) with the same draws; the export is refused (exit
code 1, the numbers printed) when their actions differ by more than 1e-4 (float32 formats, relative
beyond 1) or, for int8, by more than ``--int8_tolerance`` of an action dimension's range. Without a
local dataset the check runs on synthetic observations from the policy's statistics (said so).

Run an export with ``lerobot-deploy --policy.path=<export folder>`` (``--policy.backend=onnxruntime``)
or ``lerobot-policy-server --policy.path=<export folder>``; in Python, ``lerobot.export.load_exported``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.export import FORMATS, ParityError, export_policy
from lerobot.export.exporter import INT8_TOLERANCE, graph_for
from lerobot.export.parity import dataset_observations
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.factory import get_policy_class
from lerobot.policies.pretrained import resolve_checkpoint_dir
from lerobot.utils.cli import console_main


@dataclass
class ExportPolicyConfig:
    path: str = ""
    """Checkpoint folder (``.../checkpoints/last/pretrained_model``) or Hub id (required)."""


@dataclass
class ExportDatasetConfig:
    repo_id: str = ""
    """Dataset whose recorded observations the parity check uses (default: the checkpoint's training dataset)."""
    root: str | None = None
    """Local folder of that dataset."""


@dataclass
class ExportConfig:
    policy: ExportPolicyConfig = field(default_factory=ExportPolicyConfig)
    format: str = "onnx"
    """onnx, torchscript, torch_export or int8 (ONNX with int8 weights)."""
    output: str = ""
    """Folder to write the model and metadata.json into (default: exported/<policy type>_<format>)."""
    dataset: ExportDatasetConfig = field(default_factory=ExportDatasetConfig)
    n_observations: int = 16
    """Recorded observations (evenly spaced) the original and the export must agree on."""
    int8_tolerance: float = INT8_TOLERANCE
    """int8 only: the largest difference allowed, as a fraction of each action dimension's range."""
    seed: int = 0
    """Seed of the random draws (noise) both models are given."""


def training_dataset(checkpoint: Path) -> tuple[str, str | None] | None:
    """(repo_id, root) of the dataset named in the checkpoint's train_config.json, if any."""
    path = checkpoint / "train_config.json"
    if not path.is_file():
        return None
    dataset = json.loads(path.read_text()).get("dataset") or {}
    repo_id = dataset.get("repo_id")
    return (repo_id, dataset.get("root")) if repo_id else None


def export(cfg: ExportConfig) -> dict[str, Any]:
    if not cfg.policy.path:
        raise ValueError("Choose the policy to export: --policy.path=<checkpoint folder or Hub id>.")
    if cfg.format not in FORMATS:
        raise ValueError(f"Unknown --format={cfg.format!r}; choose one of {', '.join(FORMATS)}.")
    folder = resolve_checkpoint_dir(cfg.policy.path)
    config = PreTrainedConfig.from_pretrained(folder, device="cpu")
    policy = get_policy_class(config.type).from_pretrained(folder, config=config)
    graph = graph_for(policy, cfg.format)  # a format the policy cannot take fails before any data is read
    observations, stats, source = None, None, ""
    named = (cfg.dataset.repo_id, cfg.dataset.root) if cfg.dataset.repo_id else training_dataset(folder)
    if named is not None:
        try:
            observations, stats, source = dataset_observations(
                policy, graph, named[0], named[1], cfg.n_observations
            )
        except Exception as e:  # the training dataset named in the checkpoint may live on another machine
            if cfg.dataset.repo_id:  # asked for explicitly: its absence is an error
                raise
            print(f"The training dataset {named[0]} cannot be read here ({type(e).__name__}: {e}).")
    if observations is None:
        print(
            "No recorded observations (pass --dataset.repo_id/--dataset.root): checking parity on synthetic "
            "observations from the policy's statistics."
        )
    cfg.output = cfg.output or f"exported/{policy.name}_{cfg.format}"
    return export_policy(
        policy,
        format=cfg.format,
        output=cfg.output,
        observations=observations,
        observations_source=source,
        int8_tolerance=cfg.int8_tolerance,
        action_stats=stats,
        policy_source=str(cfg.policy.path),
        seed=cfg.seed,
    )


@console_main
def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(args, __doc__, ExportConfig):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    cfg = parse_config(ExportConfig, args)
    try:
        metadata = export(cfg)
    except ParityError as e:
        print(f"lerobot-export: {e}", file=sys.stderr)
        return 1
    parity = metadata["parity"]
    print(
        f"Exported {metadata['policy']['type']} to {cfg.output} as {metadata['format']} "
        f"({metadata['file_bytes'] / 2**20:.1f} MiB). Parity over {parity['observations']} observations "
        f"({parity['observations_source']}): max |difference| {parity['max_abs_diff']:.3g}, "
        f"{parity['max_scaled_diff']:.3g} by '{parity['rule']}' (tolerance {parity['tolerance']:g})."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
