"""Simulated environments (PushT, ALOHA, our SO-100 tasks) with dataset-named observations, and experts.

``make_env("pusht", render_mode="rgb_array")`` returns a Gymnasium env; ``make_env(cfg, n_envs=N)`` a
vector env. Observation keys are dataset feature names (see :mod:`lerobot.envs.factory`), and
``cfg.features`` lists them without building the simulator.
"""

import os
import sys

# MuJoCo picks its OpenGL backend when first imported: off-screen EGL on a Linux machine without a display.
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")

from lerobot.envs.configs import ENV_CONFIGS, EnvConfig, resolve_env_config  # noqa: E402
from lerobot.envs.experts import make_expert  # noqa: E402
from lerobot.envs.factory import make_env  # noqa: E402
from lerobot.envs.utils import preprocess_observation  # noqa: E402

__all__ = [
    "ENV_CONFIGS",
    "EnvConfig",
    "make_env",
    "make_expert",
    "preprocess_observation",
    "resolve_env_config",
]
