"""RealSense without the SDK: a clear install hint instead of a bare ModuleNotFoundError."""

from __future__ import annotations

import sys

import pytest

from lerobot.cameras import RealSenseCamera, RealSenseCameraConfig


@pytest.fixture
def no_sdk(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)  # makes `import pyrealsense2` fail


def test_connect_without_pyrealsense2_says_how_to_install(no_sdk):
    cam = RealSenseCamera(RealSenseCameraConfig("123456789012", fps=30, width=640, height=480))
    with pytest.raises(ImportError, match="pip install pyrealsense2"):
        cam.connect()
    assert not cam.is_connected
    with pytest.raises(ImportError, match="pip install pyrealsense2"):
        RealSenseCamera.find_cameras()


def test_missing_sdk_on_macos_points_to_the_community_build(no_sdk, monkeypatch):
    monkeypatch.setattr("platform.system", lambda: "Darwin")
    with pytest.raises(ImportError, match="no pyrealsense2 wheel for macOS.*pyrealsense2-macosx"):
        RealSenseCamera.find_cameras()


def test_config_profile_is_all_or_none():
    assert RealSenseCameraConfig(123456789012).serial_number_or_name == "123456789012"
    assert RealSenseCameraConfig("Intel RealSense D435").type == "intelrealsense"
    with pytest.raises(ValueError, match="fps, width and height all set or all None"):
        RealSenseCameraConfig("123", fps=30)


def test_depth_needs_use_depth():
    cam = RealSenseCamera(RealSenseCameraConfig("123"))
    with pytest.raises(RuntimeError, match="use_depth=True"):
        cam.read_depth()
