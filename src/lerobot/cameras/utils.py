"""Build cameras from their configs, e.g. a robot config's ``cameras={"front": OpenCVCameraConfig(0)}``."""

from __future__ import annotations

from lerobot.cameras.camera import CAMERAS, Camera, CameraConfig


def make_camera(config: CameraConfig) -> Camera:
    """The camera class registered under ``config.type``, instantiated (not connected)."""
    import lerobot.cameras  # noqa: F401  (registers the built-in cameras)

    camera_cls = CAMERAS.get(config.type)
    if not isinstance(config, camera_cls.config_class):
        raise TypeError(
            f"{camera_cls.__name__} needs a {camera_cls.config_class.__name__}, got {type(config).__name__}."
        )
    return camera_cls(config)


def make_cameras_from_configs(configs: dict[str, CameraConfig]) -> dict[str, Camera]:
    """``{name: config}`` -> ``{name: camera}``, in the same order (not connected)."""
    return {name: make_camera(config) for name, config in configs.items()}
