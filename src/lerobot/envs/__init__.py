"""Simulated environments (PushT, ALOHA, our SO-100 tasks, xArm lift, Meta-World, LIBERO) and their experts.

``make_env("pusht", render_mode="rgb_array")`` returns a Gymnasium env; ``make_env(cfg, n_envs=N)`` a
vector env. Observations carry the simulator's own keys (``agent_pos``, ``pixels``,
``environment_state``); :func:`lerobot.envs.utils.dataset_observation` renames them to dataset feature
names, and ``cfg.features`` lists those without building the simulator.
"""

import os
import sys

# MuJoCo picks its OpenGL backend when first imported: off-screen EGL on a Linux machine without a display.
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from lerobot.envs.configs import ENV_CONFIGS, EnvConfig, resolve_env_config  # noqa: E402
from lerobot.utils.lazy import lazy_attributes  # noqa: E402

# Loaded on first use: they pull in MuJoCo and torch, which the sim twins' configs (imported by every
# robot tool, real hardware included) must not pay for.
_LAZY = {
    "make_env": "lerobot.envs.factory",
    "make_expert": "lerobot.envs.experts",
    "preprocess_observation": "lerobot.envs.utils",
}
__getattr__ = lazy_attributes(__name__, _LAZY)


__all__ = [
    "ENV_CONFIGS",
    "EnvConfig",
    "make_env",
    "make_expert",
    "preprocess_observation",
    "resolve_env_config",
]
