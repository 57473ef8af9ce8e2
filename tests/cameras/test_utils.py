"""make_camera / make_cameras_from_configs pick the class registered for each config type."""

from __future__ import annotations

import pytest

from lerobot.cameras import (
    CameraConfig,
    OpenCVCamera,
    OpenCVCameraConfig,
    RealSenseCamera,
    RealSenseCameraConfig,
    SimCamera,
    SimCameraConfig,
    make_cameras_from_configs,
)


def test_make_cameras_from_configs_keeps_names_and_order():
    cameras = make_cameras_from_configs(
        {
            "front": SimCameraConfig(),
            "wrist": OpenCVCameraConfig(0, fps=30, width=640, height=480),
            "top": RealSenseCameraConfig("123456789012"),
        }
    )
    assert list(cameras) == ["front", "wrist", "top"]
    assert [type(c) for c in cameras.values()] == [SimCamera, OpenCVCamera, RealSenseCamera]
    assert not any(c.is_connected for c in cameras.values())
    assert (cameras["wrist"].width, cameras["wrist"].height, cameras["wrist"].fps) == (640, 480, 30)


def test_unregistered_config_type_is_named():
    with pytest.raises(ValueError, match="Unknown camera type ''"):
        make_cameras_from_configs({"x": CameraConfig()})
