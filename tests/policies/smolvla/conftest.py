"""A tiny SmolVLM backbone folder (config + word-level tokenizer, no weights) and a tiny language dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("transformers")

WORDS = ["pick", "up", "the", "red", "blue", "cube", "place", "in", "bin", "\n"]
SPECIAL = ["<pad>", "<unk>", "<image>", "<fake_token_around_image>", "<global-img>"]
TASKS = ["pick up the red cube", "pick up the blue cube"]
IMAGE_HW = (24, 32)


def write_tiny_backbone(folder: Path) -> Path:
    """What a SmolVLA config's ``vlm_model_name`` folder holds: the backbone's config and its tokenizer."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, SmolVLMConfig

    vocab = {tok: i for i, tok in enumerate(SPECIAL + WORDS)}
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


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_backbone(tmp_path_factory.mktemp("backbone") / "tiny_smolvlm")


def tiny_config(backbone: Path, **overrides):
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.smolvla import SmolVLAConfig

    kwargs = dict(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (3,)),
            "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, *IMAGE_HW)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
        vlm_model_name=str(backbone),
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


def write_language_dataset(root: Path, episodes: int = 2, frames: int = 6):
    """Episodes alternating between TASKS, with a camera, a 3-D state and a 2-D action."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.state": {"dtype": "float32", "shape": (3,), "names": None},
        "observation.images.front": {
            "dtype": "image",
            "shape": (*IMAGE_HW, 3),
            "names": ["height", "width", "channel"],
        },
        "action": {"dtype": "float32", "shape": (2,), "names": None},
    }
    ds = LeRobotDataset.create("test/lang", fps=10, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(0)
    for ep in range(episodes):
        for _ in range(frames):
            ds.add_frame(
                {
                    "observation.state": rng.normal(size=3).astype(np.float32),
                    "observation.images.front": rng.integers(0, 255, (*IMAGE_HW, 3), dtype=np.uint8),
                    "action": rng.normal(size=2).astype(np.float32),
                },
                task=TASKS[ep % 2],
            )
        ds.save_episode()
    ds.finalize()
    return ds
