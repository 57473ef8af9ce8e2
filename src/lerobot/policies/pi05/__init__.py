"""π0.5: ``PI05Config`` (no torch import) and, lazily, ``PI05Policy``."""

from lerobot.policies.pi05.configuration_pi05 import PI05Config

__all__ = ["PI05Config", "PI05Policy"]


def __getattr__(name: str):
    if name == "PI05Policy":
        from lerobot.policies.pi05.modeling_pi05 import PI05Policy

        return PI05Policy
    raise AttributeError(name)
