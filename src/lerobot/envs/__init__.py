"""Simulated environments (PushT, ALOHA, our SO-100 tasks) with dataset-named observations, and experts.

``make_env("pusht", render_mode="rgb_array")`` returns a Gymnasium env; ``make_env(cfg, n_envs=N)`` a
vector env. Observation keys are dataset feature names (see :mod:`lerobot.envs.factory`), and
``cfg.features`` lists them without building the simulator.
"""

from lerobot.envs.configs import ENV_CONFIGS, EnvConfig, resolve_env_config
from lerobot.envs.experts import make_expert
from lerobot.envs.factory import make_env
from lerobot.envs.utils import preprocess_observation

__all__ = [
    "ENV_CONFIGS",
    "EnvConfig",
    "make_env",
    "make_expert",
    "preprocess_observation",
    "resolve_env_config",
]
