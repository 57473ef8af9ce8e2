"""π0 configuration (Black et al. 2024, "π0: A Vision-Language-Action Flow Model for General Robot
Control", https://arxiv.org/abs/2410.24164).

Field names and defaults are LeRobot 0.6's, so a ``config.json`` written by either library builds the
same policy (``lerobot/pi0_base``)::

    PI0Config(input_features={...}, output_features={...})      # PaliGemma 3B + 300M expert
    PI0Config(..., variant_sizes={"vlm": {"width": 64, "depth": 2, ...}, ...})   # a tiny π0

The VLM is PaliGemma (SigLIP so400m vision tower + Gemma 2B), the action expert a smaller Gemma; both
are named by ``paligemma_variant`` / ``action_expert_variant``. ``variant_sizes`` (our one extra key,
absent or None in LeRobot's files) states other sizes for those names, which is how small models for
tests and laptops are written; only the keys it gives replace the named variant's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from lerobot.configs.types import NormalizationMode
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.policies.vla_config import FlowVLAPresets

# The Gemma sizes behind the variant names (PaliGemma's paper and checkpoints).
GEMMA_VARIANTS: dict[str, dict[str, int]] = {
    "gemma_300m": {
        "width": 1024,
        "depth": 18,
        "mlp_dim": 4096,
        "num_heads": 8,
        "num_kv_heads": 1,
        "head_dim": 256,
    },
    "gemma_2b": {
        "width": 2048,
        "depth": 18,
        "mlp_dim": 16_384,
        "num_heads": 8,
        "num_kv_heads": 1,
        "head_dim": 256,
    },
}
# SigLIP so400m/14 at 224 px, projected to the 2B Gemma's width.
SIGLIP_SO400M: dict[str, int] = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "patch_size": 14,
    "image_size": 224,
    "projection_dim": 2048,
}
PALIGEMMA_VOCAB_SIZE = 257_152
SIZE_SECTIONS = {
    "vlm": GEMMA_VARIANTS["gemma_2b"],
    "action_expert": GEMMA_VARIANTS["gemma_300m"],
    "vision": SIGLIP_SO400M,
}
DEFAULT_TOKENIZER = "google/paligemma-3b-pt-224"


@dataclass
class PaliGemmaVLAConfig(FlowVLAPresets, PreTrainedConfig):
    """The fields π0 and π0.5 share (LeRobot's configs of both have exactly these)."""

    paligemma_variant: str = "gemma_2b"
    """Size name of the VLM's language model (``gemma_300m`` or ``gemma_2b``)."""
    action_expert_variant: str = "gemma_300m"
    """Size name of the action expert (``gemma_300m`` or ``gemma_2b``)."""
    dtype: str = "float32"
    """Weights' dtype: ``float32`` or ``bfloat16`` (norms and embeddings stay float32)."""

    chunk_size: int = 50
    """Actions predicted per chunk."""
    n_action_steps: int = 50
    """Actions executed from each chunk before predicting again (<= chunk_size)."""
    max_state_dim: int = 32
    """State vectors are zero-padded to this size (the pretrained models' width)."""
    max_action_dim: int = 32
    """Actions are zero-padded to this size inside the model."""

    num_inference_steps: int = 10
    """Euler steps of the flow from t=1 (noise) to t=0 (actions)."""
    time_sampling_beta_alpha: float = 1.5
    """Training times t ~ Beta(alpha, beta) * scale + offset (the paper favours noisier times)."""
    time_sampling_beta_beta: float = 1.0
    """See time_sampling_beta_alpha."""
    time_sampling_scale: float = 0.999
    """See time_sampling_beta_alpha."""
    time_sampling_offset: float = 0.001
    """See time_sampling_beta_alpha."""
    min_period: float = 4e-3
    """Shortest period of the sinusoidal time embedding."""
    max_period: float = 4.0
    """Longest period of the sinusoidal time embedding."""

    use_relative_actions: bool = False
    """A LeRobot 0.6 key (actions relative to the state); only False is supported here."""
    relative_exclude_joints: list[str] = field(default_factory=lambda: ["gripper"])
    """A LeRobot 0.6 key, used with use_relative_actions."""
    action_feature_names: list[str] | None = None
    """A LeRobot 0.6 key, used with use_relative_actions."""
    rtc_config: RTCConfig | None = None
    """Real-time chunking at deployment (:mod:`lerobot.policies.rtc`); null: plain sampling."""

    image_resolution: tuple[int, int] = (224, 224)
    """Every camera is resized with padding to this (height, width); SigLIP's input size."""
    empty_cameras: int = 0
    """Extra all-padding camera slots (a checkpoint trained with more cameras than the robot has)."""

    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.MEAN_STD,
            "ACTION": NormalizationMode.MEAN_STD,
        }
    )
    """How each feature type is normalised."""

    gradient_checkpointing: bool = False
    """Recompute each transformer layer in the backward pass (less memory, ~30% slower)."""
    compile_model: bool = False
    """A LeRobot 0.6 key; torch.compile is not applied here."""
    compile_mode: str = "max-autotune"
    """A LeRobot 0.6 key, used with compile_model."""
    freeze_vision_encoder: bool = False
    """Keep SigLIP's weights fixed while training."""
    train_expert_only: bool = False
    """Train only the action expert and the action/state/time projections (PaliGemma frozen)."""

    optimizer_lr: float = 2.5e-5
    """AdamW peak learning rate."""
    optimizer_betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    optimizer_eps: float = 1e-8
    """AdamW epsilon."""
    optimizer_weight_decay: float = 0.01
    """AdamW weight decay."""
    optimizer_grad_clip_norm: float = 1.0
    """Gradient norm clip."""
    scheduler_warmup_steps: int = 1000
    """Linear warm-up steps of the cosine schedule."""
    scheduler_decay_steps: int = 30_000
    """Steps over which the lr decays to scheduler_decay_lr."""
    scheduler_decay_lr: float = 2.5e-6
    """Final learning rate."""

    tokenizer_max_length: int = 48
    """Prompt tokens (padded or truncated to this length)."""
    tokenizer_name: str | None = None
    """Tokenizer folder or Hub id for a new policy (None: PaliGemma's, ``google/paligemma-3b-pt-224``).
    Not written to config.json: checkpoints name their tokenizer in policy_preprocessor.json, as
    LeRobot's do, and a checkpoint's own tokenizer is used unless this is given."""
    variant_sizes: dict[str, Any] | None = None
    """Sizes replacing the named variants': ``{"vlm": {...}, "action_expert": {...}, "vision": {...},
    "vocab_size": int}`` (see the module docstring); None: the variants' real sizes."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.image_resolution = tuple(int(v) for v in self.image_resolution)
        self.optimizer_betas = tuple(float(b) for b in self.optimizer_betas)
        if isinstance(self.rtc_config, dict):
            self.rtc_config = RTCConfig(**self.rtc_config)
        for key in ("paligemma_variant", "action_expert_variant"):
            if getattr(self, key) not in GEMMA_VARIANTS:
                raise ValueError(
                    f"{type(self).__name__}.{key}={getattr(self, key)!r} is not a known Gemma variant; use one of "
                    f"{sorted(GEMMA_VARIANTS)} (and variant_sizes for other sizes)."
                )
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}.")
        if self.n_action_steps > self.chunk_size:
            raise ValueError(f"n_action_steps={self.n_action_steps} exceeds chunk_size={self.chunk_size}.")
        if self.n_obs_steps != 1:
            raise ValueError(
                f"{type(self).__name__} uses one observation frame (n_obs_steps=1), got {self.n_obs_steps}."
            )
        if self.use_relative_actions:
            raise ValueError("use_relative_actions=True is not supported here; train with absolute actions.")
        self.sizes()  # one clear error for a malformed variant_sizes, now rather than at build time

    def sizes(self) -> dict[str, Any]:
        """The sizes to build: ``{"vlm": {...}, "action_expert": {...}, "vision": {...}, "vocab_size": int}``."""
        given = copy.deepcopy(self.variant_sizes or {})
        if not isinstance(given, dict):
            raise ValueError(f"variant_sizes must be a dict or None, got {type(given).__name__}.")
        unknown = sorted(set(given) - {*SIZE_SECTIONS, "vocab_size"})
        if unknown:
            raise ValueError(
                f"variant_sizes has unknown sections {unknown}; use {sorted([*SIZE_SECTIONS, 'vocab_size'])}."
            )
        base = {
            "vlm": GEMMA_VARIANTS[self.paligemma_variant],
            "action_expert": GEMMA_VARIANTS[self.action_expert_variant],
            "vision": {**SIGLIP_SO400M, "projection_dim": GEMMA_VARIANTS[self.paligemma_variant]["width"]},
        }
        out: dict[str, Any] = {"vocab_size": int(given.get("vocab_size", PALIGEMMA_VOCAB_SIZE))}
        for section, defaults in base.items():
            values = given.get(section) or {}
            bad = sorted(set(values) - set(defaults))
            if bad:
                raise ValueError(
                    f"variant_sizes[{section!r}] has unknown keys {bad}; known: {sorted(defaults)}."
                )
            out[section] = {**defaults, **{k: int(v) for k, v in values.items()}}
        vlm, expert = out["vlm"], out["action_expert"]
        if (vlm["num_heads"], vlm["num_kv_heads"], vlm["head_dim"]) != (
            expert["num_heads"],
            expert["num_kv_heads"],
            expert["head_dim"],
        ):
            raise ValueError(
                "The VLM and the action expert attend jointly, so they need the same num_heads, num_kv_heads "
                f"and head_dim; got {vlm} and {expert}."
            )
        if out["vision"]["projection_dim"] != vlm["width"]:
            raise ValueError(
                f"variant_sizes: vision projection_dim {out['vision']['projection_dim']} must equal the VLM width "
                f"{vlm['width']} (image tokens enter the language model)."
            )
        return out

    def validate_features(self) -> None:
        if not self.image_features:
            raise ValueError(
                f"{type(self).__name__} needs at least one camera (observation.images.<name>) among its inputs, "
                f"got {sorted(self.input_features)}."
            )
        if self.action_feature is None:
            raise ValueError(
                f"{type(self).__name__} needs an 'action' output feature, got {sorted(self.output_features)}."
            )
        if self.action_feature.shape[0] > self.max_action_dim:
            raise ValueError(
                f"The action has {self.action_feature.shape[0]} dims but max_action_dim={self.max_action_dim}; "
                "raise --policy.max_action_dim."
            )
        state = self.robot_state_feature
        if state is not None and state.shape[0] > self.max_state_dim:
            raise ValueError(
                f"observation.state has {state.shape[0]} dims but max_state_dim={self.max_state_dim}; "
                "raise --policy.max_state_dim."
            )

    def to_dict(self) -> dict[str, Any]:
        """LeRobot's ``config.json``; ``variant_sizes`` only when set (LeRobot does not know the key), never
        ``tokenizer_name``."""
        out = super().to_dict()
        out.pop("tokenizer_name")
        if self.variant_sizes is None:
            out.pop("variant_sizes")
        return out


@PreTrainedConfig.register_subclass("pi0")
@dataclass
class PI0Config(PaliGemmaVLAConfig):
    """π0: PaliGemma reads the cameras and the instruction, a Gemma action expert denoises the chunk."""
