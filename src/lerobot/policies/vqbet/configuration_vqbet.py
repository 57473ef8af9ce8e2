"""VQ-BeT configuration (Lee et al. 2024, "Behavior Generation with Latent Actions",
https://arxiv.org/abs/2403.03181).

Field names and defaults are LeRobot 0.6's (its PushT image recipe), so a ``config.json`` written by
either library builds the same policy. Time layout of one training sample (``n_obs_steps=5``,
``n_action_pred_token=3``, ``action_chunk_size=5``)::

    observations at t-4 .. t                       (observation_delta_indices = [-4, ..., 0])
    actions      at t-4 .. t+6                     (action_delta_indices: n_obs_steps + n_action_pred_token
                                                    + action_chunk_size - 2 = 11 steps)
    predicted    one chunk of action_chunk_size per query token: the observation steps' action tokens
                 and the n_action_pred_token - 1 future ones; the chunk at step t is executed.

Training has two phases in one run: the first ``n_vqvae_training_steps`` training steps fit the
residual-VQ action tokenizer alone (``optimizer_vqvae_lr``), then it is frozen and the GPT with its
code and offset heads trains (``optimizer_lr``, warm-up then cosine decay: :class:`VQBeTSchedule`).

``greedy_decoding`` is this library's addition (LeRobot always samples the codes); it is written to
``config.json`` only when on, so default checkpoints stay loadable by LeRobot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lerobot.configs.types import NormalizationMode
from lerobot.optim.optimizers import AdamConfig
from lerobot.optim.schedulers import SCHEDULE_PRESETS, CosineSchedule
from lerobot.policies.config import PreTrainedConfig

OUR_FIELDS = ("greedy_decoding",)


@SCHEDULE_PRESETS.register("vqbet")
@dataclass(frozen=True)
class VQBeTSchedule(CosineSchedule):
    """Constant lr while the action tokenizer trains, then warm-up and cosine decay for the GPT phase.

    ``num_decay_steps`` counts from the start of the run (it defaults to ``--steps``), so the GPT
    phase decays over ``num_decay_steps - num_vqvae_training_steps`` steps.
    """

    num_vqvae_training_steps: int = 0
    """Steps of the first (tokenizer) phase, at the base learning rates."""

    def lr_factor(self) -> Callable[[int], float]:
        vq = int(self.num_vqvae_training_steps)
        decay = None if self.num_decay_steps is None else max(1, int(self.num_decay_steps) - vq)
        gpt = CosineSchedule(
            num_warmup_steps=self.num_warmup_steps, num_decay_steps=decay, min_lr_ratio=self.min_lr_ratio
        ).lr_factor()
        return lambda step: 1.0 if step < vq else gpt(step - vq)


@PreTrainedConfig.register_subclass("vqbet")
@dataclass
class VQBeTConfig(PreTrainedConfig):
    """Residual-VQ action tokens predicted by a GPT over observation and action-query tokens."""

    # Input / output structure
    n_obs_steps: int = 5
    """Observation frames (the current one and those before it) the GPT sees."""
    n_action_pred_token: int = 3
    """Action-query tokens predicting the current and future chunks (the current one is executed)."""
    action_chunk_size: int = 5
    """Actions per predicted chunk; all are executed before the next prediction."""
    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.MIN_MAX,
            "ENV": NormalizationMode.MIN_MAX,
            "ACTION": NormalizationMode.MIN_MAX,
        }
    )
    """How each feature type is normalised. ``ENV`` is our addition (environment state, e.g. PushT's
    keypoints in pixels, joins the state token); checkpoints carry their own mapping."""

    # Vision
    vision_backbone: str = "resnet18"
    """torchvision ResNet name."""
    crop_shape: tuple[int, int] | None = (84, 84)
    """(H, W) crop: random while training (if crop_is_random), centred at inference. None: no crop."""
    crop_is_random: bool = True
    """Random crop while training (data augmentation); the centre crop is used otherwise."""
    pretrained_backbone_weights: str | None = None
    """Local .pth/.safetensors file, a torchvision weights name, or None (random)."""
    use_group_norm: bool = True
    """Replace the backbone's batch norm by group norm (needs pretrained_backbone_weights=None)."""
    spatial_softmax_num_keypoints: int = 32
    """Keypoints the spatial softmax extracts from the backbone's feature map."""

    # Residual VQ action tokenizer
    n_vqvae_training_steps: int = 20000
    """Training steps of the first phase (tokenizer only); the tokenizer is frozen afterwards. Counted
    in training-mode forward calls, so with gradient accumulation each micro-batch counts, as in LeRobot."""
    vqvae_n_embed: int = 16
    """Codes per residual-VQ layer (two layers: the primary and the secondary code)."""
    vqvae_embedding_dim: int = 256
    """Size of the latent an action chunk is encoded to and of each code vector."""
    vqvae_enc_hidden_dim: int = 128
    """Hidden width of the tokenizer's encoder and decoder MLPs."""

    # GPT
    gpt_block_size: int = 500
    """Longest token sequence (positional embeddings, causal mask)."""
    gpt_input_dim: int = 512
    """Size of the observation and action-query tokens fed to the GPT."""
    gpt_output_dim: int = 512
    """Size of the GPT's output features, read by the code and offset heads."""
    gpt_n_layer: int = 8
    """Transformer blocks."""
    gpt_n_head: int = 8
    """Attention heads."""
    gpt_hidden_dim: int = 512
    """Transformer width (the MLPs are 4x wider)."""
    dropout: float = 0.1
    """Dropout of the GPT's embeddings, attention and residual branches."""

    # Loss and sampling
    offset_loss_weight: float = 10000.0
    """Weight of the L1 loss on the predicted actions (decoded codes plus offsets)."""
    primary_code_loss_weight: float = 5.0
    """Weight of the focal loss on the first residual-VQ layer's code."""
    secondary_code_loss_weight: float = 0.5
    """Weight of the focal loss on the second layer's code."""
    bet_softmax_temperature: float = 0.1
    """Temperature of the softmax the codes are sampled from."""
    sequentially_select: bool = False
    """Predict the secondary code conditioned on the primary one (two heads) instead of both at once."""
    greedy_decoding: bool = False
    """Take the most probable code instead of sampling one (this library's addition): deterministic rollouts."""

    # Training presets
    optimizer_lr: float = 1e-4
    """Adam learning rate of the GPT phase (guide: ``lr``)."""
    optimizer_betas: tuple[float, float] = (0.95, 0.999)
    """Adam betas."""
    optimizer_eps: float = 1e-8
    """Adam epsilon."""
    optimizer_weight_decay: float = 1e-6
    """Weight decay of the GPT phase's weight matrices (biases, norms, embeddings: none)."""
    optimizer_vqvae_lr: float = 1e-3
    """Learning rate of the action tokenizer (first phase)."""
    optimizer_vqvae_weight_decay: float = 1e-4
    """Weight decay of the action tokenizer."""
    scheduler_warmup_steps: int = 500
    """Linear warm-up steps at the start of the GPT phase."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.crop_shape is not None:
            self.crop_shape = tuple(int(s) for s in self.crop_shape)
        self.optimizer_betas = tuple(float(b) for b in self.optimizer_betas)
        if not self.vision_backbone.startswith("resnet"):
            raise ValueError(f"vision_backbone must be a torchvision ResNet, got {self.vision_backbone!r}.")
        if self.use_group_norm and self.pretrained_backbone_weights is not None:
            raise ValueError(
                "use_group_norm=True replaces the batch norms that pretrained_backbone_weights were trained "
                "with: set pretrained_backbone_weights=None, or use_group_norm=False."
            )
        for name in ("n_obs_steps", "n_action_pred_token", "action_chunk_size", "vqvae_n_embed"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if self.gpt_hidden_dim % self.gpt_n_head:
            raise ValueError(
                f"gpt_hidden_dim={self.gpt_hidden_dim} must be a multiple of gpt_n_head={self.gpt_n_head}."
            )
        if self.n_vqvae_training_steps < 0:
            raise ValueError(f"n_vqvae_training_steps must be >= 0, got {self.n_vqvae_training_steps}.")

    # ---- what the encoder and data loader read ---------------------------------------------------
    @property
    def resize_shape(self) -> None:
        """The camera encoder shared with Diffusion Policy reads it; VQ-BeT never resizes."""
        return None

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(H, W) of the camera images; None without cameras."""
        if not self.image_features:
            return None
        return tuple(next(iter(self.image_features.values())).shape[1:])

    @property
    def crop_size(self) -> tuple[int, int] | None:
        return self.crop_shape

    @property
    def tokens_per_step(self) -> int:
        """Cameras, the (state + environment state) token and the action-query token."""
        return len(self.image_features) + 2

    @property
    def n_query_tokens(self) -> int:
        """Chunks predicted per forward pass: one per observation step, plus the future queries."""
        return self.n_obs_steps + self.n_action_pred_token - 1

    def validate_features(self) -> None:
        if self.action_feature is None:
            raise ValueError(f"VQ-BeT needs an 'action' output feature; got {sorted(self.output_features)}.")
        if self.robot_state_feature is None:
            raise ValueError(
                f"VQ-BeT needs observation.state among its inputs; got {sorted(self.input_features)}."
            )
        shapes = {name: ft.shape for name, ft in self.image_features.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"All cameras must share one shape (resize them first); got {shapes}.")
        crop, size = self.crop_size, self.image_size
        if crop is not None and size is not None and (crop[0] > size[0] or crop[1] > size[1]):
            raise ValueError(f"crop_shape={list(crop)} does not fit in the {list(size)} camera images.")
        tokens = self.n_obs_steps * self.tokens_per_step + self.n_action_pred_token - 1
        if tokens > self.gpt_block_size:
            raise ValueError(
                f"The GPT sees {tokens} tokens (n_obs_steps * (cameras + 2) + n_action_pred_token - 1) but "
                f"gpt_block_size={self.gpt_block_size}: raise gpt_block_size or lower n_obs_steps."
            )

    @property
    def observation_delta_indices(self) -> list[int]:
        return list(range(1 - self.n_obs_steps, 1))

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(1 - self.n_obs_steps, self.n_action_pred_token + self.action_chunk_size - 1))

    def get_optimizer_preset(self) -> AdamConfig:
        """Adam; the policy's parameter groups give the tokenizer its own lr and weight decay."""
        return self.adam_preset_from_fields(AdamConfig)

    def get_scheduler_preset(self) -> VQBeTSchedule:
        return VQBeTSchedule(
            num_warmup_steps=self.scheduler_warmup_steps,
            num_vqvae_training_steps=self.n_vqvae_training_steps,
        )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if not self.greedy_decoding:
            for name in OUR_FIELDS:
                out.pop(name)
        return out
