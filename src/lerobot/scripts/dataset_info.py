"""``lerobot-dataset-info <repo_id or folder>``: what a dataset holds, read from ``meta/`` only.

Prints episodes, frames, fps, features (dtype, shape), tasks, size on disk and a per-feature
statistics summary; ``--json`` prints the same as one JSON object for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lerobot.configs.parser import HelpFormatter
from lerobot.datasets.metadata import LeRobotDatasetMetadata
from lerobot.datasets.utils import DatasetError, to_jsonable


def _summary(values: Any, limit: int = 6) -> Any:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    shown = [float(f"{x:.4g}") for x in arr[:limit]]
    return shown if arr.size <= limit else [*shown, f"... ({arr.size} values)"]


def dataset_info(target: str, root: Path | None = None) -> dict[str, Any]:
    path = Path(target)
    if root is None and (path / "meta" / "info.json").is_file():
        repo_id, root = path.name, path
    else:
        repo_id = target
    meta = LeRobotDatasetMetadata(repo_id, root=root)
    size = sum(p.stat().st_size for p in meta.root.rglob("*") if p.is_file())
    stats = {
        key: {s: _summary(v) for s, v in feature_stats.items() if s in ("min", "max", "mean", "std")}
        for key, feature_stats in meta.stats.items()
    }
    return {
        "repo_id": repo_id,
        "root": str(meta.root),
        "codebase_version": meta.info["codebase_version"],
        "robot_type": meta.robot_type,
        "fps": meta.fps,
        "episodes": meta.total_episodes,
        "frames": meta.total_frames,
        "size_on_disk_mb": round(size / 2**20, 3),
        "features": {
            k: {"dtype": ft["dtype"], "shape": list(ft["shape"])} for k, ft in meta.features.items()
        },
        "tasks": meta.task_strings(),
        "stats": stats,
    }


def format_info(info: dict[str, Any]) -> str:
    lines = [
        f"Dataset {info['repo_id']} ({info['codebase_version']}) at {info['root']}",
        f"  robot type: {info['robot_type']}   fps: {info['fps']}",
        f"  episodes: {info['episodes']}   frames: {info['frames']}   size on disk: {info['size_on_disk_mb']} MB",
        "  features:",
    ]
    width = max(len(k) for k in info["features"])
    lines += [
        f"    {k:<{width}}  {ft['dtype']:<8} {tuple(ft['shape'])}" for k, ft in info["features"].items()
    ]
    lines.append(f"  tasks ({len(info['tasks'])}):")
    lines += [f"    [{i}] {t}" for i, t in enumerate(info["tasks"])]
    lines.append("  stats:")
    for key, st in info["stats"].items():
        lines.append(f"    {key}:")
        lines += [f"      {name:<4} {vals}" for name, vals in st.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lerobot-dataset-info", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    parser.add_argument("dataset", help="a repo id (ORG/NAME) or a dataset folder holding meta/info.json")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="dataset folder for a repo id (default: $HF_LEROBOT_HOME/<repo id>)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    try:
        info = dataset_info(args.dataset, args.root)
    except DatasetError as e:
        print(f"lerobot-dataset-info: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(to_jsonable(info), indent=2) if args.json else format_info(info))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
