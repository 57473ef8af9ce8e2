"""Tiny π0 / π0.5 policies (a few hundred thousand weights) and a word-level tokenizer: no download, no ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lerobot.configs.types import FeatureType, PolicyFeature

pytest.importorskip("transformers")

STATE_DIM, ACTION_DIM, CHUNK = 5, 4, 6
IMAGE = (3, 40, 48)
# The tiny sizes of LeRobot's π0 fixture, as variant_sizes (the variant names stay the real ones).
TINY_SIZES = {
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
WORDS = ["pick", "up", "the", "red", "blue", "cube", "Task:", "State:", "Action:", ",", ";"]


def tiny_config(kind: str = "pi0", **overrides):
    from lerobot.policies.pi0 import PI0Config
    from lerobot.policies.pi05 import PI05Config

    cls = {"pi0": PI0Config, "pi05": PI05Config}[kind]
    values = dict(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
            "observation.images.front": PolicyFeature(FeatureType.VISUAL, IMAGE),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        variant_sizes=TINY_SIZES,
        image_resolution=(16, 16),
        chunk_size=CHUNK,
        n_action_steps=CHUNK,
        max_state_dim=8,
        max_action_dim=6,
        num_inference_steps=3,
        tokenizer_max_length=24 if kind == "pi0" else 40,
        device="cpu",
    )
    values.update(overrides)
    return cls(**values)


def tiny_stats() -> dict[str, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    stats = {}
    for name, dim in (("observation.state", STATE_DIM), ("action", ACTION_DIM)):
        low = -torch.rand(dim, generator=gen) - 0.5
        high = torch.rand(dim, generator=gen) + 0.5
        stats[name] = {"mean": (low + high) / 2, "std": (high - low) / 4, "q01": low, "q99": high}
    return stats


@pytest.fixture(scope="session")
def tokenizer_folder(tmp_path_factory) -> Path:
    """A word-level tokenizer (words, digits 0-255, -1) saved as transformers does; <bos> is prepended."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "\n": 3}
    for word in [*WORDS, "-1", *map(str, range(256))]:
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
    folder = tmp_path_factory.mktemp("tok") / "tiny_tokenizer"
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def make_policy(tokenizer_folder):
    """``make_policy(kind, **config_overrides)`` -> a tiny policy (seeded) with the tiny tokenizer."""

    def make(kind: str = "pi0", **overrides):
        from lerobot.policies.factory import get_policy_class
        from lerobot.policies.vla_common import load_tokenizer

        torch.manual_seed(0)
        policy = get_policy_class(kind)(tiny_config(kind, **overrides), dataset_stats=tiny_stats())
        policy.set_tokenizer(load_tokenizer(tokenizer_folder))
        return policy

    return make


def observation(batch: int = 2, seed: int = 1) -> dict:
    gen = torch.Generator().manual_seed(seed)
    return {
        "observation.state": torch.randn(batch, STATE_DIM, generator=gen),
        "observation.images.front": torch.rand(batch, *IMAGE, generator=gen),
        "task": ["pick up the red cube", "pick up the blue cube"][:batch],
    }


def training_batch(batch: int = 2, seed: int = 1) -> dict:
    gen = torch.Generator().manual_seed(seed + 100)
    return {**observation(batch, seed), "action": torch.randn(batch, CHUNK, ACTION_DIM, generator=gen)}
