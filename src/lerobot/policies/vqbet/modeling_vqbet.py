"""VQ-BeT policy: normalisation, observation history, action queue and the two training phases.

Lee et al. 2024, "Behavior Generation with Latent Actions" (https://arxiv.org/abs/2403.03181). The
network is in ``network.py`` (tokens, GPT, heads), ``gpt.py`` and ``vqvae.py`` (the action
tokenizer). Shapes of a training batch (B batch, S = n_obs_steps)::

    observation.state             (B, S, state_dim)
    observation.images.<cam>      (B, S, 3, H, W)        floats in [0, 1] (zero or more cameras)
    observation.environment_state (B, S, env_dim)        (optional; joins the state token)
    action                        (B, S + n_action_pred_token + action_chunk_size - 2, A)

``forward`` trains the tokenizer alone (L1 reconstruction of every action_chunk_size window of the
sample's actions, plus the codebooks' commitment loss) until it has run ``n_vqvae_training_steps``
times in training mode, then freezes it and trains the rest (``network.VQBeTModel.compute_loss``).
The count lives in the ``optimized_steps`` buffer, so a resumed run switches at the same step; it is
this library's addition to the state dict, optional when loading (LeRobot checkpoints lack it, and
LeRobot's loader ignores it).
"""

from __future__ import annotations

import warnings
from collections import deque
from typing import Any

import torch
from torch import Tensor

from lerobot.configs.types import ACTION
from lerobot.policies.export_graph import GraphInput, PolicyGraph
from lerobot.policies.observation_history import EncodedHistory, is_full_history
from lerobot.policies.pretrained import PolicyAction, PreTrainedPolicy, inference_step
from lerobot.policies.vqbet.configuration_vqbet import VQBeTConfig
from lerobot.policies.vqbet.network import NUM_RVQ_LAYERS, VQBeTModel


