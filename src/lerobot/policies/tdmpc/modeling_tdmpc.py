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
by the (noisy) prior, each scored by the model's discounted rewards and a pessimistic terminal Q (the
smaller of two random heads), penalised by the Q ensemble's spread; the ``n_elites`` best refit the
Gaussian (softmax weights), ``cem_iterations`` times. The mean is warm-started from the previous plan,
shifted by the steps executed since.
``select_action(obs, explore=True)`` (online training) adds the plan's std as exploration noise.
Every draw of a plan is made up front (:func:`plan_draws`), so an export can take them as inputs.

Training loss over the latent rollout z_0 = enc(o_0), z_{t+1} = d(z_t, a_t), each step weighted by
``temporal_decay_coeff ** t`` and masked past the episode end::

    consistency  || z_{t+1} - enc_target(o_{t+1}) ||^2        reward  (R(z_t, a_t) - r_t)^2
    Q            sum_e (Q_e(z_t, a_t) - G_t)^2,   G_t = n-step return of r + discount * V(enc(o)) (no grad)
    V            expectile(min_2 Q_target(z_t, a_t) - V(z_t))
    pi           exp(advantage_scaling * (min_2 Q_target - V)) * || pi(z_t) - a_t ||^2   (clipped at 100;
                 z_t detached, averaged over the steps rather than summed)

Loss values and gradients are LeRobot 0.6.1's (``tests/policies/tdmpc/test_tdmpc_checkpoint_parity.py``).

