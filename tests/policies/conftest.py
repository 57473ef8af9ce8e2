"""Tiny policies and batches for the policy tests: 32x32 cameras or state-only, a few thousand weights.

Every registered policy type has a ``<type>_config(**overrides)`` here with a robot's inputs (a state
and a camera), which the async inference test (tests/scripts/test_async_policies.py) drives. The VLAs'
backbone and tokenizer folders are written once per session into a temporary folder, without network.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act import ACTConfig
from lerobot.policies.diffusion import DiffusionConfig
from lerobot.policies.pi0 import PI0Config
from lerobot.policies.pi05 import PI05Config
from lerobot.policies.smolvla import SmolVLAConfig
from lerobot.policies.tdmpc import TDMPCConfig
from lerobot.policies.vqbet import VQBeTConfig

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
            "q01": mean - 1.5,  # π0.5 normalises by quantiles
            "q99": mean + 1.5,
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


TINY_VQBET = dict(
    n_obs_steps=2,
    n_action_pred_token=2,
    action_chunk_size=3,
    vqvae_n_embed=4,
    vqvae_embedding_dim=8,
    vqvae_enc_hidden_dim=8,
    gpt_block_size=16,
    gpt_input_dim=16,
    gpt_output_dim=16,
    gpt_n_layer=1,
    gpt_n_head=2,
    gpt_hidden_dim=16,
    n_vqvae_training_steps=3,
    device="cpu",
)


def vqbet_config(image: bool = True, **overrides) -> VQBeTConfig:
    """A state and a 64x64 camera (cropped to 56x56), or a state and an environment state."""
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,))}
    if image:
        inputs["observation.images.top"] = PolicyFeature(FeatureType.VISUAL, DIFFUSION_IMAGE)
    else:
        inputs["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (ENV_DIM,))
    kwargs = dict(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        crop_shape=(56, 56) if image else None,
        spatial_softmax_num_keypoints=4,
        use_group_norm=False,
        **TINY_VQBET,
    )
    return VQBeTConfig(**{**kwargs, **overrides})


# TD-MPC's image encoder needs square images of at least 45 px; its actions are MIN_MAX normalised.
TDMPC_IMAGE = (3, 48, 48)


def tdmpc_config(image: bool = False, **overrides) -> TDMPCConfig:
    """A state, and with ``image`` a 48x48 camera (``observation.image``, TD-MPC's single image)."""
    inputs = {"observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,))}
    if image:
        inputs["observation.image"] = PolicyFeature(FeatureType.VISUAL, TDMPC_IMAGE)
    kwargs = dict(
        input_features=inputs,
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        device="cpu", horizon=3, latent_dim=8, mlp_dim=16, state_encoder_hidden_dim=16,
        image_encoder_hidden_dim=4, q_ensemble_size=3, cem_iterations=2, n_gaussian_samples=16,
        n_pi_samples=4, n_elites=4,
    )  # fmt: skip
    kwargs.update(overrides)
    return TDMPCConfig(**kwargs)


def _session_folder(name: str) -> Path:
    """``<a temporary folder>/name``, removed when the test session's interpreter exits."""
    root = Path(tempfile.mkdtemp(prefix="lerobot-tests-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root / name


SMOLVLM_WORDS = ["pick", "up", "the", "red", "blue", "cube", "place", "in", "bin", "\n"]
SMOLVLM_SPECIAL = ["<pad>", "<unk>", "<image>", "<fake_token_around_image>", "<global-img>"]
SMOLVLA_IMAGE_HW = (24, 32)


def write_tiny_backbone(folder: Path) -> Path:
    """What a SmolVLA config's ``vlm_model_name`` folder holds: the backbone's config and its tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SmolVLMConfig

    vocab = {tok: i for i, tok in enumerate(SMOLVLM_SPECIAL + SMOLVLM_WORDS)}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", behavior="removed"), pre_tokenizers.Split("\n", behavior="isolated")]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", unk_token="<unk>")
    tok.add_special_tokens({"additional_special_tokens": ["<fake_token_around_image>", "<global-img>"]})
    tok.save_pretrained(folder)
    config = SmolVLMConfig(
        vision_config=dict(
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=16,
            patch_size=8,
        ),
        text_config=dict(
            model_type="llama",
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=8,
            vocab_size=len(vocab),
        ),
        scale_factor=2,
        image_token_id=vocab["<image>"],
        pad_token_id=0,
    )
    config.save_pretrained(folder)
    return folder


@functools.cache
def tiny_backbone_folder() -> Path:
    """The tiny SmolVLM backbone folder, written once per session."""
    return write_tiny_backbone(_session_folder("tiny_smolvlm"))


def smolvla_config(backbone: Path | None = None, **overrides) -> SmolVLAConfig:
    """A 3-D state, a 24x32 camera and a 2-D action on a tiny SmolVLM (``backbone``, or the session's)."""
    kwargs = dict(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (3,)),
            "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, *SMOLVLA_IMAGE_HW)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
        vlm_model_name=str(backbone or tiny_backbone_folder()),
        chunk_size=4,
        n_action_steps=4,
        max_state_dim=4,
        max_action_dim=4,
        resize_imgs_with_padding=(16, 16),
        num_vlm_layers=2,
        num_steps=2,
        tokenizer_max_length=8,
        device="cpu",
    )
    kwargs.update(overrides)
    return SmolVLAConfig(**kwargs)


PI_STATE_DIM, PI_ACTION_DIM, PI_CHUNK = 5, 4, 6
PI_IMAGE = (3, 40, 48)
# The tiny sizes of LeRobot's π0 fixture, as variant_sizes (the variant names stay the real ones).
PI_TINY_SIZES = {
    "vlm": {"width": 32, "depth": 2, "mlp_dim": 64, "num_heads": 4, "num_kv_heads": 1, "head_dim": 8},
    "action_expert": {
        "width": 16,
        "depth": 2,
        "mlp_dim": 32,
        "num_heads": 4,
        "num_kv_heads": 1,
        "head_dim": 8,
    },
    "vision": {
        "hidden_size": 16,
        "intermediate_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "patch_size": 8,
        "image_size": 16,
        "projection_dim": 32,
    },
    "vocab_size": 300,
}
PI_WORDS = ["pick", "up", "the", "red", "blue", "cube", "Task:", "State:", "Action:", ",", ";"]


def write_pi_tokenizer(folder: Path) -> Path:
    """A word-level tokenizer (words, digits 0-255, -1) saved as transformers does; <bos> is prepended."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "\n": 3}
    for word in [*PI_WORDS, "-1", *map(str, range(256))]:
        vocab.setdefault(word, len(vocab))
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", behavior="removed")]
        + [pre_tokenizers.Split(c, behavior="isolated") for c in ("\n", ",", ";")]
    )
    raw.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, pad_token="<pad>", unk_token="<unk>", bos_token="<bos>"
    )
    tok.save_pretrained(folder)
    return folder


@functools.cache
def pi_tokenizer_folder() -> Path:
    """The tiny π0 / π0.5 tokenizer folder, written once per session."""
    return write_pi_tokenizer(_session_folder("tiny_tokenizer"))


def pi_config(kind: str = "pi0", **overrides) -> PI0Config | PI05Config:
    """A tiny π0 (``kind="pi0"``) or π0.5 config: a 5-D state, a 40x48 camera, a 4-D action; no tokenizer."""
    cls = {"pi0": PI0Config, "pi05": PI05Config}[kind]
    values = dict(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (PI_STATE_DIM,)),
            "observation.images.front": PolicyFeature(FeatureType.VISUAL, PI_IMAGE),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (PI_ACTION_DIM,))},
        variant_sizes=PI_TINY_SIZES,
        image_resolution=(16, 16),
        chunk_size=PI_CHUNK,
        n_action_steps=PI_CHUNK,
        max_state_dim=8,
        max_action_dim=6,
        num_inference_steps=3,
        tokenizer_max_length=24 if kind == "pi0" else 40,
        device="cpu",
    )
    values.update(overrides)
    return cls(**values)


def pi0_config(**overrides) -> PI0Config:
    """:func:`pi_config` for π0, using the session's tiny tokenizer."""
    return pi_config("pi0", **{"tokenizer_name": str(pi_tokenizer_folder()), **overrides})


def pi05_config(**overrides) -> PI05Config:
    """:func:`pi_config` for π0.5, using the session's tiny tokenizer."""
    return pi_config("pi05", **{"tokenizer_name": str(pi_tokenizer_folder()), **overrides})


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
def _one_thread(one_torch_thread):
    """Every policy test runs torch on one thread (see ``one_torch_thread``)."""
