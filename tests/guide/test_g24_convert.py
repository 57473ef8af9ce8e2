"""G24 (数据收集 / 从现有格式转换): ``convert_dataset`` from RLDS into a LeRobotDataset.

``./original_dataset`` is the user's own RLDS export: here two short episodes written as TFRecords by
the project's own TFRecord/Example writer.
"""

import io

import numpy as np
from PIL import Image
from tests.guide._guideb_fixtures import in_tmp_dir  # noqa: F401

from lerobot.datasets.convert.rlds import encode_example, write_tfrecord
from lerobot.datasets.lerobot_dataset import LeRobotDataset


def _write_rlds(folder, lengths=(4, 3)):
    """The user's RLDS folder: episodes with a state, a PNG camera, an action and an instruction."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    records = []
    for n in lengths:
        pngs = []
        for _ in range(n):
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 255, (16, 24, 3), dtype=np.uint8)).save(buf, format="PNG")
            pngs.append(buf.getvalue())
        records.append({
            "steps/observation/state": rng.normal(size=3 * n).tolist(),
            "steps/observation/image": pngs,
            "steps/action": rng.normal(size=4 * n).tolist(),
            "steps/is_first": [int(i == 0) for i in range(n)],
            "steps/is_last": [int(i == n - 1) for i in range(n)],
            "steps/language_instruction": [b"pick the block"] * n,
        })  # fmt: skip
    write_tfrecord(folder / "ds-train.tfrecord-00000-of-00001", [encode_example(r) for r in records])


def test_g24_convert(in_tmp_dir):  # noqa: F811
    _write_rlds(in_tmp_dir / "original_dataset")

    # --- the block ---
    from lerobot.datasets.convert import convert_dataset

    # 从其他格式转换到 LeRobotDataset
    convert_dataset(
        input_format="rlds",  # 或 "robomimic", "d4rl" 等
        input_path="./original_dataset",
        output_repo_id="my-username/converted-dataset",
        fps=30,
        robot_type="my_robot",
    )

    # --- checks ---
    ds = LeRobotDataset("my-username/converted-dataset")
    assert ds.num_episodes == 2 and len(ds) == 7 and ds.fps == 30 and ds.meta.robot_type == "my_robot"
    assert ds[0]["task"] == "pick the block"