After each optimiser step ``update()`` moves the target network towards the model (EMA).
"""

from __future__ import annotations

import copy
import dataclasses
from collections import deque
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor
from torch.optim.swa_utils import get_ema_multi_avg_fn

from lerobot.configs.types import ACTION
from lerobot.policies.export_graph import GraphInput, PolicyGraph
from lerobot.policies.pretrained import PolicyAction, PreTrainedPolicy, inference_step
from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig
from lerobot.policies.tdmpc.network import TOLD

REWARD = "next.reward"


class MPPIPlanner:
    """MPPI in TD-MPC's latent space, for a class with ``config`` (:class:`TDMPCConfig`) and ``model``
    (:class:`TOLD`): the policy and its export graph."""

    config: TDMPCConfig
    model: TOLD

    def plan(self, z: Tensor, draws: PlanDraws, mean: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """MPPI from latent ``z`` (B, D) and the initial mean (H, B, A) with the given ``draws``
        -> the first ``n_action_steps`` actions (n, B, A) of the plan, the final mean and std (H, B, A).

        A pure function of its inputs (the export's graph calls it as it is)."""
        cfg = self.config
        horizon, n_gauss = cfg.horizon, cfg.n_gaussian_samples
        action_dim = mean.shape[-1]

        pi_actions = None
        if cfg.n_pi_samples > 0:  # trajectories proposed by the noisy policy prior
            zp = z.unsqueeze(0).expand(cfg.n_pi_samples, -1, -1)
            steps = []
            for t in range(horizon):
                steps.append(self.model.pi(zp, cfg.min_std, draws.pi[t]))
                zp = self.model.latent_dynamics(zp, steps[-1])
            pi_actions = torch.stack(steps)  # (H, P, B, A)

        std = torch.full_like(mean, cfg.max_std)
        z_all = z.unsqueeze(0).expand(n_gauss + cfg.n_pi_samples, -1, -1)
        for i in range(cfg.cem_iterations):
            actions = (mean.unsqueeze(1) + std.unsqueeze(1) * draws.gaussian[i]).clamp(-1, 1)
            if pi_actions is not None:
                actions = torch.cat([actions, pi_actions], dim=1)  # (H, N, B, A)
            heads = None if draws.heads is None else draws.heads[i]
            value = self.estimate_value(z_all, actions, draws.terminal[i], heads).nan_to_num(0.0)  # (N, B)
            elite_values, elite_idx = top_k_first_on_ties(value, cfg.n_elites)  # (K, B)
            index = elite_idx[None, :, :, None].expand(horizon, -1, -1, action_dim)
            elite_actions = actions.gather(1, index)  # (H, K, B, A)
            score = torch.softmax(cfg.elite_weighting_temperature * elite_values, dim=0)  # (K, B)
            weights = score[None, :, :, None]
            new_mean = (weights * elite_actions).sum(1)
            new_std = ((weights * (elite_actions - new_mean.unsqueeze(1)) ** 2).sum(1)).sqrt()
            mean = cfg.gaussian_mean_momentum * mean + (1 - cfg.gaussian_mean_momentum) * new_mean
            std = new_std.clamp(cfg.min_std, cfg.max_std)

        # Execute one elite trajectory drawn by its score (MPPI), not the mean (which can average modes
        # away): the inverse CDF of the scores at the uniform draw.
        below = (score.T.cumsum(-1) <= draws.pick.unsqueeze(-1)).sum(-1)
        pick = below.clamp(max=cfg.n_elites - 1)  # (B,); rounding can leave the last cumsum below u
        chosen = elite_actions.gather(1, pick[None, None, :, None].expand(horizon, 1, -1, action_dim))
        return chosen[: cfg.n_action_steps, 0], mean, std

    def estimate_value(
        self,
        z: Tensor,
        actions: Tensor,
        terminal_noise: Tensor | None = None,
        terminal_heads: Tensor | None = None,
    ) -> Tensor:
        """Discounted model return of each action sequence (H, N, B, A) from z (N, B, D), with the
        terminal Q of the (noisy) prior's next action (``terminal_noise`` (N, B, A): its draw); every
        term minus ``uncertainty_regularizer_coeff`` times the Q ensemble's spread at that step. -> (N, B).

        The terminal Q is pessimistic, as in LeRobot: the smaller of two heads drawn with replacement
        (``terminal_heads`` (2, B) uniform in [0, 1): the draw), or of both heads of a 2-head ensemble."""
        cfg = self.config
        # Only the dynamics is sequential: roll it out, then score every step's reward and Q spread,
        # the terminal Q included, in one batched call each.
        latents = [z]
        for action in actions:
            latents.append(self.model.latent_dynamics(latents[-1], action))
        z_last = latents.pop()
        steps = torch.stack(latents)  # (H, N, B, D): z_t, the state each action is taken in
        rewards = self.model.reward(steps, actions)  # (H, N, B)
        terminal_action = self.model.pi(z_last, cfg.min_std, terminal_noise)
        qs = self.model.Qs(
            torch.cat([steps, z_last.unsqueeze(0)]), torch.cat([actions, terminal_action.unsqueeze(0)])
        )  # (E, H + 1, N, B)
        penalty = cfg.uncertainty_regularizer_coeff * qs.std(0)  # (H + 1, N, B)
        terminal_qs = qs[:, -1]  # (E, N, B)
        if cfg.draws_terminal_heads:
            if terminal_heads is None:
                terminal_heads = torch.rand((2, z.shape[1]), device=z.device)
            index = (terminal_heads * len(terminal_qs)).long().clamp(max=len(terminal_qs) - 1)  # (2, B)
            terminal_qs = terminal_qs.gather(0, index[:, None, :].expand(-1, terminal_qs.shape[1], -1))
        gains = torch.cat([rewards, terminal_qs.min(0, keepdim=True).values]) - penalty
        discounts = torch.tensor([cfg.discount**t for t in range(len(gains))], device=z.device)
        return (discounts[:, None, None] * gains).sum(0)


class TDMPCPolicy(MPPIPlanner, PreTrainedPolicy):
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
    def predict_action_chunk(
        self, observation: dict[str, Any], generator: torch.Generator | None = None
    ) -> Tensor:
        """Raw observation -> (B, n, A) actions in robot units: the plan's first ``n_action_steps``
        (the prior's one action without planning).

        Each plan starts cold (zero mean): unlike ``select_action``, a caller of this method may run
        any number of the previous chunk's steps, so the last plan is no warm start. ``generator``
        makes the planner's draws (:func:`plan_draws`) reproducible: an export given the same draws
        acts the same.
        """
        obs = self._normalized_observation(observation)
        actions = self._act(obs, explore=False, generator=generator, warm_start=False)
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

    def _act(
        self,
        obs: dict[str, Tensor],
        explore: bool,
        generator: torch.Generator | None = None,
        warm_start: bool = True,
    ) -> Tensor:
        """Normalised observation -> (n_action_steps, B, A) normalised actions.

        ``warm_start``: start from the last plan's mean, shifted by the steps executed since, and keep
        this plan's for the next (``select_action``'s loop)."""
        z = self.model.encode(obs)
        cfg = self.config
        if not cfg.use_mpc:
            return self.model.pi(z, cfg.min_std if explore else 0.0).unsqueeze(0)
        draws = plan_draws(cfg, z.shape[0], generator).to(z.device)
        mean = torch.zeros(cfg.horizon, z.shape[0], cfg.action_feature.shape[0], device=z.device)
        if warm_start and self._prev_mean is not None and self._prev_mean.shape == mean.shape:
            mean[: -cfg.n_action_steps] = self._prev_mean[cfg.n_action_steps :]
        actions, mean, std = self.plan(z, draws, mean)
        if warm_start:
            self._prev_mean = mean
        if explore:
            actions = (actions + std[: cfg.n_action_steps] * torch.randn_like(actions)).clamp(-1, 1)
        return actions

    def _export_graph(self, camera_images: bool, draws: str, history: bool) -> TDMPCGraph:
        """One frame, no history; with planning, its draws as inputs (or made inside)."""
        return TDMPCGraph(self, camera_images, draws)

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
        # Only the dynamics is sequential; the heads then take every step at once.
        z_preds = [self.model.encode({k: v[0] for k, v in obs.items()})]
        for t in range(horizon):
            z_preds.append(self.model.latent_dynamics(z_preds[-1], action[t]))
        z_preds = torch.stack(z_preds)  # (H+1, B, D)
        z_now = z_preds[:-1]
        reward_preds = self.model.reward(z_now, action)  # (H, B)
        q_preds = self.model.Qs(z_now, action)  # (E, H, B)
        v_preds = self.model.V(z_now)  # (H, B); its loss shapes the latent too, as in LeRobot

        with torch.no_grad():
            next_obs = {k: v[1:] for k, v in obs.items()}
            z_targets = self.model_target.encode(next_obs)  # (H, B, D)
            next_v = self.model.V(self.model.encode(next_obs))  # (H, B)
            q_targets = n_step_returns(reward, next_v, valid.bool(), cfg.discount, cfg.td_n_steps)
            target_q = self.model_target.Qs(z_now.detach(), action, return_min=True)  # (H, B)
            advantage = target_q - v_preds.detach()
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
        # LeRobot averages this term over the steps as well (the others are summed over them).
        pi_loss = weighted(F.mse_loss(pi_preds, action, reduction="none").sum(-1) * awr_weights) / horizon

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
        ema_update = get_ema_multi_avg_fn(m)  # torch's public multi-tensor EMA (one fused lerp)
        ema_update(list(self.model_target.parameters()), list(self.model.parameters()), None)


@dataclasses.dataclass
class PlanDraws:
    """The planner's random draws, time-major as it uses them (B batch, H horizon, I CEM iterations,
    P prior samples, G Gaussian samples, N = G + P, A action dim)."""

    pi: Tensor | None
    """(H, P, B, A) standard normal: the noise of the prior's proposals (None without them)."""
    gaussian: Tensor
    """(I, H, G, B, A) standard normal: each iteration's Gaussian samples."""
    terminal: Tensor
    """(I, N, B, A) standard normal: the noise of the prior's action behind each terminal Q."""
    pick: Tensor
    """(B,) uniform in [0, 1): which elite trajectory is executed (inverse CDF of the elite scores)."""
    heads: Tensor | None
    """(I, 2, B) uniform in [0, 1): the two Q heads whose minimum is each iteration's terminal value
    (None with at most 2 heads: both are used)."""

    def to(self, device: torch.device) -> PlanDraws:
        return PlanDraws(*(None if x is None else x.to(device) for x in dataclasses.astuple(self)))


def plan_draws(config: TDMPCConfig, batch_size: int, generator: torch.Generator | None = None) -> PlanDraws:
    """Every draw one MPPI plan makes, in this order, from ``generator`` (the global one when None)."""
    horizon, n_pi, n_gauss = config.horizon, config.n_pi_samples, config.n_gaussian_samples
    iterations, action_dim = config.cem_iterations, config.action_feature.shape[0]
    pi = torch.randn((horizon, n_pi, batch_size, action_dim), generator=generator) if n_pi else None
    gaussian = torch.randn((iterations, horizon, n_gauss, batch_size, action_dim), generator=generator)
    terminal = torch.randn((iterations, n_gauss + n_pi, batch_size, action_dim), generator=generator)
    pick = torch.rand((batch_size,), generator=generator)
    heads = (
        torch.rand((iterations, 2, batch_size), generator=generator) if config.draws_terminal_heads else None
    )
    return PlanDraws(pi, gaussian, terminal, pick, heads)


class TDMPCGraph(MPPIPlanner, PolicyGraph):
    """Raw observation (one frame) [+ the planner's draws] -> (B, n, A) in robot units: ``predict_action_chunk``.

    Without planning (``use_mpc=False``) the prior's mean, one action: deterministic. With it, a cold-start
    MPPI plan's first ``n_action_steps`` actions; ``draws="input"`` adds, batch first, ``pi_noise``
    (B, H, P, A) (when ``n_pi_samples`` > 0), ``plan_noise`` (B, I, H, G, A), ``terminal_noise``
    (B, I, N, A), all standard normal, ``elite_pick`` (B, 1) and, with more than 2 Q heads,
    ``terminal_heads`` (B, I, 2), uniform in [0, 1) (see :class:`PlanDraws`).
    """

    def __init__(self, policy: TDMPCPolicy, camera_images: bool, draws: str):
        super().__init__(camera_images, draws)
        cfg = self.config = policy.config
        self.model, self.normalize_inputs = policy.model, policy.normalize_inputs
        self.unnormalize_outputs = policy.unnormalize_outputs
        self.observations = [self.observation_input(n, ft) for n, ft in cfg.input_features.items()]
        self.cameras = set(cfg.image_features)
        self.inputs = list(self.observations)
        action_dim = cfg.action_feature.shape[0]
        self.output = GraphInput(
            ACTION, (cfg.n_action_steps if cfg.use_mpc else 1, action_dim), torch.float32
        )
        if not cfg.use_mpc:
            self.random_draws = "none: without planning (use_mpc=false) TD-MPC acts with its prior's mean"
            return
        if draws == "input":
            h, i, a = cfg.horizon, cfg.cem_iterations, action_dim
            g, p = cfg.n_gaussian_samples, cfg.n_pi_samples
            if p:
                self.inputs.append(GraphInput("pi_noise", (h, p, a), torch.float32, random=True))
            self.inputs += [
                GraphInput("plan_noise", (i, h, g, a), torch.float32, random=True),
                GraphInput("terminal_noise", (i, g + p, a), torch.float32, random=True),
                GraphInput("elite_pick", (1,), torch.float32, random=True, uniform=True),
            ]
            if cfg.draws_terminal_heads:
                self.inputs.append(
                    GraphInput("terminal_heads", (i, 2), torch.float32, random=True, uniform=True)
                )
        where = (
            "inputs (pi_noise, plan_noise, terminal_noise standard normal; elite_pick, terminal_heads uniform "
            "in [0, 1))"
            if draws == "input"
            else "drawn inside the model"
        )
        self.random_draws = (
            "MPPI planning from a cold start (zero mean): the prior's proposal noise, each iteration's "
            f"Gaussian samples and terminal-action noise, and the pick of the executed elite: {where}"
        )

    def draw_inputs(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        """The planner's draws as ``predict_action_chunk(obs, generator=...)`` makes them, batch first."""
        if not self.config.use_mpc:
            return ()
        d = plan_draws(self.config, batch_size, generator)
        out = [] if d.pi is None else [d.pi.permute(2, 0, 1, 3)]
        out += [d.gaussian.permute(3, 0, 1, 2, 4), d.terminal.permute(2, 0, 1, 3), d.pick[:, None]]
        return (*out, *([] if d.heads is None else [d.heads.permute(2, 0, 1)]))

    def forward(self, *inputs: Tensor) -> Tensor:
        cfg = self.config
        z = self.model.encode(self.normalize_inputs(self.observation_batch(inputs)))
        if not cfg.use_mpc:
            actions = self.model.pi(z).unsqueeze(1)
        else:
            if self.draws == "input":
                given = list(inputs[len(self.observations) :])
                pi = given.pop(0).permute(1, 2, 0, 3) if cfg.n_pi_samples else None
                gaussian, terminal, pick = given[:3]
                heads = given[3].permute(1, 2, 0) if cfg.draws_terminal_heads else None
                draws = PlanDraws(
                    pi, gaussian.permute(1, 2, 3, 0, 4), terminal.permute(1, 2, 0, 3), pick[:, 0], heads
                )
            else:
                draws = plan_draws(cfg, z.shape[0]).to(z.device)
            mean = torch.zeros(cfg.horizon, z.shape[0], self.output.shape[1], device=z.device)
            actions = self.plan(z, draws, mean)[0].transpose(0, 1)
        return self.unnormalize_outputs({ACTION: actions})[ACTION]


def top_k_first_on_ties(values: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` largest of ``values`` (N, B) along dim 0 and their indices (k, B), equal values in index order.

    ``topk`` leaves the order of ties to the implementation (and ONNX has no stable sort), so an
    exported planner could pick other elites than the eager one where values tie (an untrained model's
    zero reward and Q heads tie every plan). The rank of value i is the number of values above it plus
    the number of equal ones before it: O(N^2 B) comparisons, small beside the rollouts."""
    n = values.shape[0]
    order = torch.arange(n, device=values.device)
    above = values.unsqueeze(0) > values.unsqueeze(1)  # [i, j]: value j above value i
    tied_before = (values.unsqueeze(0) == values.unsqueeze(1)) & (order[None, :] < order[:, None])[..., None]
    rank = (above | tied_before).sum(1)  # (N, B), a permutation of 0..N-1 in each column
    slots = torch.arange(k, device=values.device)[:, None, None]
    index = (rank.unsqueeze(0) == slots).float().argmax(1)  # (k, B): the value ranked r in row r
    return values.gather(0, index), index


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
