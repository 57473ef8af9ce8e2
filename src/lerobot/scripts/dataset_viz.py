"""``lerobot-dataset-viz``: look at episodes of a dataset.

``--mode html`` writes a static viewer folder (open its index.html from disk), ``--mode mp4`` renders
one episode with plots to an mp4, ``--mode rrd`` saves one episode as a rerun recording.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lerobot.configs.parser import HelpFormatter
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DatasetError
from lerobot.datasets.visualize import visualize_episode, write_html_viewer, write_rrd


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lerobot-dataset-viz", description=__doc__.split("\n\n")[0], formatter_class=HelpFormatter
    )
    p.add_argument("--repo_id", "--repo-id", dest="repo_id", required=True, help="dataset id, ORG/NAME")
    p.add_argument("--root", type=Path, default=None, help="dataset folder (default: the Hub cache)")
    p.add_argument(
        "--episode_index",
        "--episode-index",
        dest="episode_index",
        type=int,
        default=0,
        help="episode to show",
    )
    p.add_argument(
        "--mode",
        choices=("html", "mp4", "rrd"),
        default="html",
        help="html: a static viewer folder (open its index.html); mp4: one episode with plots; rrd: a Rerun recording",
    )
    p.add_argument(
        "--output_dir",
        "--output-dir",
        dest="output_dir",
        type=Path,
        default=Path("outputs/dataset_viz"),
        help="where the viewer, video or recording is written",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        ds = LeRobotDataset(args.repo_id, root=args.root)
        name = f"{args.repo_id.replace('/', '_')}_episode_{args.episode_index}"
        if args.mode == "html":
            out = write_html_viewer(ds, args.output_dir, args.episode_index)
        elif args.mode == "mp4":
            out = visualize_episode(ds, args.episode_index, args.output_dir / f"{name}.mp4")
        else:
            out = write_rrd(ds, args.episode_index, args.output_dir / f"{name}.rrd")
    except DatasetError as e:
        print(f"lerobot-dataset-viz: error: {e}", file=sys.stderr)
        return 1
    print(f"Wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
