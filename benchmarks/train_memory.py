"""Host memory of a long training run: RSS of the training process over 2,000 steps of a small ACT.

The dataset is synthetic (40 episodes x 50 frames of a 6-D state, a 4-D environment state, a 6-D
action, and a 32x32 camera stored as PNG, decoded with every sample though the small ACT reads only
the state vectors). Data loading
runs in the training process (``num_workers=0``), so its memory is counted too; validation runs
every 250 steps and a checkpoint is written every 500. RSS is sampled at every logged step.
Writes ``benchmarks/results/train_memory.json``. Usage: ``python benchmarks/train_memory.py [steps]``.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil
import torch

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.scripts.train import train

RESULTS = Path(__file__).parent / "results" / "train_memory.json"


def synthetic_dataset(root: Path, episodes: int = 40, frames: int = 50) -> None:
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": None},
        "observation.environment_state": {"dtype": "float32", "shape": (4,), "names": None},
        "observation.images.front": {
            "dtype": "image",
            "shape": (32, 32, 3),
            "names": ["height", "width", "channels"],
        },
        "action": {"dtype": "float32", "shape": (6,), "names": None},
    }
    ds = LeRobotDataset.create("bench/train_memory", fps=30, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(0)
    for _ in range(episodes):
        phase = rng.uniform(0, 2 * np.pi, 6)
        for t in range(frames):
            state = np.sin(phase + 0.1 * t).astype(np.float32)
            ds.add_frame(
                {
                    "observation.state": state,
                    "observation.environment_state": rng.normal(size=4).astype(np.float32),
                    "observation.images.front": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8),
                    "action": np.sin(phase + 0.1 * (t + 1)).astype(np.float32),
                },
                task="follow",
            )
        ds.save_episode()
    ds.finalize()


class RssAtLogSteps(logging.Handler):
    """Samples the process's RSS whenever the training loop logs its progress line."""

    def __init__(self) -> None:
        super().__init__()
        self.process = psutil.Process()
        self.samples: list[tuple[int, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg.startswith("step %d/%d"):
            self.samples.append((int(record.args[0]), self.process.memory_info().rss / 2**20))


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    torch.set_num_threads(1)
    handler = RssAtLogSteps()
    train_logger = logging.getLogger("lerobot.scripts.train")
    train_logger.setLevel(logging.INFO)
    train_logger.addHandler(handler)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ds"
        synthetic_dataset(root)
        rss_before = psutil.Process().memory_info().rss / 2**20
        started = time.perf_counter()
        train(
            policy_name="act",
            dataset_repo_id="bench/train_memory",
            output_dir=Path(tmp) / "run",
            training_steps=steps,
            batch_size=8,
            save_freq=500,
            num_workers=0,
            device="cpu",
            seed=0,
            log_freq=50,
            val_freq=250,
            tensorboard=False,
            policy={
                "chunk_size": 10,
                "n_action_steps": 10,
                "dim_model": 64,
                "n_heads": 2,
                "dim_feedforward": 128,
                "n_encoder_layers": 1,
                "n_vae_encoder_layers": 1,
                "pretrained_backbone_weights": None,
                # The camera is decoded with every sample but not fed to the model: data-path memory
                # is measured without a ResNet's CPU cost dominating the run.
                "input_features": {
                    "observation.state": {"type": "STATE", "shape": [6]},
                    "observation.environment_state": {"type": "ENV", "shape": [4]},
                },
                "output_features": {"action": {"type": "ACTION", "shape": [6]}},
            },
            **{"dataset.root": str(root)},
        )
        wall = time.perf_counter() - started
    rss = handler.samples
    after_warmup = [m for s, m in rss if s >= steps // 10]
    result = {
        "steps": steps,
        "torch_threads": 1,
        "wall_s": round(wall, 1),
        "rss_before_training_mb": round(rss_before, 1),
        "rss_mb_by_step": [[s, round(m, 1)] for s, m in rss],
        "rss_first_mb": round(rss[0][1], 1),
        "rss_last_mb": round(rss[-1][1], 1),
        "rss_peak_mb": round(max(m for _, m in rss), 1),
        "rss_growth_after_first_10pct_mb": round(after_warmup[-1] - after_warmup[0], 1),
        "policy": "ACT dim_model 64, 1 encoder layer, chunk 10, state + env state inputs, batch 8",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(
        f"| steps | RSS first log | RSS last | peak | growth after 10% | wall |\n|---|---|---|---|---|---|\n"
        f"| {steps} | {result['rss_first_mb']} MB | {result['rss_last_mb']} MB | {result['rss_peak_mb']} MB | "
        f"{result['rss_growth_after_first_10pct_mb']} MB | {result['wall_s']} s |"
    )


if __name__ == "__main__":
    main()
