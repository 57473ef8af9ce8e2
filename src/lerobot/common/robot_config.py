"""The user guide's robot config: ``RobotConfig(robot_type="so100", control_frequency=30, cameras={...})``.

It resolves ``robot_type`` to the registered config class (guide names such as ``so100`` or ``koch``
map to ``so100_follower`` / ``koch_follower``), turns the guide's camera dicts
(``{"front": {"resolution": (640, 480), "fps": 30}}``, resolution as (width, height)) into
:class:`~lerobot.cameras.CameraConfig` objects (OpenCV by default, the camera's position in the dict
as its device index unless ``index_or_path`` is given; ``"type": "sim"`` for a simulated camera),
and passes every other keyword (``port=...``, ``id=...``) to the registered config.

The result behaves as that registered config (attribute access is forwarded to it), so
``make_robot_from_config(RobotConfig(...))`` works, and ``.make_robot()`` is the one-call spelling.
"""

from __future__ import annotations

from typing import Any

from lerobot.cameras import CAMERA_CONFIGS, CameraConfig
from lerobot.configs.parser import build
from lerobot.robots.robot import GUIDE_ROBOT_NAMES, ROBOT_CONFIGS, Robot, make_robot_from_config
from lerobot.robots.robot import RobotConfig as RegisteredRobotConfig
from lerobot.utils.registry import unknown_choice_message

GUIDE_NAMES = GUIDE_ROBOT_NAMES


def resolve_robot_type(robot_type: str) -> str:
    """A registered robot type from a registered or guide name; unknown names list the known ones."""
    import lerobot.robots  # noqa: F401  (registers the built-in robots)

    name = GUIDE_NAMES.get(robot_type, robot_type)
    if name not in ROBOT_CONFIGS:
        raise ValueError(
            unknown_choice_message("robot", robot_type, sorted({*ROBOT_CONFIGS.names(), *GUIDE_NAMES}))
        )
    return name


def camera_config(name: str, spec: dict[str, Any] | CameraConfig, index: int) -> CameraConfig:
    """The guide's ``{"resolution": (w, h), "fps": 30, "type": "opencv"}`` -> a camera config."""
    if isinstance(spec, CameraConfig):
        return spec
    values = dict(spec)
    if "resolution" in values:
        res = values.pop("resolution")
        if not (
            isinstance(res, (tuple, list))
            and len(res) == 2
            and all(isinstance(v, int) and v > 0 for v in res)
        ):
            raise ValueError(f"Camera '{name}': resolution must be (width, height) in pixels, got {res!r}.")
        values["width"], values["height"] = res
    camera_type = values.pop("type", "opencv")
    if camera_type == "opencv":
        values.setdefault("index_or_path", index)
    return build(CAMERA_CONFIGS.get(camera_type), values, prefix=f"cameras.{name}.")


class RobotConfig:
    """``RobotConfig(robot_type=..., control_frequency=30, cameras={...}, **robot_fields)``."""

    def __init__(
        self,
        robot_type: str,
        control_frequency: float = 30,
        cameras: dict[str, dict[str, Any] | CameraConfig] | None = None,
        **robot_fields: Any,
    ):
        if control_frequency <= 0:
            raise ValueError(f"control_frequency must be > 0 Hz, got {control_frequency}.")
        self.robot_type = resolve_robot_type(robot_type)
        self.control_frequency = float(control_frequency)
        config_cls = ROBOT_CONFIGS.get(self.robot_type)
        if cameras:
            robot_fields["cameras"] = {
                name: camera_config(name, spec, i) for i, (name, spec) in enumerate(cameras.items())
            }
        try:
            self.robot_config: RegisteredRobotConfig = config_cls(**robot_fields)
        except TypeError as e:
            raise TypeError(f"{config_cls.__name__} (robot_type '{self.robot_type}'): {e}") from e

    @property
    def type(self) -> str:
        return self.robot_config.type

    def __getattr__(self, name: str) -> Any:
        if name == "robot_config":  # not yet set: __init__ failed part-way
            raise AttributeError(name)
        return getattr(self.robot_config, name)

    def __repr__(self) -> str:
        return f"RobotConfig(control_frequency={self.control_frequency}, robot_config={self.robot_config!r})"

    def make_robot(self) -> Robot:
        """The robot, built from the registered config (not connected)."""
        return make_robot_from_config(self.robot_config)
