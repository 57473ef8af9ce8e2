"""Action Chunking Transformer (ACT), readable top to bottom.

Zhao et al. 2023, "Learning Fine-Grained Bimanual Manipulation with Low-Cost Hardware"
(https://arxiv.org/abs/2304.13705). Same computation and parameter names as LeRobot's ACT, so
LeRobot checkpoints load here and give the same actions.

Shapes (B batch, T = chunk_size, A action dim, D = dim_model)::

    observation.state           (B, state_dim)
    observation.images.<cam>    (B, 3, H, W) floats in [0, 1]      (one or more cameras)
    observation.environment_state (B, env_dim)                      (optional)
    action                      (B, T, A)      training target
    action_is_pad               (B, T) bool    padded steps past the episode end (optional)

Model::

    [cls, state, action_1..T] --VAE encoder--> (mu, log sigma^2) --sample--> z  (training; z = 0 at inference)
    [z, state, env, ResNet features of each camera] + position embeddings --encoder--> memory
    T learned queries --decoder(memory)--> action_head --> (B, T, A)

The network (:class:`~lerobot.policies.act.network.ACT`) lives in ``network.py``; this module wraps
it with normalisation, the loss and the action queue.

Loss = L1(actions, predicted) over non-padded steps + kl_weight * KL(N(mu, sigma) || N(0, 1)).
At run time ``select_action`` executes ``n_action_steps`` actions of each chunk from a queue, or --
with ``temporal_ensemble_coeff`` -- predicts every step and averages the overlapping chunks.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from lerobot.configs.types import ACTION
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.network import ACT
from lerobot.policies.export_graph import GraphInput, PolicyGraph
from lerobot.policies.pretrained import PolicyAction, PreTrainedPolicy, inference_step


class ACTPolicy(PreTrainedPolicy):
    """ACT with its normalisation and action queue: raw observations in, robot-unit actions out.

    With ``config.use_ema`` it keeps ``self.ema`` (an average of the weights, which the base class
    uses to act and save): a small dataset's checkpoints swing from one to the next, the average less.
    """

    config_class = ACTConfig
    name = "act"

    def __init__(self, config: ACTConfig, dataset_stats: dict[str, dict[str, Any]] | None = None):
        super().__init__(config, dataset_stats)
        self.model = ACT(config)
        self.ema = config.make_ema(self.model)
        self.temporal_ensembler = (
            ACTTemporalEnsembler(config.temporal_ensemble_coeff, config.chunk_size)
            if config.temporal_ensemble_coeff is not None
            else None
        )
        self.reset()

    def get_optim_params(self) -> list[dict[str, Any]]:
        """Two parameter groups: the backbone gets ``optimizer_lr_backbone``."""
        backbone, rest = [], []
        for name, param in self.named_parameters():
            if param.requires_grad:
                (backbone if name.startswith("model.backbone") else rest).append(param)
        return [{"params": rest}, {"params": backbone, "lr": self.config.optimizer_lr_backbone}]

    def reset(self) -> None:
        self._action_queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)
        if self.temporal_ensembler is not None:
            self.temporal_ensembler.reset()

    @inference_step
    def predict_action_chunk(self, observation: dict[str, Any]) -> Tensor:
        """Raw observation -> (B, chunk_size, A) actions in robot units."""
        batch = self.normalize_inputs(self._checked_observation(observation))
        actions = self.model(batch)[0]
        return self.unnormalize_outputs({ACTION: actions})[ACTION]

    @inference_step
    def select_action(self, observation: dict[str, Any]) -> PolicyAction:
        """Raw observation -> ``{"action": (B, A)}`` in robot units for this control step."""
        batch = self.normalize_inputs(self._checked_observation(observation))
        if self.temporal_ensembler is not None:
            action = self.temporal_ensembler.update(self.model(batch)[0])
        else:
            if not self._action_queue:
                chunk = self.model(batch)[0][:, : self.config.n_action_steps]  # (B, n, A), normalised
                self._action_queue.extend(chunk.transpose(0, 1))
            action = self._action_queue.popleft()
        return PolicyAction(action=self.unnormalize_outputs({ACTION: action})[ACTION])

    def _checked_observation(self, observation: dict[str, Any]) -> dict[str, Tensor]:
        obs = self.prepare_observation(observation)
        self.check_features(obs, self.config.input_features)
        return obs

    def _export_graph(self, camera_images: bool, draws: str, history: bool) -> ACTGraph:
        """No random inputs (the latent is zero at inference) and no history."""
        return ACTGraph(self, camera_images, draws)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Raw training batch -> ``{"loss": scalar, "l1_loss": float, "kld_loss": float}``."""
        batch = self.single_action_as_chunk(batch, self.config.chunk_size)
        self.check_features(batch, self.config.input_features)
        self.check_features(batch, self.config.output_features, time_steps=self.config.chunk_size)
        batch = self.normalize_targets(self.normalize_inputs(batch))
        actions_hat, (mu, log_sigma_x2) = self.model(batch)
        is_pad = batch.get("action_is_pad")
        if is_pad is None:
            is_pad = torch.zeros(actions_hat.shape[:2], dtype=torch.bool, device=actions_hat.device)
        l1 = F.l1_loss(batch[ACTION], actions_hat, reduction="none") * ~is_pad.unsqueeze(-1)
        l1_loss = l1.mean()
        output: dict[str, Any] = {"l1_loss": l1_loss.item()}
        loss = l1_loss
        if mu is not None:
            # KL(N(mu, sigma^2) || N(0, 1)), summed over latent dims, averaged over the batch.
            kld = (-0.5 * (1 + log_sigma_x2 - mu.pow(2) - log_sigma_x2.exp())).sum(-1).mean()
            output["kld_loss"] = kld.item()
            loss = l1_loss + self.config.kl_weight * kld
        output["loss"] = loss
        return output


