"""lerobot-find-cameras: saves a test image per camera; no camera is a message, not an exception."""

from __future__ import annotations

from PIL import Image

from lerobot.cameras import OpenCVCamera, RealSenseCamera
from lerobot.scripts.find_cameras import main


def test_sim_camera_listed_and_captured(tmp_path, capsys):
    assert main(["sim", "--output-dir", str(tmp_path), "--record-time-s", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "test_pattern" in out and "640x480" in out
    assert Image.open(tmp_path / "sim_test_pattern.png").size == (640, 480)


def test_no_cameras_is_reported_plainly(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(OpenCVCamera, "find_cameras", staticmethod(lambda: []))

    def no_sdk() -> list[dict]:
        raise ImportError("pip install pyrealsense2")

    monkeypatch.setattr(RealSenseCamera, "find_cameras", staticmethod(no_sdk))
    assert main(["--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "Skipping realsense cameras: pip install pyrealsense2" in out
    assert "No cameras found (opencv, realsense)" in out


def test_camera_that_fails_to_open_is_a_table_row(tmp_path, capsys, monkeypatch):
    gone = {"type": "OpenCV", "id": str(tmp_path / "video9"), "name": "unplugged"}
    monkeypatch.setattr(OpenCVCamera, "find_cameras", staticmethod(lambda: [gone]))
    assert main(["opencv", "--output-dir", str(tmp_path), "--record-time-s", "0"]) == 0
    assert "failed: ConnectionError" in capsys.readouterr().out
