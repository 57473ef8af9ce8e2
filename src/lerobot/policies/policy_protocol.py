"""``PolicyProtocol``: what any policy -- ours or your own -- offers to the training and control loops.

A custom policy need not subclass anything; it only has to look like this (``isinstance(p,
PolicyProtocol)`` checks the names at run time). Subclassing :class:`~lerobot.policies.pretrained.
PreTrainedPolicy` additionally gives normalisation and ``save_pretrained`` / ``from_pretrained``.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class PolicyProtocol(Protocol):
    name: str
    """Registered policy type, e.g. ``"act"``."""

    def reset(self) -> None:
        """Called when an episode starts: drop queued actions and other per-episode state."""

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Training batch -> ``{"loss": scalar tensor, ...}``; the loop calls ``out["loss"].backward()``."""

    def select_action(self, observation: dict[str, Tensor]) -> dict[str, Tensor] | Tensor:
        """Observation (batched) -> ``{"action": (B, action_dim)}`` (or that tensor) for this step."""


@runtime_checkable
class PolicyWithUpdate(PolicyProtocol, Protocol):
    def update(self) -> None:
        """Called after each optimiser step (e.g. EMA target networks)."""
