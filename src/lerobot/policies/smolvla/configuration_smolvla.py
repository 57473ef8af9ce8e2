"""SmolVLA configuration (Shukor et al. 2025, "SmolVLA: A Vision-Language-Action Model for Affordable
and Efficient Robotics", https://arxiv.org/abs/2506.01844).

Field names and defaults are LeRobot 0.6's, so ``config.json`` files (``lerobot/smolvla_base`` and
fine-tuned checkpoints) mean the same policy in both libraries. ``vlm_model_name`` names the SmolVLM2
backbone: a Hub id or a folder (inside a checkpoint, relative to it) holding the backbone's
``config.json`` and its processor/tokenizer; its weights come from ``model.safetensors`` unless
``load_vlm_weights`` asks for the backbone's own pretrained weights (starting a new policy from the VLM).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.policies.vla_config import FlowVLAPresets

ATTENTION_MODES = ("cross_attn", "self_attn")
EMPTY_CAMERA = "observation.images.empty_camera_{}"


@PreTrainedConfig.register_subclass("smolvla")
@dataclass
class SmolVLAConfig(FlowVLAPresets, PreTrainedConfig):
    """SmolVLM2 (truncated) + a narrower action expert trained by flow matching."""

    # Input / output structure
    chunk_size: int = 50
    """Actions predicted per inference."""
    n_action_steps: int = 50
    """Actions executed from each chunk before predicting again (<= chunk_size)."""
    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )
    """How each feature type is normalised (images go in raw, the model scales them to [-1, 1])."""
    max_state_dim: int = 32
    """State vectors are zero-padded to this size (one network for robots of different sizes)."""
    max_action_dim: int = 32
    """Action vectors are zero-padded to this size; the padded entries are not in the loss."""
    resize_imgs_with_padding: tuple[int, int] | None = (512, 512)
    """Images are resized keeping their aspect and padded (left/top) to this (height, width)."""
    empty_cameras: int = 0
    """Extra all-padding camera slots (masked out), for checkpoints trained with more cameras."""
    adapt_to_pi_aloha: bool = False
    """Convert Aloha joint/gripper spaces to the π0 internal ones (not supported here; must be False)."""
    use_delta_joint_actions_aloha: bool = False
    """Aloha delta joint actions (not supported here; must be False)."""

    # Language
    tokenizer_max_length: int = 48
    """Task tokens kept (longer instructions are truncated)."""
    pad_language_to: str = "longest"
    """"longest" (pad to the batch's longest task) or "max_length" (always tokenizer_max_length)."""

    # Decoding
    num_steps: int = 10
    """Euler steps integrating the flow from noise (t=1) to actions (t=0)."""
    use_cache: bool = True
    """Compute the prefix (images, task, state) keys/values once per chunk and reuse them every step."""

    # Finetuning settings
    freeze_vision_encoder: bool = True
    """Keep the SmolVLM vision tower frozen (and in eval mode) during training."""
    train_expert_only: bool = True
    """Train only the action expert and projections; the whole VLM stays frozen."""
    train_state_proj: bool = True
    """Train the state projection (also when train_expert_only)."""

    # Optimiser and schedule (LeRobot's SmolVLA preset)
    optimizer_lr: float = 1e-4
    optimizer_betas: tuple[float, float] = (0.9, 0.95)
    optimizer_eps: float = 1e-8
    optimizer_weight_decay: float = 1e-10
    optimizer_grad_clip_norm: float = 10
    scheduler_warmup_steps: int = 1_000
    scheduler_decay_steps: int = 30_000
    scheduler_decay_lr: float = 2.5e-6

    # Architecture
    vlm_model_name: str = "HuggingFaceTB/SmolVLM2-500M-Video-Instruct"
    """The SmolVLM backbone: Hub id or folder (config.json + processor/tokenizer files)."""
    load_vlm_weights: bool = False
    """Load the backbone's own pretrained weights from vlm_model_name (a new policy from the VLM);
    False: the checkpoint's model.safetensors provides them (or they start random)."""
    add_image_special_tokens: bool = False
    """Surround each camera's tokens with SmolVLM's <fake_token_around_image><global-img> markers."""
    attention_mode: str = "cross_attn"
    """"cross_attn": expert layers alternate cross-attention to the VLM with self-attention;
    "self_attn": every expert layer attends jointly with the VLM tokens."""
    prefix_length: int = -1
    """Pad the prefix (images, task, state) to this many tokens (-1: no padding)."""
    num_expert_layers: int = -1
    """Expert layers (-1: as many as VLM layers); must divide num_vlm_layers."""
    num_vlm_layers: int = 16
    """SmolVLM text layers kept (the rest are dropped)."""
    self_attn_every_n_layers: int = 2
    """In cross_attn mode, every n-th expert layer (0, n, 2n...) self-attends instead."""
    expert_width_multiplier: float = 0.75
    """Expert hidden size = VLM hidden size x this."""
    min_period: float = 4e-3
    """Shortest period of the flow time's sinusoidal embedding."""
    max_period: float = 4.0
    """Longest period of the flow time's sinusoidal embedding."""

    # Real-time chunking is used at deployment; compilation is carried for round trips with LeRobot only.
    rtc_config: RTCConfig | None = None
    """Real-time chunking at deployment (:mod:`lerobot.policies.rtc`); null: plain sampling."""
    compile_model: bool = False
    """LeRobot's torch.compile switch (kept, not used by this class)."""
    compile_mode: str = "max-autotune"
    """LeRobot's torch.compile mode (kept, not used by this class)."""

    missing_cameras_allowed: ClassVar[bool] = True  # absent cameras are padded (one must be there)

    def __post_init__(self) -> None:
        super().__post_init__()
        for i in range(self.empty_cameras):  # padding slots, listed as features as LeRobot lists them
            self.input_features.setdefault(
                EMPTY_CAMERA.format(i), PolicyFeature(FeatureType.VISUAL, (3, 480, 640))
            )
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"n_action_steps={self.n_action_steps} exceeds chunk_size={self.chunk_size}.")
        if self.n_obs_steps != 1:
            raise ValueError(f"SmolVLA uses one observation frame (n_obs_steps=1), got {self.n_obs_steps}.")
        if self.attention_mode not in ATTENTION_MODES:
            raise ValueError(f"attention_mode must be one of {ATTENTION_MODES}, got {self.attention_mode!r}.")
        if self.pad_language_to not in ("longest", "max_length"):
            raise ValueError(
                f"pad_language_to must be 'longest' or 'max_length', got {self.pad_language_to!r}."
            )
        if self.adapt_to_pi_aloha or self.use_delta_joint_actions_aloha:
            raise NotImplementedError(
                "adapt_to_pi_aloha / use_delta_joint_actions_aloha are not supported: set both to false."
            )
        if self.resize_imgs_with_padding is not None:
            self.resize_imgs_with_padding = tuple(int(v) for v in self.resize_imgs_with_padding)
        self.optimizer_betas = tuple(float(b) for b in self.optimizer_betas)
        if isinstance(self.rtc_config, dict):
            self.rtc_config = RTCConfig(**self.rtc_config)

    def validate_features(self) -> None:
        if not self.image_features and self.empty_cameras == 0:
            raise ValueError(
                "SmolVLA needs at least one camera (observation.images.<name>) among its inputs (or empty_cameras "
                f"> 0); got {sorted(self.input_features)}."
            )
        if self.action_feature is None:
            raise ValueError(f"SmolVLA needs an 'action' output feature; got {sorted(self.output_features)}.")
        for name, ft in {**self.input_features, **self.output_features}.items():
            limit = {FeatureType.STATE: self.max_state_dim, FeatureType.ACTION: self.max_action_dim}.get(
                ft.type
            )
            if limit is not None and ft.shape[-1] > limit:
                kind = "max_state_dim" if ft.type is FeatureType.STATE else "max_action_dim"
                raise ValueError(f"{name} has {ft.shape[-1]} values but {kind}={limit}: raise {kind}.")
