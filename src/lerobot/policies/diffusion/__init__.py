"""Diffusion Policy: ``DiffusionConfig`` (no torch import) and, lazily, ``DiffusionPolicy``."""

from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig

__all__ = ["DiffusionConfig", "DiffusionPolicy"]


def __getattr__(name: str):
    if name == "DiffusionPolicy":
        from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

        return DiffusionPolicy
    raise AttributeError(name)
