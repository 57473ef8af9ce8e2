"""Kinematics of a three-wheel omnidirectional ("kiwi") base: body velocity <-> wheel speeds.

Why a closed form and not a general solver: three omni wheels on a circle make a square, invertible
3x3 map, so both directions are one matrix product, cheap enough for every control step.

Frame and conventions (ours; the reference library's numbers are not published as a spec):

- Body frame: ``+x`` forward (the side the arm and front camera face), ``+y`` to the left, ``+z`` up;
  ``theta`` counter-clockwise seen from above. Inputs/outputs are ``x.vel``/``y.vel`` in m/s and
  ``theta.vel`` in deg/s, the units LeKiwi datasets record.
- Wheel ``i`` sits at angle ``phi_i`` on a circle of radius ``base_radius_m`` around the centre
  (left 60 deg, back 180 deg, right -60 deg: 120 deg apart, the back wheel straight behind) and rolls
  along the counter-clockwise tangent ``(-sin phi_i, cos phi_i)``. Its rim speed is therefore
  ``v_i = -sin(phi_i) vx + cos(phi_i) vy + base_radius_m * omega`` and its angular speed ``v_i / r``.
- A positive motor velocity turns the wheel along that tangent. If a wheel of your base runs the
  other way (motor mounted mirrored), flip its sign in ``wheel_signs``.

Default dimensions are LeKiwi's published ones: 0.05 m omni-wheel radius and 0.125 m from the base
centre to the wheel contact points; measure your base if odometry matters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

STEPS_PER_TURN = 4096  # STS3215 encoder: velocities are in encoder steps per second


@dataclass(frozen=True)
class OmniBase:
    wheel_radius_m: float = 0.05
    base_radius_m: float = 0.125
    wheel_angles_deg: tuple[float, float, float] = (60.0, 180.0, -60.0)  # left, back, right
    wheel_signs: tuple[float, float, float] = (1.0, 1.0, 1.0)
    max_wheel_speed_raw: int = 3000
    """Fastest commanded wheel speed (steps/s); faster commands are scaled down, keeping the direction."""

    def __post_init__(self) -> None:
        if self.wheel_radius_m <= 0 or self.base_radius_m <= 0:
            raise ValueError(
                f"Wheel radius ({self.wheel_radius_m}) and base radius ({self.base_radius_m}) must be > 0 m."
            )
        if self.max_wheel_speed_raw <= 0:
            raise ValueError(f"max_wheel_speed_raw must be > 0, got {self.max_wheel_speed_raw}.")

    @property
    def matrix(self) -> np.ndarray:
        """``wheel_rad_s = matrix @ (vx m/s, vy m/s, omega rad/s)``."""
        phi = np.deg2rad(np.asarray(self.wheel_angles_deg))
        rows = np.stack([-np.sin(phi), np.cos(phi), np.full(3, self.base_radius_m)], axis=1)
        return np.asarray(self.wheel_signs)[:, None] * rows / self.wheel_radius_m

    def body_to_wheels(self, x_vel: float, y_vel: float, theta_vel_deg: float) -> np.ndarray:
        """Wheel angular speeds (rad/s) for a body velocity (m/s, m/s, deg/s)."""
        return self.matrix @ np.array([x_vel, y_vel, math.radians(theta_vel_deg)])

    def wheels_to_body(self, wheel_rad_s: Sequence[float]) -> tuple[float, float, float]:
        """Body velocity (m/s, m/s, deg/s) of measured wheel angular speeds (rad/s)."""
        vx, vy, omega = np.linalg.solve(self.matrix, np.asarray(wheel_rad_s, dtype=np.float64))
        return float(vx), float(vy), math.degrees(omega)

    def body_to_raw(self, x_vel: float, y_vel: float, theta_vel_deg: float) -> list[int]:
        """Motor ``Goal_Velocity`` values (steps/s), scaled down together if one exceeds the maximum."""
        raw = self.body_to_wheels(x_vel, y_vel, theta_vel_deg) * STEPS_PER_TURN / (2 * math.pi)
        peak = float(np.max(np.abs(raw)))
        if peak > self.max_wheel_speed_raw:
            raw = raw * (self.max_wheel_speed_raw / peak)
        return [round(v) for v in raw]

    def raw_to_body(self, raw: Sequence[int | float]) -> tuple[float, float, float]:
        """Body velocity from motor ``Present_Velocity`` values (steps/s)."""
        return self.wheels_to_body(np.asarray(raw, dtype=np.float64) * 2 * math.pi / STEPS_PER_TURN)
