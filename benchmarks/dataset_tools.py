"""Dataset editing speed: delete 10% of episodes, split 80/20 and merge 10 datasets, vs. recording the data.

A synthetic 200-episode video dataset (one 64x64 AV1 camera, 6-D state and action, 30 frames per
episode at 30 fps) is recorded through ``LeRobotDataset.create`` / ``add_frame`` / ``save_episode``
(timed: this is what an edit saves you from redoing), then each operation is timed on it. The 10
merge inputs (20 episodes each) are made by splitting it. Episode-aligned operations must re-encode
0 bytes of video; a mid-episode frame slice is included to show what re-encoding costs.

    .venv/bin/python benchmarks/dataset_tools.py [--episodes 200] [--frames 30]

Writes benchmarks/results/dataset_tools.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import merge_datasets

RESULTS = Path(__file__).parent / "results" / "dataset_tools.json"
FPS = 30
SIZE = 64


def record(root: Path, episodes: int, frames: int) -> float:
    """Record the synthetic dataset; returns the seconds it took (encoding included)."""
    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": None},
        "action": {"dtype": "float32", "shape": (6,), "names": None},
        "observation.images.front": {"dtype": "video", "shape": (SIZE, SIZE, 3), "names": None},
    }
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    start = time.perf_counter()
    ds = LeRobotDataset.create("bench/tools", fps=FPS, features=features, root=root, robot_type="sim")
    for e in range(episodes):
        phase = rng.uniform(0, 6.28, 3)
        for f in range(frames):
            img = np.stack(
                [128 + 90 * np.sin(0.1 * xx + 0.07 * yy + phase[c] + 0.2 * f) for c in range(3)], -1
            )
            state = rng.normal(size=6).astype(np.float32)
            ds.add_frame(
                {
                    "observation.state": state,
                    "action": state + 0.1,
                    "observation.images.front": img.astype(np.uint8),
                },
                task=f"task {e % 4}",
            )
        ds.save_episode()
    ds.finalize()
    return time.perf_counter() - start


def row(name: str, out: LeRobotDataset | list[LeRobotDataset], seconds: float, record_s: float) -> dict:
    outs = out if isinstance(out, list) else [out]
    reports = [o.edit_report for o in outs]
    return {
        "operation": name,
        "seconds": round(seconds, 3),
        "episodes_out": sum(r.episodes for r in reports),
        "frames_out": sum(r.frames for r in reports),
        "video_bytes_reencoded": sum(r.video_bytes_reencoded for r in reports),
        "video_bytes_stream_copied": sum(r.video_bytes_remuxed for r in reports),
        "video_bytes_file_copied": sum(r.video_bytes_copied for r in reports),
        "reencoded_episodes": sum(len(r.reencoded_episodes) for r in reports),
        "fraction_of_record_time": round(seconds / record_s, 4),
    }


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--frames", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(2)
    work = Path(tempfile.mkdtemp(prefix="lerobot_tools_bench_"))
    try:
        root = work / "ds"
        record_s = record(root, args.episodes, args.frames)
        ds = LeRobotDataset("bench/tools", root=root)
        rows = []
        drop = list(range(0, args.episodes, 10))  # 10% of the episodes
        out, s = timed(lambda: ds.delete_episodes(drop, output_dir=work / "deleted"))
        rows.append(row(f"delete {len(drop)} of {args.episodes} episodes", out, s, record_s))
        out, s = timed(lambda: ds.split([0.8, 0.2], output_dir=work / "split"))
        rows.append(row("split 80/20", out, s, record_s))
        parts, _ = timed(lambda: ds.split({f"p{i}": 0.1 for i in range(10)}, output_dir=work / "parts"))
        out, s = timed(
            lambda: merge_datasets(list(parts.values()), "bench/merged", output_dir=work / "merged")
        )
        rows.append(row(f"merge 10 datasets of {args.episodes // 10} episodes", out, s, record_s))
        half = args.frames // 2
        stop = len(ds) // 2 + half
        out, s = timed(lambda: ds.slice_frames(half, stop, output_dir=work / "slice"))
        rows.append(row(f"frame slice [{half}:{stop}] (cuts 2 episodes)", out, s, record_s))
        result = {
            "dataset": {
                "episodes": args.episodes,
                "frames_per_episode": args.frames,
                "fps": FPS,
                "camera": f"1 x {SIZE}x{SIZE} AV1 (libsvtav1, g=2)",
                "bytes": sum(p.stat().st_size for p in root.rglob("*") if p.is_file()),
            },
            "record_seconds": round(record_s, 3),
            "operations": rows,
            "machine": {
                "platform": platform.platform(),
                "python": platform.python_version(),
                "torch_threads": 2,
            },
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"Recording {args.episodes} episodes x {args.frames} frames took {record_s:.1f} s.\n")
    print(
        "| operation | seconds | share of record time | video bytes re-encoded | stream-copied | file-copied |"
    )
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['operation']} | {r['seconds']:.2f} | {100 * r['fraction_of_record_time']:.1f}% | "
            f"{r['video_bytes_reencoded']} | {r['video_bytes_stream_copied']} | {r['video_bytes_file_copied']} |"
        )


if __name__ == "__main__":
    main()
