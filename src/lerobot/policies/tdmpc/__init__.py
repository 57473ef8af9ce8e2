"""TD-MPC: ``TDMPCConfig`` (no torch import) and, lazily, ``TDMPCPolicy``."""

from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig

__all__ = ["TDMPCConfig", "TDMPCPolicy"]


def __getattr__(name: str):
    if name == "TDMPCPolicy":
        from lerobot.policies.tdmpc.modeling_tdmpc import TDMPCPolicy

        return TDMPCPolicy
    raise AttributeError(name)
