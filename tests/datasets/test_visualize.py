"""visualize_episode renders an mp4: cameras above state/action plots, with a cursor that moves."""

import av
import numpy as np
import pytest
from tests.conftest import PEER_VIDEO

from lerobot.common.visualization import visualize_episode as alias
from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.utils import DatasetError
from lerobot.datasets.visualize import episode_arrays, visualize_episode


def _cursor_x(frame: np.ndarray, top: int) -> float:
    red = (frame[top:, :, 0] > 180) & (frame[top:, :, 1] < 90) & (frame[top:, :, 2] < 90)
    cols = np.flatnonzero(red.sum(axis=0) > 40)  # a vertical line spans many rows
    return float(cols.mean())


def test_mp4_has_cameras_plots_and_moving_cursor(tmp_path):
    ds = LeRobotDataset("peer/video_small", root=PEER_VIDEO)
    assert alias is visualize_episode
    out = visualize_episode(ds, episode_idx=1, output_path=tmp_path / "ep1.mp4")
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert stream.average_rate == 10
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(stream)]
    assert len(frames) == 25
    cam = episode_arrays(ds, 1)["cameras"]["observation.images.front"]
    # The camera strip (scaled to 240 px high) shows the episode's frames in order.
    for j in (0, 24):
        np.testing.assert_allclose(
            frames[j][:240, :360].reshape(-1, 3).mean(0), cam[j].reshape(-1, 3).mean(0), atol=8
        )
    xs = [_cursor_x(f, 250) for f in frames[::6]]
    assert all(b > a + 20 for a, b in zip(xs, xs[1:])), xs
    with pytest.raises(DatasetError, match="Episode 7 is not in this dataset"):
        visualize_episode(ds, 7, tmp_path / "x.mp4")


def test_episode_arrays_of_png_cameras_are_the_written_pixels(tmp_path):
    from lerobot.datasets.visualize import episode_arrays

    features = {
        "observation.state": {"dtype": "float32", "shape": (2,)},
        "action": {"dtype": "float32", "shape": (2,)},
        "observation.images.wrist": {"dtype": "image", "shape": (8, 12, 3)},
    }
    ds = LeRobotDataset.create("me/png", fps=10, features=features, root=tmp_path / "png", use_videos=False)
    written = {}
    for ep in range(2):
        for f in range(3):
            img = np.full((8, 12, 3), 10 * f + 100 * ep, np.uint8)
            written[(ep, f)] = img
            ds.add_frame({"observation.state": np.zeros(2, np.float32), "action": np.zeros(2, np.float32),
                          "observation.images.wrist": img}, task="t")  # fmt: skip
        ds.save_episode()
    ds.finalize()
    data = episode_arrays(LeRobotDataset("me/png", root=tmp_path / "png"), 1)
    frames = data["cameras"]["observation.images.wrist"]
    assert frames.shape == (3, 8, 12, 3)
    for f in range(3):
        np.testing.assert_array_equal(frames[f], written[(1, f)])
    assert data["task"] == "t"
    np.testing.assert_allclose(data["timestamp"], [0.0, 0.1, 0.2], rtol=1e-6)
