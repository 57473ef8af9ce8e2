"""TD-MPC, readable top to bottom: plan in a learned latent space, learn the model and its values by TD.

Hansen et al. 2022 (https://arxiv.org/abs/2203.04955), with FOWM's offline-to-online losses (Feng et
al. 2023, https://arxiv.org/abs/2310.16029): an expectile V, advantage-weighted policy regression and
an ensemble-spread penalty in planning, so one policy trains from a dataset, from interaction, or both.
The networks (:class:`~lerobot.policies.tdmpc.network.TOLD`) live in ``network.py``; this module holds
the planner, the losses and the action queue.

Shapes (B batch, H = horizon, A action dim)::

    observation.state / .environment_state / .image   (B, ...)           select_action input (raw units)
    training batch: every observation key              (B, H + 1, ...)  frames t .. t+H
                    action                             (B, H, A)        actions t .. t+H-1
                    next.reward                        (B, H)           reward after each action
                    <key>_is_pad                       (B, H[+1]) bool  steps past the episode end

Acting: ``use_mpc=False`` takes the policy prior's mean, tanh(pi(z)). ``use_mpc=True`` runs MPPI over
H-step action sequences: ``n_gaussian_samples`` drawn from a Gaussian plus ``n_pi_samples`` rolled out
by the (noisy) prior, each scored by the model's discounted rewards and a terminal Q, penalised by the
Q ensemble's spread; the ``n_elites`` best refit the Gaussian (softmax weights), ``cem_iterations``
times. The mean is warm-started from the previous plan, shifted by the steps executed since.
``select_action(obs, explore=True)`` (online training) adds the plan's std as exploration noise.

Training loss over the latent rollout z_0 = enc(o_0), z_{t+1} = d(z_t, a_t), each step weighted by
``temporal_decay_coeff ** t`` and masked past the episode end::

    consistency  || z_{t+1} - enc_target(o_{t+1}) ||^2        reward  (R(z_t, a_t) - r_t)^2
    Q            sum_e (Q_e(z_t, a_t) - G_t)^2,   G_t = n-step return of r + discount * V(enc(o)) (no grad)
    V            expectile(min_2 Q_target(z_t, a_t) - V(z_t))
    pi           exp(advantage_scaling * (min_2 Q_target - V)) * || pi(z_t) - a_t ||^2   (clipped at 100)

After each optimiser step ``update()`` moves the target network towards the model (EMA).
"""

from __future__ import annotations

import copy
from collections import deque
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from lerobot.configs.types import ACTION
from lerobot.policies.pretrained import PolicyAction, PreTrainedPolicy, inference_step
from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig
from lerobot.policies.tdmpc.network import TOLD

REWARD = "next.reward"


