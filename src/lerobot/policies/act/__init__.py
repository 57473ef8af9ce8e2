"""ACT: ``ACTConfig`` (no torch import) and, lazily, ``ACTPolicy``."""

from lerobot.policies.act.configuration_act import ACTConfig

__all__ = ["ACTConfig", "ACTPolicy"]


def __getattr__(name: str):
    if name == "ACTPolicy":
        from lerobot.policies.act.modeling_act import ACTPolicy

        return ACTPolicy
    raise AttributeError(name)
