"""Times Hugging Face LeRobot 0.6.1's ``LeRobotDataset`` in a DataLoader on ``dataloader.py``'s files.

Run by an interpreter that has LeRobot installed with its ``dataset`` extra, never ours (both
packages are called ``lerobot``); ``dataloader.py --reference-python PATH`` starts it right after
each timing of our own loader, so both read the same v3.0 files (written by our writer) in the same
session. LeRobot 0.6.1 needs Python >= 3.12 and torch < 2.12, so it is installed apart::

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/lerobot-ref
    /tmp/lerobot-ref/bin/pip install "lerobot[dataset]==0.6.1"   # brings torch 2.11, torchcodec, av

Nothing from that package is part of this project; this file only calls its public API. The
timing loop is ``dataloader.py``'s own (same batch size, shuffle, seeds, warm-up and epochs), so
the two sides differ only in the dataset class. Prints one ``RESULT <json>`` line, the schema of
``dataloader.run_loader_config``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataloader import CHUNK, FPS, REPO_ID, LoaderConfig, Sizes, _one_loader_run, current_rss_mb  # noqa: E402


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # a missing optional package is reported, not fatal
        return None


def run_reference_config(cfg: LoaderConfig, root: Path, sizes: Sizes) -> dict[str, Any]:
    """All repeats of one configuration with LeRobot 0.6.1's dataset class, in this process."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    baseline = current_rss_mb(os.getpid())
    delta = {"action": [i / FPS for i in range(CHUNK)]} if cfg.chunk else None
    t0 = time.perf_counter()
    ds = LeRobotDataset(REPO_ID, root=root, delta_timestamps=delta, video_backend=cfg.backend)
    open_s = time.perf_counter() - t0
    opened = current_rss_mb(os.getpid())
    runs = [_one_loader_run(ds, cfg, sizes, seed) for seed in range(sizes.repeats)]
    return {
        "config": asdict(cfg),
        "open_s": round(open_s, 4),
        "rss_after_imports_mb": baseline,
        "rss_after_open_mb": opened,
        "runs": runs,
        "versions": {name: _version(name) for name in ("lerobot", "torch", "torchcodec", "av")},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", help="JSON: root, sizes and configs, as dataloader.py passes them")
    spec = json.loads(parser.parse_args().spec)
    sizes = Sizes(**{**spec["sizes"], "record_points": tuple(spec["sizes"]["record_points"])})
    results = [run_reference_config(LoaderConfig(**c), Path(spec["root"]), sizes) for c in spec["configs"]]
    print("RESULT " + json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
