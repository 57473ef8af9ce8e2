"""Compatibility alias of :mod:`lerobot.policies.policy_protocol`."""

from lerobot.policies.policy_protocol import PolicyProtocol, PolicyWithUpdate

__all__ = ["PolicyProtocol", "PolicyWithUpdate"]
