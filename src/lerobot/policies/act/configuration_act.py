"""ACT configuration (Zhao et al. 2023, "Learning Fine-Grained Bimanual Manipulation with Low-Cost Hardware").

Two spellings build the same config::

    ACTConfig(input_features={"observation.state": PolicyFeature(FeatureType.STATE, (14,)), ...},
              output_features={"action": PolicyFeature(FeatureType.ACTION, (14,))}, optimizer_lr=1e-5)
    ACTConfig(input_shapes={"observation.images.top": [3, 96, 96], "observation.state": [14]},
              output_shapes={"action": [14]}, lr=1e-5, weight_decay=1e-4)   # the user guide's

Defaults are LeRobot 0.6's, so a ``config.json`` written by either library means the same policy.
The EMA fields (:class:`~lerobot.policies.ema.EMAFields`, ``--policy.use_ema=true``) are this library's
addition, written to ``config.json`` only when on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lerobot.configs.types import NormalizationMode
from lerobot.optim.optimizers import AdamWConfig
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.ema import EMAFields


@PreTrainedConfig.register_subclass("act")
@dataclass
class ACTConfig(EMAFields, PreTrainedConfig):
    """Action Chunking Transformer: ResNet + transformer encoder/decoder, trained as a CVAE."""

    # Input / output structure
    chunk_size: int = 100
    """Actions predicted per forward pass (the chunk)."""
    n_action_steps: int = 100
    """Actions executed from each chunk before predicting again (<= chunk_size)."""
    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )
    """How each feature type is normalised."""

    # Vision backbone
    vision_backbone: str = "resnet18"
    """torchvision ResNet name."""
    pretrained_backbone_weights: str | None = "ResNet18_Weights.IMAGENET1K_V1"
    """Local .pth/.safetensors file, a torchvision weights name, or None (random)."""
    replace_final_stride_with_dilation: bool = False
    """Dilate ResNet's last stage instead of striding (2x finer feature map)."""

    # Transformer
    pre_norm: bool = False
    """LayerNorm before (True) or after (False, as in the paper) each sub-block."""
    dim_model: int = 512
    """Transformer hidden size."""
    n_heads: int = 8
    """Attention heads."""
    dim_feedforward: int = 3200
    """Hidden size of the feed-forward blocks."""
    feedforward_activation: str = "relu"
    """relu, gelu or glu."""
    n_encoder_layers: int = 4
    """Transformer encoder layers."""
    n_decoder_layers: int = 1
    """Transformer decoder layers (the original code only used the first of its 7)."""

    # CVAE
    use_vae: bool = True
    """Train with the VAE objective (latent from the action chunk); zero latent at inference."""
    latent_dim: int = 32
    """Size of the latent z."""
    n_vae_encoder_layers: int = 4
    """Layers of the VAE's transformer encoder."""

    # Inference
    temporal_ensemble_coeff: float | None = None
    """If set, average overlapping chunks with weights exp(-coeff * i) (needs n_action_steps=1)."""

    # Training
    dropout: float = 0.1
    """Dropout in the transformer layers."""
    kl_weight: float = 10.0
    """Weight of the KL term in the loss (loss = L1 + kl_weight * KL)."""
    optimizer_lr: float = 1e-5
    """AdamW learning rate (guide: ``lr``)."""
    optimizer_weight_decay: float = 1e-4
    """AdamW weight decay (guide: ``weight_decay``)."""
    optimizer_lr_backbone: float = 1e-5
    """Learning rate of the vision backbone's parameters."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.vision_backbone.startswith("resnet"):
            raise ValueError(f"vision_backbone must be a ResNet variant, got {self.vision_backbone!r}.")
        if self.temporal_ensemble_coeff is not None and self.n_action_steps > 1:
            raise ValueError(
                "Temporal ensembling predicts a new chunk every step: set n_action_steps=1 "
                f"(got {self.n_action_steps})."
            )
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"n_action_steps={self.n_action_steps} exceeds chunk_size={self.chunk_size}.")
        if self.n_obs_steps != 1:
            raise ValueError(f"ACT uses one observation frame (n_obs_steps=1), got {self.n_obs_steps}.")
        if self.feedforward_activation not in ("relu", "gelu", "glu"):
            raise ValueError(
                f"feedforward_activation must be relu, gelu or glu, got {self.feedforward_activation!r}."
            )

    def validate_features(self) -> None:
        if not self.image_features and self.env_state_feature is None:
            raise ValueError(
                "ACT needs at least one camera (observation.images.<name>) or observation.environment_state "
                f"among its inputs; got {sorted(self.input_features)}."
            )
        if self.action_feature is None:
            raise ValueError(f"ACT needs an 'action' output feature; got {sorted(self.output_features)}.")

    @property
    def observation_delta_indices(self) -> None:
        return None

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.chunk_size))

    def get_optimizer_preset(self) -> AdamWConfig:
        return self.adam_preset_from_fields(AdamWConfig)
