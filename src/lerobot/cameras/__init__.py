"""Cameras: one threaded API for USB webcams and video files (OpenCV), RealSense and simulated cameras."""

from lerobot.cameras.camera import (
    CAMERA_CONFIGS,
    CAMERAS,
    Camera,
    CameraConfig,
    ColorMode,
    Cv2Rotation,
    ThreadedCamera,
    register_camera_config,
)
from lerobot.cameras.opencv import OpenCVCamera, OpenCVCameraConfig
from lerobot.cameras.realsense import RealSenseCamera, RealSenseCameraConfig
from lerobot.cameras.sim import SimCamera, SimCameraConfig
from lerobot.cameras.utils import make_camera, make_cameras_from_configs

__all__ = [
    "CAMERA_CONFIGS",
    "CAMERAS",
    "Camera",
    "CameraConfig",
    "ColorMode",
    "Cv2Rotation",
    "OpenCVCamera",
    "OpenCVCameraConfig",
    "RealSenseCamera",
    "RealSenseCameraConfig",
    "SimCamera",
    "SimCameraConfig",
    "ThreadedCamera",
    "make_camera",
    "make_cameras_from_configs",
    "register_camera_config",
]
