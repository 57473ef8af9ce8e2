"""The pieces SmolVLA and π0 share: loading tokenizers safely, image/vector preparation, flow matching."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from lerobot.policies.config import CheckpointError
from lerobot.policies.vla_common import (
    MissingPretrainedFilesError,
    block_attention_mask,
    euler_sample,
    flow_matching_target,
    load_tokenizer,
    pad_vector,
    resize_with_pad,
    resolve_pretrained_source,
    sample_flow_time,
    scale_to_symmetric,
    sinusoidal_time_embedding,
    tokenize_tasks,
)

pytest.importorskip("transformers")


@pytest.fixture
def tokenizer_folder(tmp_path: Path) -> Path:
    """A tiny word-level tokenizer saved the way transformers does (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<unk>": 1, "pick": 2, "up": 3, "the": 4, "red": 5, "cube": 6, "\n": 7}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Split(" ", behavior="removed"), pre_tokenizers.Split("\n", behavior="isolated")]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, pad_token="<pad>", unk_token="<unk>")
    folder = tmp_path / "ckpt" / "tok"
    tok.save_pretrained(folder)
    return folder


def test_relative_name_resolves_inside_the_checkpoint(tokenizer_folder: Path) -> None:
    ckpt = tokenizer_folder.parent
    assert resolve_pretrained_source("tok", ckpt) == str(ckpt / "tok")
    tok = load_tokenizer("tok", ckpt)
    ids, mask = tokenize_tasks(tok, ["pick up the red cube", "pick up"], max_length=16)
    # "\n" is appended; right padding with the pad id; the mask marks real tokens.
    assert ids.tolist() == [[2, 3, 4, 5, 6, 7], [2, 3, 7, 0, 0, 0]]
    assert mask.tolist() == [[True] * 6, [True] * 3 + [False] * 3]
    ids, _ = tokenize_tasks(tok, "pick up", max_length=5, padding="max_length", padding_side="left")
    assert ids.tolist() == [[0, 0, 2, 3, 7]]


def test_names_leading_out_of_the_checkpoint_are_refused(tokenizer_folder: Path, tmp_path: Path) -> None:
    ckpt = tokenizer_folder.parent
    for bad in ("../ckpt/tok", str(tokenizer_folder), "~/tok"):
        with pytest.raises(CheckpointError, match="not followed"):
            resolve_pretrained_source(bad, ckpt)
    (ckpt / "link").symlink_to(tmp_path)
    with pytest.raises(CheckpointError, match="outside"):
        resolve_pretrained_source("link", ckpt)
    # The user may name any folder themselves.
    assert resolve_pretrained_source(str(tokenizer_folder)) == str(tokenizer_folder)


def test_missing_files_offline_give_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_cache"))
    with pytest.raises(MissingPretrainedFilesError, match="offline.*hf download org/absent"):
        load_tokenizer("org/absent")
    empty = tmp_path / "ckpt" / "tok"
    empty.mkdir(parents=True)
    (empty / "config.json").write_text(json.dumps({"model_type": "nothing_known"}))
    with pytest.raises(MissingPretrainedFilesError, match="could not be loaded from the folder"):
        load_tokenizer("tok", tmp_path / "ckpt")
    with pytest.raises(MissingPretrainedFilesError, match="neither a folder"):
        resolve_pretrained_source("not a/valid/id")


def test_resize_with_pad_keeps_aspect_and_pads_the_chosen_side() -> None:
    img = torch.rand(2, 3, 64, 96)
    left = resize_with_pad(img, 32, 32, pad="left_top")
    centre = resize_with_pad(img, 32, 32, pad="center")
    assert left.shape == centre.shape == (2, 3, 32, 32)
    # 64x96 -> 21x32: 11 rows of padding, all at the top (SmolVLA) or 5 above / 6 below (π0).
    assert (left[:, :, :11] == 0).all() and (left[:, :, 11:] != 0).any(dim=2).all()
    assert (centre[:, :, :5] == 0).all() and (centre[:, :, -6:] == 0).all()
    torch.testing.assert_close(left[:, :, 11:], centre[:, :, 5:26])
    assert scale_to_symmetric(left).min() == -1.0


def test_pad_vector() -> None:
    x = torch.arange(6.0).reshape(1, 6)
    assert pad_vector(x, 8).tolist() == [[0, 1, 2, 3, 4, 5, 0, 0]]
    with pytest.raises(ValueError, match="max_state_dim"):
        pad_vector(x, 4)


def test_time_embedding_matches_the_formula() -> None:
    t = torch.tensor([0.0, 0.3, 1.0])
    emb = sinusoidal_time_embedding(t, 8, 4e-3, 4.0)
    periods = 4e-3 * (4.0 / 4e-3) ** torch.linspace(0, 1, 4, dtype=torch.float64)
    angle = 2 * torch.pi * t.double()[:, None] / periods
    torch.testing.assert_close(emb, torch.cat([angle.sin(), angle.cos()], 1).float())
    with pytest.raises(ValueError, match="even"):
        sinusoidal_time_embedding(t, 7, 4e-3, 4.0)


def test_euler_sampler_integrates_a_known_flow() -> None:
    # For the straight path from actions a to noise n the velocity is n - a: Euler is exact.
    actions, noise = torch.randn(2, 5, 3), torch.randn(2, 5, 3)
    seen: list[float] = []

    def velocity(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append(float(t[0]))
        x_t, u = flow_matching_target(actions, noise, t)
        torch.testing.assert_close(x, x_t)
        return u

    out = euler_sample(velocity, noise, num_steps=4)
    torch.testing.assert_close(out, actions)
    assert seen == [1.0, 0.75, 0.5, 0.25]


def test_flow_time_samples_lie_in_range() -> None:
    t = sample_flow_time(1000, "cpu", generator=torch.Generator().manual_seed(0))
    assert t.min() >= 0.001 and t.max() <= 1.0
    assert abs(float(t.mean()) - (0.999 * 0.6 + 0.001)) < 0.03  # Beta(1.5, 1) has mean 0.6


def test_block_attention_mask() -> None:
    pad = torch.tensor([[True, True, False, True, True]])
    new_block = torch.tensor([[0, 0, 0, 1, 1]])
    m = block_attention_mask(pad, new_block)[0].int().tolist()
    assert m == [
        [1, 1, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [1, 1, 0, 1, 0],
        [1, 1, 0, 1, 1],
    ]


def test_missing_features_pads_absent_cameras_of_a_vla_only_while_one_camera_is_there():
    from tests.policies.conftest import act_config, smolvla_config

    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.config import missing_features

    features = {
        "observation.state": PolicyFeature(FeatureType.STATE, (3,)),
        "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 24, 32)),
        "observation.images.wrist": PolicyFeature(FeatureType.VISUAL, (3, 24, 32)),
    }
    vla = smolvla_config(input_features=features, empty_cameras=1)
    state_front = ["observation.state", "observation.images.front", "action"]
    assert missing_features(vla, state_front) == []  # wrist padded; the padding slot is never provided
    assert missing_features(vla, ["observation.state", "action"]) == [
        "observation.images.front",
        "observation.images.wrist",
    ]
    assert missing_features(vla, ["observation.state", "observation.images.front"]) == ["action"]
    assert missing_features(vla, ["observation.state", "observation.images.front"], outputs=False) == []
    act = act_config()  # ACT needs every camera it lists
    camera = next(iter(act.image_features))
    assert missing_features(act, [k for k in act.input_features if k != camera], outputs=False) == [camera]
