"""lerobot-dataset-viz (html viewer checked in headless Chromium, rrd, mp4) and lerobot-dataset-info."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from tests.conftest import PEER_VIDEO

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.datasets.visualize import episode_arrays
from lerobot.scripts import dataset_info, dataset_viz

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _viz(tmp_path, mode, episode=1):
    out = tmp_path / mode
    rc = dataset_viz.main(
        ["--repo_id", "peer/video_small", "--root", str(PEER_VIDEO), "--episode_index", str(episode),
         "--mode", mode, "--output_dir", str(out)]
    )  # fmt: skip
    assert rc == 0
    return out


def test_html_viewer_folder_is_self_contained(tmp_path):
    out = _viz(tmp_path, "html")
    html = (out / "index.html").read_text()
    assert "<script src=" not in html.split("const INDEX")[0]  # nothing external before the data
    index = json.loads(html.split("const INDEX = ")[1].split(";\n")[0])
    assert [e["length"] for e in index["episodes"]] == [20, 25, 15] and index["initial"] == 1
    assert index["episodes"][1]["task"] == "place the cube in the bin"
    for ep in index["episodes"]:
        assert (out / ep["videos"]["observation.images.front"]["src"]).is_file()
        assert (
            (out / f"episodes/episode_{ep['index']:06d}.js")
            .read_text()
            .startswith(f"LEROBOT_EPISODE({ep['index']}, ")
        )


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_html_viewer_renders_in_headless_chromium(tmp_path):
    out = _viz(tmp_path, "html")
    shot = tmp_path / "shot.png"
    ds = LeRobotDataset("peer/video_small", root=PEER_VIDEO)
    first = episode_arrays(ds, 1)["cameras"]["observation.images.front"][0].reshape(-1, 3).mean(0)
    # The video decodes in real time, not virtual time: on a loaded machine the first budget can run
    # out before its frame is painted, so a blank shot is retried with a longer one.
    for budget in (5000, 15000, 30000):
        subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,800",
             f"--virtual-time-budget={budget}", f"--screenshot={shot}", (out / "index.html").as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        video_px = (np.abs(img - first).max(axis=2) < 25).sum()
        cursor = ((img[..., 0] > 190) & (img[..., 1] < 70) & (img[..., 2] < 70)).sum()
        lines = sum((np.abs(img - c).max(axis=2) < 30).sum() for c in ([31, 119, 180], [255, 127, 14]))
        if video_px > 40_000 and cursor > 100 and lines > 500:
            break
    assert video_px > 40_000, f"the video's first frame (colour {first}) is not on screen ({video_px} px)"
    assert cursor > 100 and lines > 500, (cursor, lines)


def test_rrd_and_mp4_modes(tmp_path):
    pytest.importorskip("rerun")
    out = _viz(tmp_path, "rrd") / "peer_video_small_episode_1.rrd"
    assert out.stat().st_size > 10_000
    assert out.read_bytes()[:4] in (b"RRF2", b"RRF3", b"RRIO")
    assert (_viz(tmp_path, "mp4") / "peer_video_small_episode_1.mp4").stat().st_size > 1000


def test_dataset_info_text_and_json(tmp_path, capsys):
    assert dataset_info.main([str(PEER_VIDEO)]) == 0
    text = capsys.readouterr().out
    assert "episodes: 3   frames: 60" in text and "place the cube in the bin" in text
    assert "observation.images.front  video    (64, 96, 3)" in text and "mean" in text
    assert dataset_info.main(["peer/video_small", "--root", str(PEER_VIDEO), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["fps"] == 10 and info["features"]["action"] == {"dtype": "float32", "shape": [6]}
    assert info["size_on_disk_mb"] > 0 and len(info["stats"]["action"]["mean"]) == 6
    assert dataset_info.main(["nobody/nothing", "--root", str(tmp_path / "none")]) == 1
    assert "not on disk" in capsys.readouterr().err
