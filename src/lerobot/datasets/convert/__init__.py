"""Converting datasets into LeRobotDataset v3.0: ``convert_dataset(input_format=..., ...)``.

Each input format has a reader that yields ``Episode`` arrays (``hdf5_formats.py``, ``rlds.py``);
``common.write_episodes`` is the single writer, so every conversion produces the same valid layout.
``lerobot_v21`` is the older LeRobot layout, converted by stream-copying files (``v21_to_v30.py``).
"""

from __future__ import annotations

from pathlib import Path

from lerobot.datasets.convert.common import Episode, write_episodes
from lerobot.datasets.convert.hdf5_formats import read_aloha, read_d4rl, read_robomimic
from lerobot.datasets.convert.rlds import read_rlds
from lerobot.datasets.paths import dataset_root
from lerobot.datasets.utils import DatasetError

READERS = {"rlds": read_rlds, "robomimic": read_robomimic, "d4rl": read_d4rl, "aloha_hdf5": read_aloha}
INPUT_FORMATS = (*READERS, "lerobot_v21")


def convert_dataset(
    input_format: str,
    input_path: str | Path,
    output_repo_id: str,
    fps: int | None = None,
    robot_type: str | None = None,
    root: str | Path | None = None,
    task: str | None = None,
    use_videos: bool = True,
    vcodec: str = "libsvtav1",
) -> Path:
    """Convert ``input_path`` (a file or folder in ``input_format``) into a new dataset; returns its root.

    ``root`` defaults to ``$HF_LEROBOT_HOME/<output_repo_id>`` and must not exist. ``task`` is used
    for episodes whose input names none (robomimic's env name and RLDS language instructions win).
    ``fps`` is required for every format except ``lerobot_v21``, whose info.json already has it.
    """
    if input_format not in INPUT_FORMATS:
        raise DatasetError(f"Unknown input_format {input_format!r}; choose one of {list(INPUT_FORMATS)}.")
    input_path = Path(input_path)
    if not input_path.exists():
        raise DatasetError(f"input_path {input_path} does not exist.")
    out = Path(root) if root is not None else dataset_root(output_repo_id)
    if input_format == "lerobot_v21":
        from lerobot.datasets.convert.v21_to_v30 import convert_dataset_v21_to_v30

        return convert_dataset_v21_to_v30(input_path, output_root=out)
    if not isinstance(fps, int) or fps <= 0:
        raise DatasetError(f"fps must be a positive integer for {input_format} inputs, got {fps!r}.")
    return write_episodes(
        READERS[input_format](input_path),
        output_repo_id,
        out,
        fps,
        robot_type,
        default_task=task or output_repo_id.split("/")[-1],
        use_videos=use_videos,
        vcodec=vcodec,
    )


__all__ = ["INPUT_FORMATS", "Episode", "convert_dataset"]
