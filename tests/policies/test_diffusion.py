"""Diffusion Policy specifics: config parsing, time layout, crops, schedulers, EMA, observation history."""

from __future__ import annotations

import json

import pytest
import torch
from tests.policies.conftest import (
    ACTION_DIM,
    DIFFUSION_IMAGE,
    diffusion_config,
    make_batch,
    make_observation,
    make_stats,
)

from lerobot.configs.parser import parse_config
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.diffusion import DiffusionConfig
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy
from lerobot.policies.diffusion.vision_encoder import center_crop, random_crop


def make_policy(config: DiffusionConfig) -> DiffusionPolicy:
    torch.manual_seed(0)
    return DiffusionPolicy(config, dataset_stats=make_stats(config.input_features | config.output_features))


def test_defaults_and_delta_indices_match_lerobot():
    cfg = DiffusionConfig(
        input_shapes={"observation.state": [2]}, output_shapes={"action": [2]}, device="cpu"
    )
    assert (cfg.n_obs_steps, cfg.horizon, cfg.n_action_steps) == (2, 64, 32)
    assert cfg.down_dims == (512, 1024, 2048) and cfg.noise_scheduler_type == "DDPM"
    assert cfg.observation_delta_indices == [-1, 0]
    assert cfg.action_delta_indices == list(range(-1, 63))
    assert {k: v.value for k, v in cfg.normalization_mapping.items()} == {
        "VISUAL": "MEAN_STD",
        "STATE": "MIN_MAX",
        "ENV": "MIN_MAX",  # our addition: LeRobot leaves environment state raw (see the config)
        "ACTION": "MIN_MAX",
    }
    assert cfg.get_optimizer_preset().betas == (0.95, 0.999)


def test_down_dims_flag_parses():
    cfg = parse_config(
        PreTrainedConfig,
        [
            "--type=diffusion",
            "--down_dims=[256, 512, 1024]",
            "--horizon=16",
            "--n_action_steps=8",
            "--crop_shape=[84, 84]",
            "--device=cpu",
        ],
    )
    assert isinstance(cfg, DiffusionConfig)
    assert cfg.down_dims == (256, 512, 1024) and cfg.crop_shape == (84, 84)


def test_config_json_round_trip_without_ema_fields(tmp_path):
    cfg = diffusion_config()
    data = cfg.to_dict()
    assert data["type"] == "diffusion" and "use_ema" not in data  # LeRobot 0.6 has no EMA fields
    assert data["down_dims"] == [16, 32] and data["crop_shape"] == [56, 56]
    cfg.save_pretrained(tmp_path)
    again = PreTrainedConfig.from_pretrained(tmp_path)
    assert again == cfg
    ema = diffusion_config(use_ema=True)
    assert ema.to_dict()["use_ema"] is True
    assert json.loads(json.dumps(ema.to_dict()))["ema_power"] == 0.75


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"horizon": 10}, "multiple of 2\\*\\*len\\(down_dims\\)"),
        ({"n_action_steps": 8}, "exceeds horizon - n_obs_steps"),
        ({"noise_scheduler_type": "PNDM"}, "DDPM.*DDIM"),
        (
            {"use_group_norm": True, "pretrained_backbone_weights": "ResNet18_Weights.IMAGENET1K_V1"},
            "use_group_norm",
        ),
        ({"crop_shape": (80, 80)}, "does not fit"),
    ],
)
def test_bad_configs_are_refused(overrides, match):
    with pytest.raises(ValueError, match=match):
        DiffusionPolicy(diffusion_config(**overrides))


def test_crops():
    x = torch.arange(2 * 1 * 6 * 8, dtype=torch.float32).reshape(2, 1, 6, 8)
    assert torch.equal(center_crop(x, (4, 4)), x[..., 1:5, 2:6])
    torch.manual_seed(0)
    crops = random_crop(x.repeat(64, 1, 1, 1), (4, 4))
    assert crops.shape == (128, 1, 4, 4)
    # every crop is a contiguous window of its own image, and the windows differ between images
    firsts = {(int(c[0, 0, 0]) % 48) for c in crops}
    assert len(firsts) > 3
    for image, crop in zip(x.repeat(64, 1, 1, 1), crops, strict=True):
        top, left = divmod(int(crop[0, 0, 0]) % 48, 8)
        assert torch.equal(crop, image[:, top : top + 4, left : left + 4])


def test_random_crop_only_while_training():
    policy = make_policy(diffusion_config())
    encoder = policy.diffusion.rgb_encoder[0]
    images = torch.rand(4, *DIFFUSION_IMAGE)
    encoder.eval()
    assert torch.equal(encoder(images), encoder(images))
    encoder.train()
    torch.manual_seed(1)
    a = encoder(images)
    torch.manual_seed(2)
    assert not torch.allclose(a, encoder(images))


