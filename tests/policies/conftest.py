"""Tiny policies and batches for the policy tests: 32x32 cameras or state-only, a few thousand weights."""

from __future__ import annotations

import pytest
import torch

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act import ACTConfig
from lerobot.policies.diffusion import DiffusionConfig

STATE_DIM, ENV_DIM, ACTION_DIM = 4, 3, 2
IMAGE = (3, 32, 32)
# A one-layer, 32-wide ACT without a downloaded backbone: seconds to build and train on a CPU.
TINY_ACT = dict(
    chunk_size=5,
    n_action_steps=5,
    dim_model=32,
    n_heads=2,
    dim_feedforward=64,
    n_encoder_layers=1,
    n_decoder_layers=1,
    n_vae_encoder_layers=1,
    latent_dim=4,
    pretrained_backbone_weights=None,
    device="cpu",
)
# ResNet maps 32x32 to one pixel, where a spatial softmax is constant: Diffusion needs >= 2x2 keypoint maps.
DIFFUSION_IMAGE = (3, 64, 64)


def make_stats(features: dict[str, PolicyFeature]) -> dict[str, dict[str, torch.Tensor]]:
    """Plausible (non-trivial) statistics for every feature and every stat a mode might need."""
    gen = torch.Generator().manual_seed(123)
    stats = {}
    for name, ft in features.items():
        shape = (ft.shape[0], 1, 1) if ft.type is FeatureType.VISUAL else ft.shape
        mean = torch.rand(shape, generator=gen) * 0.5
        stats[name] = {
            "mean": mean,
            "std": 0.5 + torch.rand(shape, generator=gen),
            "min": mean - 2,
            "max": mean + 2,
        }
    return stats


def act_config(image: bool = True, **overrides) -> ACTConfig:
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,))}
    if image:
        inputs["observation.images.top"] = PolicyFeature(FeatureType.VISUAL, IMAGE)
    else:
        inputs["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (ENV_DIM,))
    kwargs = dict(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        **TINY_ACT,
    )
    kwargs.update(overrides)
    return ACTConfig(**kwargs)


def diffusion_config(image: bool = True, **overrides) -> DiffusionConfig:
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,))}
    if image:
        inputs["observation.images.top"] = PolicyFeature(FeatureType.VISUAL, DIFFUSION_IMAGE)
    kwargs = dict(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        n_obs_steps=2,
        horizon=8,
        n_action_steps=4,
        down_dims=(16, 32),
        diffusion_step_embed_dim=16,
        kernel_size=3,
        n_groups=4,
        spatial_softmax_num_keypoints=4,
        crop_shape=(56, 56) if image else None,
        pretrained_backbone_weights=None,
        noise_scheduler_type="DDIM",
        num_inference_steps=4,
        device="cpu",
    )
    kwargs.update(overrides)
    return DiffusionConfig(**kwargs)


def make_batch(config, batch_size: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """A training batch as the dataset delivers it: observation history, action chunk, padding mask."""
    gen = torch.Generator().manual_seed(seed)
    obs_steps = getattr(config, "horizon", None) and config.n_obs_steps  # diffusion keeps a history
    chunk = getattr(config, "horizon", None) or config.chunk_size
    batch = {}
    for name, ft in config.input_features.items():
        lead = (batch_size, obs_steps) if obs_steps else (batch_size,)
        batch[name] = torch.rand(lead + ft.shape, generator=gen)
    batch["action"] = torch.randn((batch_size, chunk, ACTION_DIM), generator=gen)
    batch["action_is_pad"] = torch.zeros(batch_size, chunk, dtype=torch.bool)
    return batch


def make_observation(config, batch_size: int = 2, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        name: torch.rand((batch_size,) + ft.shape, generator=gen)
        for name, ft in config.input_features.items()
    }


@pytest.fixture(autouse=True)
def _two_threads():
    """Tests share two cores with other work: one thread each avoids oversubscription stalls."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
