"""Real-time chunking: inference-time inpainting of the next action chunk, for any denoising sampler.

Black, Galliker, Levine 2025, "Real-Time Execution of Action Chunking Flow Policies"
(https://arxiv.org/abs/2506.07339). While a chunk is being computed (``d`` control steps of inference
delay) the robot goes on executing the previous one: the new chunk's first ``d`` actions are already
committed, and the previous chunk's next ones are what the robot was about to do. Switching to an
independently sampled chunk makes the commanded position jump. RTC samples the new chunk as an
inpainting of those actions ``Y`` instead: every denoising step is guided towards them with weights
``W`` (1 over the delay, fading over the rest of the overlap, 0 after it; :func:`prefix_weights`),
by pseudo-inverse guidance (PiGDM), with no retraining::

    x           the noisy sample,  x = alpha * actions + sigma * noise
    x_hat(x)    the sampler's clean estimate from x (one network call, differentiable in x)
    g           = grad_x [ -1/2 sum_i W_i ||Y_i - x_hat_i||^2 ]          (one vector-Jacobian product)
    x_hat'      = x_hat + sigma * min(beta, (alpha^2 + sigma^2) / (alpha * sigma)) * g

``beta`` is ``max_guidance_weight``. For the paper's flow ``x_tau = tau A + (1 - tau) noise``
(alpha = tau, sigma = 1 - tau) this is exactly its ``v' = v + min(beta, (1-tau) / (tau r^2)) g`` with
``r^2 = (1-tau)^2 / (tau^2 + (1-tau)^2)``. Written with (alpha, sigma) the same rule serves a
variance-preserving diffusion sampler (DDPM/DDIM: alpha = sqrt(alphabar_k), sigma = sqrt(1 - alphabar_k)):
a diffusion state divided by (alpha + sigma) is a flow state at tau = alpha / (alpha + sigma) with the
same clean estimate, so the guided update is the flow's, carried over by that change of variables.
How each sampler turns ``x_hat'`` back into its own model output:

- flow matching, π0/SmolVLA convention (:meth:`RTCGuide.guided_velocity`, :func:`flow_sample`): time
  t runs from 1 (noise) to 0 (data), ``x_t = t noise + (1 - t) actions``, velocity ``v ~ noise - actions``,
  ``x_hat = x_t - t v``; guided ``v' = v - w g``.
- diffusion, epsilon prediction: ``eps' = eps - alpha w g``; sample prediction: ``x_hat' = x_hat + sigma w g``
  (:class:`~lerobot.policies.diffusion.modeling_diffusion.DiffusionModel`). The scheduler's step
  (DDIM's deterministic update or DDPM's posterior draw, clipping included) then runs unchanged, and
  :meth:`RTCGuide.inpaint` replaces the new sample's signal by the prefix with the same weights.
  Guidance works through the network's Jacobian ``d x_hat / d x``; Diffusion Policy's U-Net, sharply
  conditioned and predicting clean actions, has it near zero (on the PushT recipe's policy guidance
  alone did not reduce the prefix error over 10 DDIM steps), so the replacement does the inpainting
  there while the guidance steers the rest of the chunk where the Jacobian allows.

Gradients are taken inside ``torch.inference_mode`` policies by leaving that mode around the one
network call; anything the network reads that was computed in inference mode and is saved for
backward (a conditioning vector, a language model's key/value cache) must be cloned outside it first:
:func:`outside_inference_mode` does that.

How a flow-matching policy plugs in (it supplies only its velocity function)::

    @classmethod
    def supports_rtc(cls) -> bool:
        return True

    def predict_action_chunk(self, observation, inference_delay=None, prev_chunk_left_over=None):
        ...  # encode the observation once: prefix cache / conditioning
        prefix = None if prev_chunk_left_over is None else normalise(prev_chunk_left_over)  # (B, P, A)
        guide = make_guide(self.config, prefix, inference_delay, length=chunk_size)
        if guide is not None:
            cache = outside_inference_mode(cache)
        actions = flow_sample(lambda x, t: self.velocity(x, t, cache), noise, num_steps, guide)

SmolVLA, π0 and π0.5 do this through :func:`lerobot.policies.vla_common.flow_sample_with_guide` and
:func:`~lerobot.policies.vla_common.vla_rtc_guide` (their prefix key/value cache is the conditioning).

The deploy loop and the async robot client pass ``prev_chunk_left_over`` (the queued actions from the
observation's step on, robot units) and ``inference_delay`` (control steps) whenever
:func:`rtc_enabled` says the policy has it on.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lerobot.configs.types import RTCAttentionSchedule
from lerobot.policies.rtc.configuration_rtc import RTCConfig


def prefix_weights(
    schedule: RTCAttentionSchedule | str,
    inference_delay: int,
    prefix_len: int,
    execution_horizon: int,
    length: int | None = None,
) -> Tensor:
    """``(length,)`` guidance weights of the new chunk's actions (paper eq. 5, overlap end ``e``).

    ``e = min(execution_horizon, prefix_len)``; action ``i`` gets 1 for ``i < d`` (committed while
    the chunk was computed), ``f(c_i)`` with ``c_i = (e - i) / (e - d + 1)`` for ``d <= i < e`` and 0
    from ``e`` on, where f is 0 (ZEROS), 1 (ONES), c (LINEAR) or ``c (exp(c) - 1) / (e - 1)`` (EXP).
    No weight reaches past the previous chunk's last action.
    """
    schedule = RTCAttentionSchedule(schedule)
    length = prefix_len if length is None else length
    d = max(0, int(inference_delay))
    end = min(execution_horizon, prefix_len)
    weights = torch.zeros(length)
    i = torch.arange(length, dtype=torch.float32)
    if end > d:
        c = (end - i) / (end - d + 1)
        if schedule is RTCAttentionSchedule.ONES:
            fade = torch.ones_like(c)
        elif schedule is RTCAttentionSchedule.LINEAR:
            fade = c
        elif schedule is RTCAttentionSchedule.EXP:
            fade = c * torch.expm1(c) / (math.e - 1)
        else:
            fade = torch.zeros_like(c)
        weights = torch.where((i >= d) & (i < end), fade, weights)
    return torch.where(i < min(d, prefix_len), torch.ones_like(weights), weights)


def guidance_weight(alpha: float, sigma: float, max_guidance_weight: float) -> float:
    """``min(beta, (alpha^2 + sigma^2) / (alpha sigma))``: beta at pure noise or pure data."""
    if alpha <= 0 or sigma <= 0:
        return float(max_guidance_weight)
    return float(min(max_guidance_weight, (alpha**2 + sigma**2) / (alpha * sigma)))


def outside_inference_mode(value: Any) -> Any:
    """``value`` with every tensor (in nested lists, tuples, dicts, dataclasses) cloned as a normal tensor.

    A network call that RTC differentiates may not save inference-mode tensors for backward; a flow
    policy passes its cached conditioning through this once per chunk, before sampling.
    """
    with torch.inference_mode(False):
        return _clone_tree(value)


def _clone_tree(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, dict):
        return {k: _clone_tree(v) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _clone_tree(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **fields)
    if isinstance(value, (list, tuple)):
        return type(value)(_clone_tree(v) for v in value)
    return value


class RTCGuide:
    """The guidance for one chunk: the previous chunk's remaining actions and their weights.

    ``prefix`` is ``(P, A)`` or ``(B, P, A)`` in the sampler's units (normalised actions), its first
    row the action for the new chunk's first executed step, which sits at index ``offset`` of the
    sampled sequence of ``length`` (Diffusion Policy samples ``n_obs_steps - 1`` past steps first).
    ``action_dims`` limits the guidance to each action's first coordinates: a VLA samples actions
    padded to ``max_action_dim``, and its padding coordinates are left free.
    """

    def __init__(
        self,
        config: RTCConfig,
        prefix: Tensor,
        inference_delay: int,
        length: int,
        offset: int = 0,
        action_dims: int | None = None,
    ):
        if prefix.dim() == 2:
            prefix = prefix.unsqueeze(0)
        if prefix.dim() != 3:
            raise ValueError(f"The RTC prefix must be (P, A) or (B, P, A), got shape {tuple(prefix.shape)}.")
        usable = max(0, min(prefix.shape[1], length - offset))
        weights = prefix_weights(
            config.prefix_attention_schedule, inference_delay, usable, config.execution_horizon
        )
        with torch.inference_mode(False):  # normal tensors: the loss saves them for backward
            self.target = prefix.new_zeros((prefix.shape[0], length, prefix.shape[2]))
            self.target[:, offset : offset + usable] = prefix[:, :usable]
            self.weights = prefix.new_zeros((1, length, 1))
            self.weights[0, offset : offset + usable, 0] = weights.to(prefix.device, prefix.dtype)
            if action_dims is not None and action_dims < prefix.shape[2]:
                guided = torch.arange(prefix.shape[2], device=prefix.device) < action_dims
                self.weights = self.weights * guided.to(prefix.dtype)  # (1, length, A)
        self.max_guidance_weight = config.max_guidance_weight
        self.inference_delay = int(inference_delay)
        self.trace: list[dict[str, float]] | None = [] if config.debug else None

    def guide(
        self, x: Tensor, clean_estimate: Callable[[Tensor], tuple[Tensor, Tensor]], alpha: float, sigma: float
    ) -> tuple[Tensor, Tensor]:
        """One step's ``(model_output, w * g)``; ``clean_estimate(x) -> (model_output, x_hat)``.

        ``model_output`` (detached) is whatever the sampler reads (a velocity, a noise estimate); the
        caller adds the correction in its own parameterisation (see the module docstring).
        """
        with torch.inference_mode(False), torch.enable_grad():
            x_in = x.detach().clone().requires_grad_(True)
            output, x_hat = clean_estimate(x_in)
            error = self.target - x_hat
            loss = 0.5 * (self.weights * error.square()).sum()
            (grad,) = torch.autograd.grad(loss, x_in)
        weight = guidance_weight(alpha, sigma, self.max_guidance_weight)
        if self.trace is not None:
            self.trace.append(
                {
                    "alpha": float(alpha),
                    "sigma": float(sigma),
                    "guidance_weight": weight,
                    "prefix_error": float((self.weights * error.detach().square()).sum().sqrt()),
                }
            )
        return output.detach(), -weight * grad

    def inpaint(self, x: Tensor, alpha: float, clean: Tensor) -> Tensor:
        """Soft replacement of the sample's signal: ``x + W alpha (Y - clean)``.

        ``x = alpha * clean + (noise part)`` is the sample after a step and ``clean`` that step's clean
        estimate; the weighted positions get the prefix as their signal and keep their noise (no
        random draw). Unlike the guidance this does not act through the network's Jacobian, which
        is near zero for a sharply conditioned clean-action predictor. After the last step
        (alpha = 1) the committed actions are the prefix's and the faded ones a weighted mean.
        """
        return x + self.weights * alpha * (self.target - clean)

    def guided_velocity(self, velocity_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor, t: float) -> Tensor:
        """The guided velocity at flow time ``t`` (1 = noise, 0 = data; ``v ~ noise - actions``).

        ``velocity_fn(x_t, time)`` is the policy's network with ``time`` a ``(B,)`` tensor.
        """

        def clean(x_in: Tensor) -> tuple[Tensor, Tensor]:
            time = torch.full((x_in.shape[0],), float(t), dtype=x_in.dtype, device=x_in.device)
            v = velocity_fn(x_in, time)
            return v, x_in - float(t) * v

        v, correction = self.guide(x, clean, alpha=1.0 - float(t), sigma=float(t))
        return v - correction


def flow_sample(
    velocity_fn: Callable[[Tensor, Tensor], Tensor],
    noise: Tensor,
    num_steps: int,
    guide: RTCGuide | None = None,
) -> Tensor:
    """Euler integration from t = 1 (``noise``) to t = 0 in ``num_steps`` steps, RTC-guided when ``guide``.

    The hook a flow-matching policy (π0, SmolVLA) needs: it supplies ``velocity_fn(x_t, time)`` (time
    a ``(B,)`` tensor, ``x_t = t noise + (1 - t) actions``, prediction ``~ noise - actions``) and the
    initial noise; :func:`make_guide` builds ``guide`` from its config and the previous chunk.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}.")
    dt = -1.0 / num_steps
    x = noise
    for k in range(num_steps):
        t = 1.0 + k * dt
        if guide is None:
            v = velocity_fn(x, torch.full((x.shape[0],), t, dtype=x.dtype, device=x.device))
        else:
            v = guide.guided_velocity(velocity_fn, x, t)
        x = x + dt * v
    return x


def rtc_enabled(policy: Any) -> bool:
    """Whether ``policy`` takes ``inference_delay`` / ``prev_chunk_left_over`` and its config turns RTC on."""
    supports = getattr(policy, "supports_rtc", None)
    rtc = getattr(getattr(policy, "config", None), "rtc_config", None)
    return bool(callable(supports) and supports() and rtc is not None and rtc.enabled)


def make_guide(
    config: Any,
    prefix: Tensor | None,
    inference_delay: int | None,
    length: int,
    offset: int = 0,
    action_dims: int | None = None,
) -> RTCGuide | None:
    """The guide for one chunk, or None (plain sampling) when ``config.rtc_config`` is off or there is
    no previous chunk yet. ``prefix`` must already be in the sampler's (normalised) units."""
    rtc: RTCConfig | None = getattr(config, "rtc_config", None)
    if rtc is None or not rtc.enabled or prefix is None or prefix.numel() == 0:
        return None
    return RTCGuide(rtc, prefix, inference_delay or 0, length, offset, action_dims)