@pytest.mark.parametrize("scheduler", ["DDPM", "DDIM"])
@pytest.mark.parametrize("prediction_type", ["epsilon", "sample"])
def test_schedulers_and_prediction_types_run(scheduler, prediction_type):
    config = diffusion_config(image=False, noise_scheduler_type=scheduler, prediction_type=prediction_type)
    policy = make_policy(config)
    assert type(policy.diffusion.noise_scheduler).__name__ == f"{scheduler}Scheduler"
    policy(make_batch(config))["loss"].backward()
    actions = policy.predict_action_chunk(make_observation(config))
    # clip_sample keeps the normalised sample in [-1, 1]: robot units stay within the action min/max
    stats = policy.unnormalize_outputs.feature_stats("action")
    assert (actions >= stats.min - 1e-5).all() and (actions <= stats.max + 1e-5).all()


def test_environment_state_and_shared_encoder():
    config = diffusion_config(use_separate_rgb_encoder_per_camera=False)
    config.input_features["observation.images.side"] = PolicyFeature(FeatureType.VISUAL, DIFFUSION_IMAGE)
    config.input_features["observation.environment_state"] = PolicyFeature(FeatureType.ENV, (5,))
    policy = make_policy(config)
    keypoint_features = 2 * config.spatial_softmax_num_keypoints
    per_step = 4 + 2 * keypoint_features + 5
    assert policy.diffusion.unet.down_modules[0][0].cond_encoder[1].in_features == 16 + 2 * per_step
    policy(make_batch(config))["loss"].backward()
    assert policy.select_action(make_observation(config))["action"].shape == (2, ACTION_DIM)


def test_observation_history_and_action_queue():
    """A chunk is denoised once per n_action_steps calls, from the last n_obs_steps frames."""
    config = diffusion_config(image=False)
    policy = make_policy(config)
    calls = []
    sample = policy.diffusion.conditional_sample

    def spy(batch_size, global_cond):
        calls.append(global_cond.clone())
        return sample(batch_size, global_cond)

    policy.diffusion.conditional_sample = spy
    frames = [{"observation.state": torch.full((1, 4), float(i))} for i in range(6)]
    for frame in frames:
        policy.select_action(frame)
    assert len(calls) == 2  # steps 0 and 4 (n_action_steps=4)

    def state(i: int) -> torch.Tensor:  # state-only: a step's features are its normalised state
        return policy.normalize_inputs(frames[i])["observation.state"]

    assert calls[0].shape == (1, 2 * 4)
    assert torch.equal(calls[0], torch.cat([state(0), state(0)], dim=-1))  # padded with frame 0
    assert torch.equal(calls[1], torch.cat([state(3), state(4)], dim=-1))
    policy.reset()
    policy.select_action(frames[5])
    assert len(calls) == 3 and torch.equal(calls[2], torch.cat([state(5), state(5)], dim=-1))


def test_each_frame_is_encoded_once_and_matches_the_full_history():
    """Features cached per frame give the actions a full (B, S, ...) history gives."""
    config = diffusion_config()
    policy = make_policy(config).eval()
    frames = [make_observation(config, seed=i) for i in range(3)]
    encoded = []
    step_features = policy.diffusion.step_features

    def spy(batch):
        encoded.append(next(iter(batch.values())).shape[1])
        return step_features(batch)

    policy.diffusion.step_features = spy
    for frame in frames:
        torch.manual_seed(0)
        cached = policy.predict_action_chunk(frame)
    assert encoded == [1, 1, 1]  # frame 0 (filling the history), then each new frame once
    history = {k: torch.stack([frames[1][k], frames[2][k]], dim=1) for k in frames[0]}
    torch.manual_seed(0)
    full = policy.predict_action_chunk(history)
    torch.testing.assert_close(cached, full, rtol=1e-5, atol=1e-5)


def test_predict_action_chunk_takes_a_full_history():
    config = diffusion_config(image=False)
    policy = make_policy(config)
    history = {"observation.state": torch.rand(3, 2, 4)}
    torch.manual_seed(5)
    chunk = policy.predict_action_chunk(history)
    assert chunk.shape == (3, config.n_action_steps, ACTION_DIM)
    torch.manual_seed(5)
    assert torch.equal(policy.predict_action_chunk(history), chunk)


def test_ema_follows_the_weights_and_is_what_gets_saved(tmp_path):
    config = diffusion_config(image=False, use_ema=True, ema_max_decay=0.9)
    policy = make_policy(config)
    optimizer = torch.optim.SGD(policy.parameters(), lr=0.1)
    batch = make_batch(config)
    policy.update()  # first call copies the weights
    weight = policy.diffusion.unet.final_conv[1].weight
    start = weight.detach().clone()
    for _ in range(5):
        optimizer.zero_grad()
        policy(batch)["loss"].backward()
        optimizer.step()
        policy.update()
    live = weight.detach().clone()
    averaged = policy.ema.shadow["unet.final_conv.1.weight"]
    assert not torch.equal(averaged, live) and not torch.equal(averaged, start)
    # The average lies between the start and the live weights along the update direction.
    progress = ((averaged - start) * (live - start)).sum() / (live - start).pow(2).sum()
    assert 0 < progress < 1
    policy.save_pretrained(tmp_path)
    assert torch.equal(weight, live)  # saving swaps the averaged weights in and back out
    loaded = DiffusionPolicy.from_pretrained(tmp_path)
    assert torch.equal(loaded.diffusion.unet.final_conv[1].weight, averaged)
    state = policy.ema.state_dict()
    assert state["step"] == 6
