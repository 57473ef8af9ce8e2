"""What every simulated twin shares: joint units, the physics clock, cameras rendered by MuJoCo, a lock.

A twin is a :class:`~lerobot.robots.robot.Robot` over a MuJoCo scene. It declares exactly the
feature names and units of the real robot it mirrors, so datasets, policies and scripts cannot tell
the two apart. Design choices:

- **Physics advances on ``send_action``**: each call sets the joint targets and steps the scene by one
  control period (``1 / config.fps``). Stepping in lockstep with the caller, rather than in real time
  on a background thread, makes a twin deterministic: replaying an episode's actions from the same
  seed reproduces its states exactly, and a loop may run faster than real time. ``lerobot-record``
  sets ``fps`` to the dataset's rate so sim time and recorded timestamps agree.
- **Cameras** are :class:`~lerobot.cameras.sim.SimCamera` s whose ``render_fn`` renders a view of
  the scene. With ``realtime=True`` they capture on their own threads at their own ``fps`` and
  ``get_observation`` takes the newest frame without waiting, exactly like a real camera (the
  control loop never renders). With ``realtime=False`` (a loop running faster than real time) each
  ``get_observation`` renders the current state on the calling thread, so every recorded image shows
  the state it is stored with.
- **Threads**: an OpenGL context belongs to the thread that made it, so each (thread, camera) pair
  gets its own ``mujoco.Renderer``, created on first use and closed on ``disconnect``. ``self.lock``
  guards the scene's ``MjData``: stepping and resetting hold it, and a render holds it only while
  copying the state into its scene (``update_scene``, microseconds), not while rasterising.
- **Units**: joints in degrees (or -100..100 over the joint's range when ``use_degrees=False``, like
  the real arms' ``RANGE_M100_100``), grippers 0 (closed) .. 100 (open). Targets outside the
  simulated joint's range are clipped, and ``send_action`` returns the clipped action.
"""

from __future__ import annotations

import abc
import threading
from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np

from lerobot.cameras.camera import CameraConfig, ColorMode, orient_frame, source_size
from lerobot.cameras.sim import SimCamera, SimCameraConfig
from lerobot.robots.robot import GRIPPER, Robot
from lerobot.robots.sim.config import SimTwinConfig
from lerobot.utils.errors import DeviceAlreadyConnectedError, DeviceNotConnectedError
from lerobot.utils.gl import preload_video_decoder


@dataclass(frozen=True)
class JointUnits:
    """Maps one simulated joint (radians, or the env's gripper units) to the real robot's units."""

    key: str
    lo: float
    hi: float
    kind: str  # "deg" | "m100" | "gripper"

    def to_robot(self, q: float) -> float:
        if self.kind == "deg":
            return float(np.rad2deg(q))
        fraction = (q - self.lo) / (self.hi - self.lo)
        return float(fraction * 100 if self.kind == "gripper" else fraction * 200 - 100)

    def to_sim(self, value: float) -> float:
        if self.kind == "deg":
            q = np.deg2rad(value)
        else:
            fraction = value / 100 if self.kind == "gripper" else (value + 100) / 200
            q = self.lo + fraction * (self.hi - self.lo)
        return float(np.clip(q, self.lo, self.hi))


def free_camera(lookat: tuple[float, float, float], distance: float, azimuth: float, elevation: float):
    """A view that is not in the scene file (``mujoco.MjvCamera`` of type free)."""
    cam = mujoco.MjvCamera()
    cam.type = mujoco.mjtCamera.mjCAMERA_FREE
    cam.lookat[:] = lookat
    cam.distance, cam.azimuth, cam.elevation = distance, azimuth, elevation
    return cam


