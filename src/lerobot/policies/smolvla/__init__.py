"""SmolVLA: ``SmolVLAConfig`` (no torch import) and, lazily, ``SmolVLAPolicy``."""

from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig

__all__ = ["SmolVLAConfig", "SmolVLAPolicy"]


def __getattr__(name: str):
    if name == "SmolVLAPolicy":
        from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

        return SmolVLAPolicy
    raise AttributeError(name)
