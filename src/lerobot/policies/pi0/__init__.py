"""π0: ``PI0Config`` (no torch import) and, lazily, ``PI0Policy``."""

from lerobot.policies.pi0.configuration_pi0 import PI0Config

__all__ = ["PI0Config", "PI0Policy"]


def __getattr__(name: str):
    if name == "PI0Policy":
        from lerobot.policies.pi0.modeling_pi0 import PI0Policy

        return PI0Policy
    raise AttributeError(name)