class SimTwin(Robot):
    """Base of the simulated twins (see the module docstring); subclasses wrap one MuJoCo scene."""

    config: SimTwinConfig
    sim_kind: ClassVar[str]
    """Which scripted expert family solves this scene (``lerobot.envs.experts``: "so100", "aloha")."""
    extra_views: ClassVar[dict[str, dict[str, Any]]] = {}
    """Free-camera views offered besides the scene file's cameras: name -> ``free_camera`` kwargs."""

    def __init__(self, config: SimTwinConfig | None = None, **kwargs: Any):
        super().__init__(config, **kwargs)
        config = self.config
        if config.fps <= 0:
            raise ValueError(f"{self.name}: fps must be positive, got {config.fps}.")
        self.lock = threading.Lock()
        self.sim = self._make_sim()
        self.model, self.data = self.sim.model, self.sim.data
        self.joint_units = self._joint_units()
        self._views = self._resolve_views()
        self._renderers: dict[tuple[int, str], mujoco.Renderer] = {}
        self._renderers_lock = threading.Lock()
        self.cameras: dict[str, SimCamera] = {
            name: SimCamera(self._camera_config(name, cfg)) for name, cfg in config.cameras.items()
        }
        self._connected = False
        self.reset()

    # ------------------------------------------------------------------ what subclasses provide

    @abc.abstractmethod
    def _make_sim(self) -> Any:
        """The scene object: has ``model``, ``data``, ``reset(seed=)``, ``step(vector)``."""

    @abc.abstractmethod
    def _joint_units(self) -> list[JointUnits]:
        """One entry per action key, in the real robot's order."""

    @abc.abstractmethod
    def _sim_joints(self) -> np.ndarray:
        """Measured joint values in the scene's units, in ``joint_units`` order."""

    @abc.abstractmethod
    def check_task_completion(self) -> bool: ...

    # ------------------------------------------------------------------ features

    @property
    def action_features(self) -> dict[str, type]:
        return {u.key: float for u in self.joint_units}

    def _units_kind(self, key: str) -> str:
        if key.removesuffix(".pos").endswith(GRIPPER):
            return "gripper"
        return "deg" if self.config.use_degrees else "m100"

    # ------------------------------------------------------------------ lifecycle

    @property
    def is_connected(self) -> bool:
        return self._connected

    def connect(self, calibrate: bool = True) -> None:
        """Start the cameras' capture threads (``realtime``); the scene itself needs nothing."""
        if self._connected:
            raise DeviceAlreadyConnectedError(f"{self.name} is already connected.")
        if self.config.realtime:
            started = []
            try:
                for camera in self.cameras.values():
                    camera.connect()
                    started.append(camera)
                    # The capture thread makes its own GL context on its first grab (slow on a software
                    # renderer); wait for that frame so the control loop never starts on a stale one.
                    camera.read(timeout_ms=10_000)
            except BaseException:
                for camera in started:
                    camera.disconnect()
                raise
        self._connected = True

    def disconnect(self) -> None:
        if not self._connected:
            raise DeviceNotConnectedError(f"{self.name} is not connected.")
        for camera in self.cameras.values():
            if camera.is_connected:
                camera.disconnect()
        with self._renderers_lock:  # the capture threads have stopped: no renderer is in use
            for renderer in self._renderers.values():
                renderer.close()
            self._renderers.clear()
        self._connected = False

    def reset(self, seed: int | None = None) -> None:
        """Restart the scene (a new object pose drawn from ``seed``) and the physics clock."""
        with self.lock:
            self.sim.reset(seed=seed)

    # ------------------------------------------------------------------ I/O

    def _require_connected(self) -> None:
        if not self._connected:
            raise DeviceNotConnectedError(f"{self.name} is not connected; call connect() first.")

    def _get_observation(self) -> dict[str, Any]:
        self._require_connected()
        with self.lock:
            joints = self._sim_joints()
        obs: dict[str, Any] = {u.key: u.to_robot(q) for u, q in zip(self.joint_units, joints)}
        for name, camera in self.cameras.items():
            if self.config.realtime:
                obs[name] = camera.read_latest()
            else:
                cfg = self.config.cameras[name]
                obs[name] = orient_frame(self._render(name), cfg.rotation, ColorMode.RGB, cfg.color_mode)
        return obs

    def _send_action(self, action: dict[str, float]) -> dict[str, float]:
        self._require_connected()
        target = np.array([u.to_sim(action[u.key]) for u in self.joint_units])
        with self.lock:
            self.sim.step(target)
        return {u.key: u.to_robot(q) for u, q in zip(self.joint_units, target)}

    def action_from_sim(self, vector: np.ndarray) -> dict[str, float]:
        """A target vector in the scene's units (what a scripted expert outputs) -> this robot's action."""
        vector = np.asarray(vector, dtype=np.float64).reshape(-1)
        if len(vector) != len(self.joint_units):
            raise ValueError(f"{self.name} takes {len(self.joint_units)} targets, got {len(vector)}.")
        return {u.key: u.to_robot(q) for u, q in zip(self.joint_units, vector)}

    # ------------------------------------------------------------------ cameras

    def _resolve_views(self) -> dict[str, Any]:
        scene = [self.model.camera(i).name for i in range(self.model.ncam)]
        views: dict[str, Any] = {name: name for name in scene}
        views.update({name: free_camera(**kw) for name, kw in self.extra_views.items()})
        unknown = [name for name in self.config.cameras if name not in views]
        if unknown:
            raise ValueError(
                f"{self.name} has no camera view {unknown}; its views are {sorted(views)}. Name cameras "
                'after a view, e.g. cameras={"front": SimCameraConfig(width=128, height=128, fps=30)}.'
            )
        return views

    def _camera_config(self, name: str, cfg: CameraConfig) -> SimCameraConfig:
        """A ``SimCameraConfig`` rendering view ``name`` at the configured size (any camera type accepted)."""
        width, height = source_size(cfg.width, cfg.height, cfg.rotation)
        glob = self.model.vis.global_
        glob.offwidth, glob.offheight = max(glob.offwidth, width), max(glob.offheight, height)

        def render() -> np.ndarray:
            return self._render(name)

        render.__qualname__ = f"{type(self).__name__}.{name}"  # names the camera in logs and errors
        return SimCameraConfig(
            render_fn=render,
            width=cfg.width,
            height=cfg.height,
            fps=cfg.fps,
            rotation=cfg.rotation,
            color_mode=cfg.color_mode,
            warmup_s=0.0,
        )

    def _render(self, name: str) -> np.ndarray:
        """Render view ``name`` with this thread's renderer (created here: GL contexts are per thread)."""
        key = (threading.get_ident(), name)
        renderer = self._renderers.get(key)
        if renderer is None:
            preload_video_decoder()
            cfg = self.config.cameras[name]
            width, height = source_size(cfg.width, cfg.height, cfg.rotation)
            renderer = mujoco.Renderer(self.model, height=height, width=width)
            with self._renderers_lock:
                self._renderers[key] = renderer
        with self.lock:
            renderer.update_scene(self.data, camera=self._views[name])
        return renderer.render()
