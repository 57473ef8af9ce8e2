"""VQ-BeT: ``VQBeTConfig`` (no torch model import) and, lazily, ``VQBeTPolicy``."""

from lerobot.policies.vqbet.configuration_vqbet import VQBeTConfig

__all__ = ["VQBeTConfig", "VQBeTPolicy"]


def __getattr__(name: str):
    if name == "VQBeTPolicy":
        from lerobot.policies.vqbet.modeling_vqbet import VQBeTPolicy

        return VQBeTPolicy
    raise AttributeError(name)