class VQBeTPolicy(PreTrainedPolicy):
    """VQ-BeT with normalisation, an ``n_obs_steps`` observation history and an action queue.

    ``select_action`` keeps the last ``n_obs_steps`` observations (the first one after ``reset``
    fills the history) and, when its queue is empty, predicts a chunk of ``action_chunk_size``
    actions and queues it. Each frame's tokens are computed once and reused while the frame stays in
    the history: the ResNet is most of a batch-1 prediction's cost.
    """

    config_class = VQBeTConfig
    name = "vqbet"
    ddp_find_unused_parameters = True  # the tokenizer phase trains the VQ-VAE alone, leaving the GPT unused
    optional_weight_keys = frozenset({"vqbet.action_head.vqvae_model.optimized_steps"})

    def __init__(self, config: VQBeTConfig, dataset_stats: dict[str, dict[str, Any]] | None = None):
        super().__init__(config, dataset_stats)
        self.vqbet = VQBeTModel(config)
        self.reset()

    def reset(self) -> None:
        self._history = EncodedHistory(self.config.n_obs_steps)
        self._action_queue: deque[Tensor] = deque(maxlen=self.config.action_chunk_size)

    def get_optim_params(self) -> list[dict[str, Any]]:
        """Three groups: everything the GPT phase trains at the preset's weight decay (the GPT's weight
        matrices, the camera encoder, projectors, action token and heads); the tokenizer with its own lr
        and weight decay; the GPT's biases, norms and positional embeddings without weight decay."""
        cfg = self.config
        tokenizer = list(self.vqbet.action_head.vqvae_model.parameters())
        decay, no_decay = self.vqbet.policy.decay_groups()
        elsewhere = {id(p) for p in [*tokenizer, *self.vqbet.policy.parameters()]}
        rest = [p for p in self.vqbet.parameters() if id(p) not in elsewhere]
        return [
            {"params": decay + rest},
            {
                "params": tokenizer,
                "lr": cfg.optimizer_vqvae_lr,
                "weight_decay": cfg.optimizer_vqvae_weight_decay,
            },
            {"params": no_decay, "weight_decay": 0.0},
        ]

    # ---- inference ------------------------------------------------------------------------------
    @inference_step
    def predict_action_chunk(
        self, observation: dict[str, Any], generator: torch.Generator | None = None
    ) -> Tensor:
        """Raw observation -> (B, action_chunk_size, A) actions in robot units, from the current step.

        A single frame per feature ``(B, ...)`` joins the observation history (as in
        ``select_action``); a full history ``(B, n_obs_steps, ...)`` is used as given.
        ``generator``: the code draws are uniforms from it (:meth:`VQBeTGraph.draw_inputs`), so an
        export given the same draws acts the same; without it they come from ``torch.multinomial``.
        """
        obs = self.prepare_observation(observation)
        cfg = self.config
        if is_full_history(obs, cfg.input_features):
            self.check_features(obs, cfg.input_features, time_steps=cfg.n_obs_steps)
            tokens = self.vqbet.observation_tokens(self.normalize_inputs(obs))
        else:
            self._push_observation(obs)
            tokens = self._history_tokens()
        uniforms = None
        if generator is not None and not cfg.greedy_decoding:
            uniforms = code_uniforms(cfg, tokens.shape[0], generator).to(tokens.device)
        return self.unnormalize_outputs({ACTION: self._rollout(tokens, uniforms)})[ACTION]

    @inference_step
    def select_action(self, observation: dict[str, Any]) -> PolicyAction:
        """Raw observation -> ``{"action": (B, A)}`` in robot units for this control step."""
        self._push_observation(self.prepare_observation(observation))
        if not self._action_queue:
            self._action_queue.extend(self._rollout(self._history_tokens()).transpose(0, 1))
        action = self._action_queue.popleft()
        return PolicyAction(action=self.unnormalize_outputs({ACTION: action})[ACTION])

    def _rollout(self, tokens: Tensor, uniforms: Tensor | None = None) -> Tensor:
        tokenizer = self.vqbet.action_head.vqvae_model
        if not bool(tokenizer.discretized) and not getattr(self, "_warned", False):
            self._warned = True
            warnings.warn(
                f"VQ-BeT's action tokenizer is still untrained ({int(tokenizer.optimized_steps)} of "
                f"n_vqvae_training_steps={self.config.n_vqvae_training_steps} steps): actions predicted "
                "before the GPT phase are meaningless.",
                stacklevel=4,
            )
        return self.vqbet.rollout(tokens, uniforms)

    def _export_graph(self, camera_images: bool, draws: str, history: bool) -> VQBeTGraph:
        return VQBeTGraph(self, camera_images, draws, history)

    def _push_observation(self, obs: dict[str, Tensor]) -> None:
        """Append one normalised frame to the history (not tokenised yet: it may never be needed)."""
        self.check_features(obs, self.config.input_features)
        self._history.push(self.normalize_inputs(obs), self.config.input_features)

    def _history_tokens(self) -> Tensor:
        """(B, n_obs_steps, tokens, D) of the history, computing only the new frames' tokens."""
        return torch.stack(self._history.encodings(self.vqbet.observation_tokens), dim=1)

    # ---- training -------------------------------------------------------------------------------
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Raw training batch -> ``{"loss": scalar, ...metrics}`` of the current phase.

        Each call in training mode with autograd on counts as one step of the tokenizer phase.
        """
        cfg = self.config
        self.check_features(batch, cfg.input_features, time_steps=cfg.n_obs_steps)
        self.check_features(batch, cfg.output_features, time_steps=len(cfg.action_delta_indices))
        batch = self.normalize_targets(self.normalize_inputs(batch))
        tokenizer = self.vqbet.action_head.vqvae_model
        self._end_tokenizer_phase_when_due()
        if bool(tokenizer.discretized):
            tokenizer.requires_grad_(False)  # only now: the last tokenizer step's backward still needed it
            loss, metrics = self.vqbet.compute_loss(batch)
            return {"loss": loss, **metrics}
        windows = batch[ACTION].unfold(1, cfg.action_chunk_size, 1).transpose(-1, -2)  # (B, n, W, A)
        loss, metrics = tokenizer.loss(windows.flatten(0, 1))
        if self.training and torch.is_grad_enabled():
            tokenizer.optimized_steps += 1
            self._end_tokenizer_phase_when_due()
        return {"loss": loss, **metrics}

    def _end_tokenizer_phase_when_due(self) -> None:
        """Mark the tokenizer trained (codebooks frozen) once it has run n_vqvae_training_steps steps."""
        tokenizer = self.vqbet.action_head.vqvae_model
        if int(tokenizer.optimized_steps) >= self.config.n_vqvae_training_steps:
            tokenizer.discretized.fill_(True)
            tokenizer.vq_layer.freeze_codebook.fill_(True)


def code_uniforms(config: VQBeTConfig, batch_size: int, generator: torch.Generator | None) -> Tensor:
    """(B, Q, 2) uniform draws in [0, 1): one per query token and code layer (inverse-CDF code draws)."""
    return torch.rand((batch_size, config.n_query_tokens, NUM_RVQ_LAYERS), generator=generator)


class VQBeTGraph(PolicyGraph):
    """Raw observation history (+ the code draws) -> (B, action_chunk_size, A) in robot units.

    Observation inputs are (B, n_obs_steps, ...) (``history=False``: the current frame (B, ...) stands
    for the whole history). Unless ``greedy_decoding`` (the deterministic mode: the most probable
    codes), ``draws="input"`` adds ``code_uniforms`` (B, Q, 2): uniform [0, 1) draws, one per query
    token and code layer, each code the inverse CDF of its softmax at that draw.
    """

    def __init__(self, policy: VQBeTPolicy, camera_images: bool, draws: str, history: bool):
        super().__init__(camera_images, draws)
        cfg = policy.config
        self.config = cfg
        self.normalize_inputs, self.vqbet = policy.normalize_inputs, policy.vqbet
        self.unnormalize_outputs = policy.unnormalize_outputs
        self.history = cfg.n_obs_steps if history else None
        self.cameras = set(cfg.image_features)
        self.observations = [
            self.observation_input(n, ft, self.history) for n, ft in cfg.input_features.items()
        ]
        self.inputs = list(self.observations)
        self.sampled = not cfg.greedy_decoding
        if self.sampled and draws == "input":
            shape = (cfg.n_query_tokens, NUM_RVQ_LAYERS)
            self.inputs.append(GraphInput("code_uniforms", shape, torch.float32, random=True, uniform=True))
        self.output = GraphInput(ACTION, (cfg.action_chunk_size, cfg.action_feature.shape[0]), torch.float32)
        if not self.sampled:
            self.random_draws = "none: greedy_decoding takes the most probable codes (the deterministic mode)"
        else:
            where = (
                "inputs (uniform in [0, 1), inverse CDF)" if draws == "input" else "drawn inside the model"
            )
            self.random_draws = f"the primary and secondary code of each query token: {where}"

    def draw_inputs(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        """The code uniforms, as ``predict_action_chunk(obs, generator=...)`` draws them."""
        return (code_uniforms(self.config, batch_size, generator),) if self.sampled else ()

    def forward(self, *inputs: Tensor) -> Tensor:
        batch = self.observation_batch(inputs, self.config.n_obs_steps)
        tokens = self.vqbet.observation_tokens(self.normalize_inputs(batch))
        uniforms = None
        if self.sampled:
            if self.draws == "input":
                uniforms = inputs[len(self.observations)]
            else:
                uniforms = torch.rand(
                    (tokens.shape[0], self.config.n_query_tokens, NUM_RVQ_LAYERS), device=tokens.device
                )
        actions = self.vqbet.rollout(tokens, uniforms)
        return self.unnormalize_outputs({ACTION: actions})[ACTION]
