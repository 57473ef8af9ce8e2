"""``lerobot-convert-dataset``: turn a LeRobotDataset v2.1 into v3.0, or (with ``--input-format``)
convert RLDS / robomimic / D4RL / ALOHA HDF5 files into a new v3.0 dataset.

Flags take both the dashed spelling and the reference's underscore spelling (``--repo-id`` /
``--repo_id``), so commands copied from the LeRobot docs work unchanged. A dataset that is not on
disk is downloaded at its ``v2.1`` revision first (unless the Hub is offline).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lerobot.configs.parser import HelpFormatter
from lerobot.datasets.convert import INPUT_FORMATS, convert_dataset
from lerobot.datasets.convert.v21_to_v30 import SOURCE_VERSION, convert_dataset_v21_to_v30
from lerobot.datasets.hub import ensure_local_files
from lerobot.datasets.paths import dataset_root
from lerobot.datasets.utils import (
    DEFAULT_DATA_FILE_SIZE_IN_MB,
    DEFAULT_VIDEO_FILE_SIZE_IN_MB,
    DatasetError,
)

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _bool(value: str) -> bool:
    """Accept draccus-style ``--replace=true`` as well as the bare flag."""
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lerobot-convert-dataset",
        formatter_class=HelpFormatter,
        description="Convert a LeRobotDataset v2.1 folder to the v3.0 format, or another format "
        "(--input-format rlds|robomimic|d4rl|aloha_hdf5) into a new v3.0 dataset.",
    )
    parser.add_argument(
        "--input-format",
        "--input_format",
        dest="input_format",
        choices=INPUT_FORMATS,
        default=None,
        help="format of --input-path (default: lerobot_v21, a v2.1 dataset named by --repo-id/--root)",
    )
    parser.add_argument(
        "--input-path", "--input_path", dest="input_path", type=Path, help="file or folder to convert"
    )
    parser.add_argument(
        "--output-repo-id", "--output_repo_id", dest="output_repo_id", help="ORG/NAME of the new dataset"
    )
    parser.add_argument("--fps", type=int, help="frames per second of the input (required for other formats)")
    parser.add_argument(
        "--robot-type",
        "--robot_type",
        dest="robot_type",
        default=None,
        help="robot_type written to info.json",
    )
    parser.add_argument("--task", default=None, help="task text for episodes whose input names none")
    parser.add_argument(
        "--repo-id", "--repo_id", dest="repo_id", help="ORG/NAME; required unless --root is given"
    )
    parser.add_argument(
        "--root", type=Path, help="the v2.1 dataset folder (default: $HF_LEROBOT_HOME/<repo-id>)"
    )
    parser.add_argument(
        "--output-root",
        "--output_root",
        dest="output_root",
        type=Path,
        help="where to write (default: <root>_v30)",
    )
    parser.add_argument(
        "--data-file-size-in-mb",
        "--data_file_size_in_mb",
        dest="data_file_size_in_mb",
        type=float,
        default=DEFAULT_DATA_FILE_SIZE_IN_MB,
        help="start a new data parquet once this size would be reached (default: %(default)s)",
    )
    parser.add_argument(
        "--video-file-size-in-mb",
        "--video_file_size_in_mb",
        dest="video_file_size_in_mb",
        type=float,
        default=DEFAULT_VIDEO_FILE_SIZE_IN_MB,
        help="start a new mp4 once this size would be reached (default: %(default)s)",
    )
    parser.add_argument(
        "--replace",
        type=_bool,
        nargs="?",
        const=True,
        default=False,
        help="keep the original as <root>_old and put the v3.0 dataset at <root>",
    )
    return parser


def _whole_mb(value: float) -> float | int:
    """Sizes are whole MB in info.json unless the user asked for a fraction."""
    return int(value) if float(value).is_integer() else value


def _convert_other_format(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.input_path is None or args.output_repo_id is None:
        parser.error("--input-format needs --input-path and --output-repo-id")
    try:
        out = convert_dataset(
            args.input_format,
            args.input_path,
            args.output_repo_id,
            fps=args.fps,
            robot_type=args.robot_type,
            root=args.output_root,
            task=args.task,
        )
    except (DatasetError, FileExistsError) as e:
        print(f"lerobot-convert-dataset: error: {e}", file=sys.stderr)
        return 1
    print(f"Converted {args.input_format} input into a v3.0 dataset at {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.input_format not in (None, "lerobot_v21"):
        return _convert_other_format(parser, args)
    if args.repo_id is None and args.root is None:
        parser.error("give --repo-id (the dataset under $HF_LEROBOT_HOME) or --root (a dataset folder)")
    root = args.root if args.root is not None else dataset_root(args.repo_id)
    try:
        if args.repo_id is not None:
            ensure_local_files(args.repo_id, root, revision=SOURCE_VERSION)
        out = convert_dataset_v21_to_v30(
            root,
            output_root=args.output_root,
            data_file_size_in_mb=_whole_mb(args.data_file_size_in_mb),
            video_file_size_in_mb=_whole_mb(args.video_file_size_in_mb),
            replace=args.replace,
        )
    except (DatasetError, FileExistsError) as e:
        print(f"lerobot-convert-dataset: error: {e}", file=sys.stderr)
        return 1
    print(f"Converted dataset (v3.0) written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