class TDMPCPolicy(PreTrainedPolicy):
    """TD-MPC with its normalisation and action queue: raw observations in, robot-unit actions out."""

    config_class = TDMPCConfig
    name = "tdmpc"

    def __init__(self, config: TDMPCConfig, dataset_stats: dict[str, dict[str, Any]] | None = None):
        super().__init__(config, dataset_stats)
        self.model = TOLD(config)
        self.model_target = copy.deepcopy(self.model)
        self.model_target.requires_grad_(False)
        self.reset()

    def get_optim_params(self) -> list[Tensor]:
        """The model's parameters; the target network only follows them (``update``)."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def reset(self) -> None:
        self._action_queue: deque[Tensor] = deque()
        self._prev_mean: Tensor | None = None  # (H, B, A) last plan's mean, to warm-start the next

    # ---- acting -----------------------------------------------------------------------------------
    @inference_step
    def predict_action_chunk(self, observation: dict[str, Any]) -> Tensor:
        """Raw observation -> (B, n_action_steps, A) actions in robot units (the plan's first steps)."""
        actions = self._act(self._normalized_observation(observation), explore=False)
        return self.unnormalize_outputs({ACTION: actions.transpose(0, 1)})[ACTION]

    @inference_step
    def select_action(self, observation: dict[str, Any], explore: bool = False) -> PolicyAction:
        """Raw observation -> ``{"action": (B, A)}`` in robot units; each action is repeated
        ``n_action_repeats`` times. ``explore`` adds the planner's noise (online data collection)."""
        if not self._action_queue:
            actions = self._act(self._normalized_observation(observation), explore)  # (n, B, A)
            for action in actions:
                self._action_queue.extend([action] * self.config.n_action_repeats)
        action = self._action_queue.popleft()
        return PolicyAction(action=self.unnormalize_outputs({ACTION: action})[ACTION])

    def _normalized_observation(self, observation: dict[str, Any]) -> dict[str, Tensor]:
        obs = self.prepare_observation(observation)
        self.check_features(obs, self.config.input_features)
        return self.normalize_inputs(obs)

    def _act(self, obs: dict[str, Tensor], explore: bool) -> Tensor:
        """Normalised observation -> (n_action_steps, B, A) normalised actions."""
        z = self.model.encode(obs)
        if self.config.use_mpc:
            return self.plan(z, explore)
        std = self.config.min_std if explore else 0.0
        return self.model.pi(z, std).unsqueeze(0)

    def plan(self, z: Tensor, explore: bool = False) -> Tensor:
        """MPPI from latent ``z`` (B, D) -> the first ``n_action_steps`` actions (n, B, A) of the plan."""
        cfg = self.config
        horizon, batch, n_gauss = cfg.horizon, z.shape[0], cfg.n_gaussian_samples
        action_dim = cfg.action_feature.shape[0]

        pi_actions = None
        if cfg.n_pi_samples > 0:  # trajectories proposed by the noisy policy prior
            zp = z.unsqueeze(0).expand(cfg.n_pi_samples, -1, -1)
            steps = []
            for _ in range(horizon):
                steps.append(self.model.pi(zp, cfg.min_std))
                zp = self.model.latent_dynamics(zp, steps[-1])
            pi_actions = torch.stack(steps)  # (H, P, B, A)

        mean = torch.zeros(horizon, batch, action_dim, device=z.device)
        if self._prev_mean is not None and self._prev_mean.shape == mean.shape:
            shift = cfg.n_action_steps
            mean[:-shift] = self._prev_mean[shift:]
        std = torch.full_like(mean, cfg.max_std)
        z_all = z.unsqueeze(0).expand(n_gauss + cfg.n_pi_samples, -1, -1)
        for _ in range(cfg.cem_iterations):
            noise = torch.randn(horizon, n_gauss, batch, action_dim, device=z.device)
            actions = (mean.unsqueeze(1) + std.unsqueeze(1) * noise).clamp(-1, 1)
            if pi_actions is not None:
                actions = torch.cat([actions, pi_actions], dim=1)  # (H, N, B, A)
            value = self.estimate_value(z_all, actions).nan_to_num(0.0)  # (N, B)
            elite_values, elite_idx = value.topk(cfg.n_elites, dim=0)  # (K, B)
            index = elite_idx[None, :, :, None].expand(horizon, -1, -1, action_dim)
            elite_actions = actions.gather(1, index)  # (H, K, B, A)
            score = torch.softmax(cfg.elite_weighting_temperature * elite_values, dim=0)  # (K, B)
            weights = score[None, :, :, None]
            new_mean = (weights * elite_actions).sum(1)
            new_std = ((weights * (elite_actions - new_mean.unsqueeze(1)) ** 2).sum(1)).sqrt()
            mean = cfg.gaussian_mean_momentum * mean + (1 - cfg.gaussian_mean_momentum) * new_mean
            std = new_std.clamp(cfg.min_std, cfg.max_std)
        self._prev_mean = mean

        # Execute one elite trajectory drawn by its score (MPPI), not the mean (which can average modes away).
        pick = torch.multinomial(score.T, 1).squeeze(1)  # (B,)
        chosen = elite_actions[:, pick, torch.arange(batch, device=z.device)]  # (H, B, A)
        actions = chosen[: cfg.n_action_steps]
        if explore:
            actions = (actions + std[: cfg.n_action_steps] * torch.randn_like(actions)).clamp(-1, 1)
        return actions

    def estimate_value(self, z: Tensor, actions: Tensor) -> Tensor:
        """Discounted model return of each action sequence (H, N, B, A) from z (N, B, D), with the
        terminal Q of the prior's next action; every term minus ``uncertainty_regularizer_coeff`` times
        the Q ensemble's spread at that step. -> (N, B)."""
        cfg = self.config
        value, discount = torch.zeros(z.shape[:-1], device=z.device), 1.0
        for action in actions:
            uncertainty = self.model.Qs(z, action).std(0)
            z, reward = self.model.latent_dynamics_and_reward(z, action)
            value = value + discount * (reward - cfg.uncertainty_regularizer_coeff * uncertainty)
            discount *= cfg.discount
        terminal = self.model.Qs(z, self.model.pi(z, cfg.min_std))
        return value + discount * (terminal.mean(0) - cfg.uncertainty_regularizer_coeff * terminal.std(0))

    # ---- learning ---------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Raw training batch (see the module docstring) -> ``{"loss": scalar, <each term>: float}``."""
        cfg = self.config
        horizon = cfg.horizon
        if REWARD not in batch:
            raise ValueError(
                f"TD-MPC learns from rewards: the batch has no {REWARD!r} (keys {sorted(batch)}). Train on a "
                "dataset recorded with rewards, or online in a sim env (lerobot-train --env.type=... with no dataset)."
            )
        self.check_features(batch, cfg.input_features, time_steps=horizon + 1)
        self.check_features(batch, cfg.output_features, time_steps=horizon)
        norm = self.normalize_targets(self.normalize_inputs(batch))
        obs = {k: norm[k].transpose(0, 1) for k in cfg.input_features}  # (H+1, B, ...)
        action = norm[ACTION].transpose(0, 1)  # (H, B, A)
        reward = batch[REWARD].transpose(0, 1).float()  # (H, B)
        valid = self._valid_steps(batch)  # (H, B) float

        image_key = self.model._encoder.image_key
        if self.training and image_key is not None and cfg.max_random_shift_ratio > 0:
            obs[image_key] = random_shift(obs[image_key], cfg.max_random_shift_ratio)

        # Latent rollout from the first frame, driven by the recorded actions.
        z = self.model.encode({k: v[0] for k, v in obs.items()})
        z_preds, reward_preds = [z], []
        for t in range(horizon):
            z, r = self.model.latent_dynamics_and_reward(z, action[t])
            z_preds.append(z)
            reward_preds.append(r)
        z_preds, reward_preds = torch.stack(z_preds), torch.stack(reward_preds)  # (H+1, B, D), (H, B)
        z_now = z_preds[:-1]
        q_preds = self.model.Qs(z_now, action)  # (E, H, B)
        v_preds = self.model.V(z_now.detach())  # (H, B)

        with torch.no_grad():
            next_obs = {k: v[1:] for k, v in obs.items()}
            z_targets = self.model_target.encode(next_obs)  # (H, B, D)
            next_v = self.model.V(self.model.encode(next_obs))  # (H, B)
            q_targets = n_step_returns(reward, next_v, valid.bool(), cfg.discount, cfg.td_n_steps)
            target_q = self.model_target.Qs(z_now.detach(), action, return_min=True)  # (H, B)
            advantage = target_q - self.model.V(z_now.detach())
            awr_weights = torch.exp(advantage * cfg.advantage_scaling).clamp(max=100.0)

        decay = cfg.temporal_decay_coeff ** torch.arange(horizon, device=reward.device)
        weight = decay.unsqueeze(1) * valid  # (H, B)

        def weighted(per_step: Tensor) -> Tensor:  # (H, B) -> sum over time, mean over the batch
            return (per_step * weight).sum(0).mean()

        consistency = weighted(F.mse_loss(z_preds[1:], z_targets, reduction="none").mean(-1))
        reward_loss = weighted(F.mse_loss(reward_preds, reward, reduction="none"))
        q_loss = weighted(F.mse_loss(q_preds, q_targets.expand_as(q_preds), reduction="none").sum(0))
        diff = target_q - v_preds
        v_loss = weighted((cfg.expectile_weight - (diff < 0).float()).abs() * diff**2)
        pi_preds = self.model.pi(z_now.detach())
        pi_loss = weighted(F.mse_loss(pi_preds, action, reduction="none").sum(-1) * awr_weights)

        loss = (
            cfg.consistency_coeff * consistency
            + cfg.reward_coeff * reward_loss
            + cfg.value_coeff * (q_loss + v_loss)
            + cfg.pi_coeff * pi_loss
        )
        return {
            "loss": loss,
            "consistency_loss": consistency.item(),
            "reward_loss": reward_loss.item(),
            "q_loss": q_loss.item(),
            "v_loss": v_loss.item(),
            "pi_loss": pi_loss.item(),
        }

    def _valid_steps(self, batch: dict[str, Tensor]) -> Tensor:
        """(H, B) 1.0 where transition t (obs t, action t, reward t, obs t+1) lies inside the episode."""
        horizon = self.config.horizon
        first = batch[ACTION]
        valid = torch.ones(first.shape[:2], dtype=torch.bool, device=first.device)  # (B, H)
        for key in (ACTION, REWARD):
            pad = batch.get(f"{key}_is_pad")
            if pad is not None:
                valid &= ~pad.bool()
        for key in self.config.input_features:
            pad = batch.get(f"{key}_is_pad")
            if pad is not None:
                valid &= ~pad.bool()[:, 1 : horizon + 1]
        # Once a step is past the episode end, every later one is too.
        return valid.T.float().cumprod(0)

    @torch.no_grad()
    def update(self) -> None:
        """Move the target network towards the model: target <- m * target + (1 - m) * model."""
        super().update()  # (an EMA of the weights, should one be set)
        m = self.config.target_model_momentum
        for target, live in zip(self.model_target.parameters(), self.model.parameters(), strict=True):
            target.lerp_(live, 1.0 - m)


def n_step_returns(reward: Tensor, next_value: Tensor, valid: Tensor, discount: float, n: int) -> Tensor:
    """TD targets G_t = r_t + ... + discount^(k-1) r_{t+k-1} + discount^k V(z_{t+k}), k = min(n, steps left).

    ``reward``, ``next_value`` (V of the frame after each step) and ``valid`` are (H, B); a return
    stops at the episode's end (and at the rollout's), where it bootstraps from the last valid frame.
    """
    horizon = reward.shape[0]
    targets = []
    for t in range(horizon):
        ret = torch.zeros_like(reward[t])
        scale = torch.ones_like(reward[t])
        bootstrap = next_value[t]
        alive = torch.ones_like(valid[t])
        for k in range(min(n, horizon - t)):
            alive = alive & valid[t + k]
            ret = ret + torch.where(alive, scale * reward[t + k], 0.0)
            bootstrap = torch.where(alive, next_value[t + k], bootstrap)
            scale = torch.where(alive, scale * discount, scale)
        targets.append(ret + scale * bootstrap)
    return torch.stack(targets)


def random_shift(images: Tensor, ratio: float) -> Tensor:
    """Shift each image (..., C, S, S) by up to ``ratio * S`` pixels, edges replicated (DrQ's augmentation)."""
    lead, (c, h, w) = images.shape[:-3], images.shape[-3:]
    pad = int(round(ratio * h))
    if pad == 0:
        return images
    flat = F.pad(images.reshape(-1, c, h, w), (pad, pad, pad, pad), mode="replicate")
    n = flat.shape[0]
    dy = torch.randint(0, 2 * pad + 1, (n, 1), device=images.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), device=images.device)
    rows = (torch.arange(h, device=images.device) + dy)[:, None, :, None]  # (n, 1, h, 1)
    cols = (torch.arange(w, device=images.device) + dx)[:, None, None, :]  # (n, 1, 1, w)
    sample = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return flat[sample, channel, rows, cols].reshape(*lead, c, h, w)
