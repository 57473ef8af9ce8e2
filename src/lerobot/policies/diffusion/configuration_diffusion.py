"""Diffusion Policy configuration (Chi et al. 2023, "Diffusion Policy: Visuomotor Policy Learning via
Action Diffusion", https://arxiv.org/abs/2303.04137).

Field names and defaults are LeRobot 0.6's, so a ``config.json`` written by either library builds
the same policy. Two spellings work, as for ACT::

    DiffusionConfig(input_features={"observation.state": PolicyFeature(FeatureType.STATE, (2,)), ...},
                    output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))})
    DiffusionConfig(input_shapes={"observation.image": [3, 96, 96], "observation.state": [2]},
                    output_shapes={"action": [2]}, crop_shape=(84, 84), lr=1e-4)

Time layout of one training sample (``n_obs_steps=2``, ``horizon=16``, ``n_action_steps=8``)::

    observations at t-1, t                 (observation_delta_indices = [-1, 0])
    actions      at t-1 .. t+14            (action_delta_indices = [-1, ..., 14])
    executed     at t .. t+7               (n_action_steps actions starting at the current step)

The EMA fields (:class:`~lerobot.policies.ema.EMAFields`) are this library's addition (LeRobot 0.6
has no EMA); they are written to ``config.json`` only when ``use_ema`` is on, so default checkpoints
stay loadable by LeRobot. So is ``rtc_config`` (real-time chunking, which LeRobot offers for its flow
policies only): written only when set.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot.configs.types import NormalizationMode
from lerobot.optim.optimizers import AdamConfig
from lerobot.optim.schedulers import SchedulePreset, schedule_kind
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.ema import EMAFields
from lerobot.policies.rtc.configuration_rtc import RTCConfig


@PreTrainedConfig.register_subclass("diffusion")
@dataclass
class DiffusionConfig(EMAFields, PreTrainedConfig):
    """1-D conditional U-Net denoising an action sequence, conditioned on images and state."""

    # Input / output structure
    n_obs_steps: int = 2
    """Observation frames (the current one and those before it) conditioning each prediction."""
    horizon: int = 64
    """Length of the denoised action sequence (a multiple of 2**len(down_dims))."""
    n_action_steps: int = 32
    """Actions executed from each prediction, starting at the current step."""
    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.MEAN_STD,
            "STATE": NormalizationMode.MIN_MAX,
            "ENV": NormalizationMode.MIN_MAX,
            "ACTION": NormalizationMode.MIN_MAX,
        }
    )
    """How each feature type is normalised (MIN_MAX keeps actions in the scheduler's [-1, 1] clip range).

    ``ENV`` is our addition to LeRobot's defaults, which leave environment state raw: PushT's keypoints
    (pixels, ~400) then stall training. Checkpoints carry their own mapping, so LeRobot's load as before."""
    drop_n_last_frames: int = 7
    """Frames at each episode end the sampler skips as sample starts (horizon - n_action_steps - n_obs_steps + 1)."""

    # Vision
    vision_backbone: str = "resnet18"
    """torchvision ResNet name."""
    pretrained_backbone_weights: str | None = "ResNet18_Weights.IMAGENET1K_V1"
    """Local .pth/.safetensors file, a torchvision weights name, or None (random)."""
    use_group_norm: bool = False
    """Replace the backbone's batch norm by group norm (needs pretrained_backbone_weights=None)."""
    spatial_softmax_num_keypoints: int = 32
    """Keypoints the spatial softmax extracts from the backbone's feature map."""
    crop_shape: tuple[int, int] | None = None
    """(H, W) crop: random while training (if crop_is_random), centred at inference. None: no crop."""
    crop_is_random: bool = True
    """Random crop while training (data augmentation); the centre crop is used otherwise."""
    crop_ratio: float = 1.0
    """Without crop_shape, crop this fraction of each image side (1.0: no crop)."""
    resize_shape: tuple[int, int] | None = None
    """(H, W) to resize camera images to before cropping. None: keep the dataset's size."""
    use_separate_rgb_encoder_per_camera: bool = True
    """One backbone per camera (True) or one shared by all cameras."""

    # U-Net
    down_dims: tuple[int, ...] = (512, 1024, 2048)
    """Channels of each U-Net resolution level (``--policy.down_dims='[256, 512, 1024]'``)."""
    kernel_size: int = 5
    """1-D convolution kernel size."""
    n_groups: int = 8
    """Group norm groups in the U-Net's convolution blocks."""
    diffusion_step_embed_dim: int = 128
    """Size of the diffusion time-step embedding."""
    use_film_scale_modulation: bool = True
    """FiLM conditioning with scale and bias (True) or bias only."""

    # Noise scheduler
    noise_scheduler_type: str = "DDPM"
    """DDPM or DDIM (DDIM samples well with few num_inference_steps)."""
    num_train_timesteps: int = 100
    """Diffusion steps of the forward (noising) process."""
    beta_schedule: str = "squaredcos_cap_v2"
    """diffusers beta schedule: linear, scaled_linear or squaredcos_cap_v2."""
    beta_start: float = 0.0001
    """First beta (linear schedules)."""
    beta_end: float = 0.02
    """Last beta (linear schedules)."""
    prediction_type: str = "epsilon"
    """What the U-Net predicts: the noise (epsilon) or the clean actions (sample)."""
    clip_sample: bool = True
    """Clip each denoised estimate to [-clip_sample_range, clip_sample_range]."""
    clip_sample_range: float = 1.0
    """Clip range (actions are MIN_MAX-normalised to [-1, 1])."""
    num_inference_steps: int | None = None
    """Denoising steps at inference; None uses num_train_timesteps."""

    # Loss
    do_mask_loss_for_padding: bool = False
    """Leave actions padded past the episode end (action_is_pad) out of the loss."""

    # Training presets
    optimizer_lr: float = 1e-4
    """Adam learning rate (guide: ``lr``)."""
    optimizer_betas: tuple[float, float] = (0.95, 0.999)
    """Adam betas."""
    optimizer_eps: float = 1e-8
    """Adam epsilon."""
    optimizer_weight_decay: float = 1e-6
    """Adam weight decay (guide: ``weight_decay``)."""
    scheduler_name: str = "cosine"
    """diffusers learning-rate schedule name."""
    scheduler_warmup_steps: int = 500
    """Linear warm-up steps of the learning-rate schedule."""

    # Real-time chunking at deployment (see lerobot.policies.rtc; written to config.json only when set)
    rtc_config: RTCConfig | None = None
    """Guide each new chunk towards the previous one's remaining actions (async deployment); None: off."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.down_dims = tuple(int(d) for d in self.down_dims)
        if self.crop_shape is not None:
            self.crop_shape = tuple(int(s) for s in self.crop_shape)
        if self.resize_shape is not None:
            self.resize_shape = tuple(int(s) for s in self.resize_shape)
        self.optimizer_betas = tuple(float(b) for b in self.optimizer_betas)
        if isinstance(self.rtc_config, dict):
            self.rtc_config = RTCConfig(**self.rtc_config)
        if not self.vision_backbone.startswith("resnet"):
            raise ValueError(f"vision_backbone must be a ResNet variant, got {self.vision_backbone!r}.")
        if self.noise_scheduler_type not in ("DDPM", "DDIM"):
            raise ValueError(
                f"noise_scheduler_type must be 'DDPM' or 'DDIM', got {self.noise_scheduler_type!r}."
            )
        if self.prediction_type not in ("epsilon", "sample"):
            raise ValueError(f"prediction_type must be 'epsilon' or 'sample', got {self.prediction_type!r}.")
        factor = 2 ** len(self.down_dims)
        if self.horizon % factor:
            raise ValueError(
                f"horizon={self.horizon} must be a multiple of 2**len(down_dims) = {factor} "
                f"(down_dims={list(self.down_dims)}): the U-Net halves the sequence at each level."
            )
        if self.n_action_steps > self.horizon - self.n_obs_steps + 1:
            raise ValueError(
                f"n_action_steps={self.n_action_steps} exceeds horizon - n_obs_steps + 1 = "
                f"{self.horizon - self.n_obs_steps + 1}: the prediction has no more future actions."
            )
        if self.use_group_norm and self.pretrained_backbone_weights is not None:
            raise ValueError(
                "use_group_norm=True replaces the batch norms that pretrained_backbone_weights were trained "
                "with: set pretrained_backbone_weights=None, or use_group_norm=False."
            )
        if not 0 < self.crop_ratio <= 1:
            raise ValueError(f"crop_ratio must be in (0, 1], got {self.crop_ratio}.")
        if (
            self.num_inference_steps is not None
            and not 0 < self.num_inference_steps <= self.num_train_timesteps
        ):
            raise ValueError(
                f"num_inference_steps={self.num_inference_steps} must be in 1..num_train_timesteps "
                f"({self.num_train_timesteps})."
            )

    @property
    def image_size(self) -> tuple[int, int] | None:
        """(H, W) of the camera images after the optional resize; None without cameras."""
        if not self.image_features:
            return None
        if self.resize_shape is not None:
            return self.resize_shape
        return tuple(next(iter(self.image_features.values())).shape[1:])

    @property
    def crop_size(self) -> tuple[int, int] | None:
        """(H, W) the encoder sees: crop_shape, or crop_ratio of the image size; None: no crop."""
        if self.crop_shape is not None:
            return self.crop_shape
        if self.crop_ratio < 1 and self.image_size is not None:
            return tuple(max(1, int(s * self.crop_ratio)) for s in self.image_size)
        return None

    def validate_features(self) -> None:
        if self.action_feature is None:
            raise ValueError(
                f"Diffusion needs an 'action' output feature; got {sorted(self.output_features)}."
            )
        if not (self.image_features or self.robot_state_feature or self.env_state_feature):
            raise ValueError(
                "Diffusion needs observation.state, observation.environment_state or a camera among its inputs; "
                f"got {sorted(self.input_features)}."
            )
        shapes = {name: ft.shape for name, ft in self.image_features.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"All cameras must share one shape (resize them first); got {shapes}.")
        crop, size = self.crop_size, self.image_size
        if crop is not None and size is not None and (crop[0] > size[0] or crop[1] > size[1]):
            raise ValueError(f"crop_shape={list(crop)} does not fit in the {list(size)} camera images.")

    @property
    def observation_delta_indices(self) -> list[int]:
        return list(range(1 - self.n_obs_steps, 1))

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(1 - self.n_obs_steps, 1 - self.n_obs_steps + self.horizon))

    def get_optimizer_preset(self) -> AdamConfig:
        return self.adam_preset_from_fields(AdamConfig)

    def get_scheduler_preset(self) -> SchedulePreset:
        """diffusers' schedule names (``cosine``, ``constant``), each with its warm-up."""
        return schedule_kind(self.scheduler_name)(num_warmup_steps=self.scheduler_warmup_steps)

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.rtc_config is None:
            out.pop("rtc_config")
        return out
