"""Exponential moving average of a module's weights: one helper for any policy or training loop.

A policy keeps one as ``policy.ema`` (ACT and Diffusion with ``use_ema``, whose configs take the
fields of :class:`EMAFields`) and ``PreTrainedPolicy`` does the rest: ``update()`` (the training loop
calls it after each optimiser step, see ``PolicyWithUpdate``) folds the step in, inference and
``save_pretrained`` run inside :meth:`EMA.averaged`, training checkpoints carry :meth:`EMA.state_dict`.
A training loop may as well hold one of any module itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.swa_utils import get_ema_multi_avg_fn


class EMA:
    """Exponential moving average of a module's trainable parameters (Polyak averaging).

    Decay warms up as ``1 - (1 + step) ** -power`` (capped at ``max_decay``) so early, poor
    weights are forgotten fast, as in the Diffusion Policy paper's training recipe.
    """

    def __init__(self, module: nn.Module, power: float = 0.75, max_decay: float = 0.9999):
        self.module, self.power, self.max_decay = module, power, max_decay
        self.step = 0
        self.shadow: dict[str, Tensor] | None = None  # created at the first update, from the weights then

    def _params(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.module.named_parameters() if p.requires_grad}

    def decay(self) -> float:
        return min(self.max_decay, 1 - self.step**-self.power)

    @torch.no_grad()
    def update(self) -> None:
        self.step += 1
        params = self._params()
        if self.shadow is None:
            self.shadow = {n: p.detach().clone() for n, p in params.items()}
            return
        names = list(params)
        ema_update = get_ema_multi_avg_fn(self.decay())  # torch's public multi-tensor EMA
        ema_update([self.shadow[n] for n in names], [params[n].detach() for n in names], None)

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the module (no-op before the first update)."""
        if self.shadow is None:
            yield
            return
        params = self._params()
        live = {n: p.data for n, p in params.items()}
        for n, p in params.items():
            p.data = self.shadow[n].to(p.device)
        try:
            yield
        finally:
            for n, p in params.items():
                p.data = live[n]

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.shadow = int(state["step"]), state["shadow"]


EMA_FIELDS = ("use_ema", "ema_power", "ema_max_decay")


@dataclass
class EMAFields:
    """The config fields of a policy that can keep an EMA of its weights (a mixin placed before
    ``PreTrainedConfig``).

    They are this library's addition (LeRobot 0.6 averages no weights), so ``config.json`` carries them
    only when ``use_ema`` is on and a default checkpoint stays loadable by LeRobot.
    """

    use_ema: bool = False
    """Keep an EMA of the weights, updated by ``policy.update()`` after each optimiser step; saved and
    evaluated."""
    ema_power: float = 0.75
    """EMA warm-up: decay = 1 - (1 + step) ** -ema_power, capped at ema_max_decay."""
    ema_max_decay: float = 0.9999
    """Upper bound of the EMA decay."""

    def make_ema(self, module: nn.Module) -> EMA | None:
        """The EMA of ``module`` this config asks for, or None."""
        return EMA(module, self.ema_power, self.ema_max_decay) if self.use_ema else None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()  # type: ignore[misc]  (PreTrainedConfig's, next in the MRO)
        if not self.use_ema:
            for name in EMA_FIELDS:
                out.pop(name)
        return out
