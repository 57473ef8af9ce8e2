"""Per-episode domain randomisation of a MuJoCo scene (``--env.domain_randomization=true``).

A policy trained in one fixed simulated scene learns that scene's lighting, colours, camera pose and
dynamics; the real arm differs in all of them. Randomising each episode over a plausible range (Tobin
et al. 2017 for the visuals, Peng et al. 2018 for the dynamics) makes those differences look like one
more draw. :class:`DomainRandomizer` varies, around the scene file's nominal values:

- **lighting**: every light's diffuse intensity and the headlight's (one common scale), each light's
  position (a uniform offset per axis);
- **colours**: every material and every geom without a material gets its own per-channel tint;
  objects whose colour *is* the task (the red and blue cubes of ``pick_color``) only get a brightness
  scale, so their hue, and with it the instruction, stays true;
- **camera pose**: each camera's position (uniform offset per axis), orientation (a small rotation
  about a random axis) and field of view. A scene camera that aims at a static body (``mode=
  "targetbody"``, as our scenes' fixed cameras do) is first frozen at the orientation it has in the
  nominal scene: re-aiming from a moved position would spin a camera that looks straight down (ALOHA's
  ``top``) about its axis by an arbitrary angle, which no mounted camera does. A camera that aims at a
  moving body (ALOHA's wrist cameras) keeps aiming and only moves;
- **dynamics**: each listed object's mass (inertia scaled with it) and sliding friction, and each
  position actuator's stiffness ``kp`` (servo gain).

What it cannot vary: textures (a new texture must be uploaded to the renderer's OpenGL context; the
checker texture is tinted instead), geometry and sizes (compiled into the model), joint friction and
sensor noise (not part of the request; the arm's joints stay as in the scene file).

Draws come from the env's seeded generator *after* the objects are placed, so a seed gives the same
object layout with randomisation on or off, and the same scene every time it is replayed. The drawn
parameters are returned (and put in the env's reset ``info["domain_randomization"]``) so that a scene
can be reported and reproduced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np


@dataclass(frozen=True)
class RandomizationRanges:
    """How far each property moves from its nominal value (scales are multiplicative)."""

    light_scale: tuple[float, float] = (0.5, 1.3)
    """Common scale of every light's and the headlight's diffuse (and the headlight's ambient) intensity."""
    light_offset: float = 0.15
    """Metres, uniform per axis, added to each light's position."""
    tint: float = 0.2
    """Each colour channel of materials and plain geoms is scaled by a draw in ``1 +- tint``."""
    brightness: float = 0.2
    """Colour-coded objects are scaled as a whole (hue kept) by a draw in ``1 +- brightness``."""
    camera_offset: float = 0.01
    """Metres, uniform per axis, added to each camera's position."""
    camera_rotation_deg: float = 2.0
    """Largest rotation of a fixed-orientation camera, about a random axis."""
    camera_fovy_deg: float = 2.0
    """Degrees added to or removed from each camera's vertical field of view."""
    object_mass: tuple[float, float] = (0.5, 1.5)
    object_friction: tuple[float, float] = (0.7, 1.3)
    actuator_gain: tuple[float, float] = (0.8, 1.2)


class DomainRandomizer:
    """Redraws a scene's visual and physical parameters; see the module docstring for what and why.

    ``objects`` name the bodies whose mass and friction vary (the manipulated objects);
    ``keep_hue`` the geoms whose colour must stay recognisable (brightness only).
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        objects: Sequence[str] = (),
        keep_hue: Sequence[str] = (),
        ranges: RandomizationRanges | None = None,
    ):
        self.model, self.ranges = model, ranges or RandomizationRanges()
        self.object_bodies = np.array([model.body(name).id for name in objects], dtype=int)
        self.object_geoms = np.flatnonzero(np.isin(model.geom_bodyid, self.object_bodies))
        self.keep_hue = np.array([model.geom(name).id for name in keep_hue], dtype=int)
        plain = (model.geom_matid < 0) & (model.geom_rgba[:, 3] > 0)
        plain[self.keep_hue] = False
        self.tinted_geoms = np.flatnonzero(plain)
        # Position actuators: gain kp, bias (0, -kp, -kv); a motor or velocity actuator is left alone.
        self.servos = np.flatnonzero(
            (model.actuator_gaintype == mujoco.mjtGain.mjGAIN_FIXED)
            & (model.actuator_biastype == mujoco.mjtBias.mjBIAS_AFFINE)
            & np.isclose(model.actuator_biasprm[:, 1], -model.actuator_gainprm[:, 0])
        )
        _freeze_static_aiming_cameras(model)
        self.fixed_cameras = model.cam_mode == mujoco.mjtCamLight.mjCAMLIGHT_FIXED
        head = model.vis.headlight
        self._nominal = {
            "light_pos": model.light_pos.copy(),
            "light_diffuse": model.light_diffuse.copy(),
            "headlight": (head.ambient.copy(), head.diffuse.copy()),
            "mat_rgba": model.mat_rgba.copy(),
            "geom_rgba": model.geom_rgba.copy(),
            "cam_pos": model.cam_pos.copy(),
            "cam_quat": model.cam_quat.copy(),
            "cam_fovy": model.cam_fovy.copy(),
            "body_mass": model.body_mass.copy(),
            "body_inertia": model.body_inertia.copy(),
            "geom_friction": model.geom_friction.copy(),
            "gainprm": model.actuator_gainprm.copy(),
            "biasprm": model.actuator_biasprm.copy(),
        }

    def apply(self, rng: np.random.Generator, data: mujoco.MjData) -> dict[str, np.ndarray]:
        """Draw a new scene from ``rng`` and write it into the model; returns the draws (see module)."""
        m, r, nominal = self.model, self.ranges, self._nominal
        params = {
            "light_scale": np.array(rng.uniform(*r.light_scale)),
            "light_offset": rng.uniform(-r.light_offset, r.light_offset, (m.nlight, 3)),
            "material_tint": rng.uniform(1 - r.tint, 1 + r.tint, (m.nmat, 3)),
            "geom_tint": rng.uniform(1 - r.tint, 1 + r.tint, (len(self.tinted_geoms), 3)),
            "object_brightness": rng.uniform(1 - r.brightness, 1 + r.brightness, len(self.keep_hue)),
            "camera_offset": rng.uniform(-r.camera_offset, r.camera_offset, (m.ncam, 3)),
            "camera_rotation": np.stack([_small_rotation(rng, r.camera_rotation_deg) for _ in range(m.ncam)])
            if m.ncam
            else np.zeros((0, 4)),
            "camera_fovy_delta": rng.uniform(-r.camera_fovy_deg, r.camera_fovy_deg, m.ncam),
            "object_mass_scale": rng.uniform(*r.object_mass, len(self.object_bodies)),
            "object_friction_scale": rng.uniform(*r.object_friction, len(self.object_bodies)),
            "actuator_gain_scale": rng.uniform(*r.actuator_gain, len(self.servos)),
        }
        scale = float(params["light_scale"])
        m.light_diffuse[:] = np.clip(nominal["light_diffuse"] * scale, 0, 1)
        m.light_pos[:] = nominal["light_pos"] + params["light_offset"]
        ambient, diffuse = nominal["headlight"]
        m.vis.headlight.ambient[:] = np.clip(ambient * scale, 0, 1)
        m.vis.headlight.diffuse[:] = np.clip(diffuse * scale, 0, 1)

        m.mat_rgba[:] = nominal["mat_rgba"]
        m.mat_rgba[:, :3] = np.clip(nominal["mat_rgba"][:, :3] * params["material_tint"], 0, 1)
        m.geom_rgba[:] = nominal["geom_rgba"]
        m.geom_rgba[self.tinted_geoms, :3] = np.clip(
            nominal["geom_rgba"][self.tinted_geoms, :3] * params["geom_tint"], 0, 1
        )
        m.geom_rgba[self.keep_hue, :3] = np.clip(
            nominal["geom_rgba"][self.keep_hue, :3] * params["object_brightness"][:, None], 0, 1
        )

        m.cam_pos[:] = nominal["cam_pos"] + params["camera_offset"]
        m.cam_quat[:] = nominal["cam_quat"]
        for i in np.flatnonzero(self.fixed_cameras):
            mujoco.mju_mulQuat(m.cam_quat[i], nominal["cam_quat"][i], params["camera_rotation"][i])
        m.cam_fovy[:] = nominal["cam_fovy"] + params["camera_fovy_delta"]

        m.body_mass[:] = nominal["body_mass"]
        m.body_inertia[:] = nominal["body_inertia"]
        m.body_mass[self.object_bodies] *= params["object_mass_scale"]
        m.body_inertia[self.object_bodies] *= params["object_mass_scale"][:, None]
        m.geom_friction[:] = nominal["geom_friction"]
        per_geom = dict(zip(self.object_bodies.tolist(), params["object_friction_scale"]))
        for g in self.object_geoms:
            m.geom_friction[g, 0] *= per_geom[int(m.geom_bodyid[g])]

        m.actuator_gainprm[:] = nominal["gainprm"]
        m.actuator_biasprm[:] = nominal["biasprm"]
        m.actuator_gainprm[self.servos, 0] *= params["actuator_gain_scale"]
        m.actuator_biasprm[self.servos, 1] *= params["actuator_gain_scale"]
        mujoco.mj_setConst(m, data)  # subtree masses and the like follow the new masses
        return params


def free_bodies(model: mujoco.MjModel) -> list[str]:
    """Names of the bodies that move freely (a free joint): a scene's manipulated objects."""
    free = model.jnt_bodyid[model.jnt_type == mujoco.mjtJoint.mjJNT_FREE]
    return [model.body(int(b)).name for b in free if model.body(int(b)).name]


def _freeze_static_aiming_cameras(model: mujoco.MjModel) -> None:
    """World cameras that aim at a static body -> fixed cameras with the orientation they had."""
    aiming = (mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODY, mujoco.mjtCamLight.mjCAMLIGHT_TARGETBODYCOM)
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    for i in range(model.ncam):
        target = model.cam_targetbodyid[i]
        if model.cam_mode[i] in aiming and model.cam_bodyid[i] == 0 and model.body_weldid[target] == 0:
            mujoco.mju_mat2Quat(model.cam_quat[i], data.cam_xmat[i])
            model.cam_mode[i] = mujoco.mjtCamLight.mjCAMLIGHT_FIXED


def _small_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """A unit quaternion (w, x, y, z) turning by at most ``max_deg`` about a uniformly random axis."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg))
    return np.array([np.cos(angle / 2), *(np.sin(angle / 2) * axis)])