class ACTGraph(PolicyGraph):
    """Raw observation (each input feature) -> (B, chunk_size, A) in robot units: ``predict_action_chunk``."""

    random_draws = "none: at inference ACT's latent is zero (its CVAE encoder samples only while training)"

    def __init__(self, policy: ACTPolicy, camera_images: bool, draws: str):
        super().__init__(camera_images, draws)
        cfg = policy.config
        self.normalize_inputs, self.model = policy.normalize_inputs, policy.model
        self.unnormalize_outputs = policy.unnormalize_outputs
        self.observations = [self.observation_input(n, ft) for n, ft in cfg.input_features.items()]
        self.inputs = list(self.observations)
        self.cameras = set(cfg.image_features)
        self.output = GraphInput(ACTION, (cfg.chunk_size, cfg.action_feature.shape[0]), torch.float32)

    def forward(self, *observation: Tensor) -> Tensor:
        actions = self.model(self.normalize_inputs(self.observation_batch(observation)))[0]
        return self.unnormalize_outputs({ACTION: actions})[ACTION]


class ACTTemporalEnsembler:
    """Average every chunk's prediction for the current step, weighting chunk i by exp(-coeff * i).

    i = 0 is the *oldest* prediction (coeff > 0 favours older ones, as in the ACT paper). Kept as a
    running weighted mean so each step costs O(chunk_size).
    """

    def __init__(self, temporal_ensemble_coeff: float, chunk_size: int):
        self.chunk_size = chunk_size
        self.weights = torch.exp(-temporal_ensemble_coeff * torch.arange(chunk_size))
        self.weights_cumsum = torch.cumsum(self.weights, dim=0)
        self.reset()

    def reset(self) -> None:
        self.ensembled_actions: Tensor | None = None  # (B, T, A) running means for steps t..t+T-1
        self.counts: Tensor | None = None  # (T, 1) how many chunks contributed to each step

    def update(self, actions: Tensor) -> Tensor:
        """Fold in a new (B, T, A) chunk; return the ensembled action (B, A) for the current step."""
        weights = self.weights.to(actions.device)
        cumsum = self.weights_cumsum.to(actions.device)
        if self.ensembled_actions is None:
            self.ensembled_actions = actions.clone()
            self.counts = torch.ones((self.chunk_size, 1), dtype=torch.long, device=actions.device)
        else:
            # Steps already in the ensemble gain the new chunk's prediction with the next weight.
            running = self.ensembled_actions * cumsum[self.counts - 1]
            running = running + actions[:, :-1] * weights[self.counts]
            self.ensembled_actions = running / cumsum[self.counts]
            self.counts = torch.clamp(self.counts + 1, max=self.chunk_size)
            # The chunk's last step is new.
            self.ensembled_actions = torch.cat([self.ensembled_actions, actions[:, -1:]], dim=1)
            self.counts = torch.cat([self.counts, torch.ones_like(self.counts[-1:])])
        action = self.ensembled_actions[:, 0]
        self.ensembled_actions, self.counts = self.ensembled_actions[:, 1:], self.counts[1:]
        return action
