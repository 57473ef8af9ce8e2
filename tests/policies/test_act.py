"""ACT specifics: the guide's config spelling, temporal ensembling, backbone weights from a local file, EMA."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchvision
from tests.policies.conftest import ACTION_DIM, act_config, make_batch, make_observation, make_stats

from lerobot.policies.act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy


def test_guide_spelling_builds_the_same_policy():
    guide = ACTConfig(
        input_shapes={"observation.images.top": [3, 32, 32], "observation.state": [4]},
        output_shapes={"action": [2]},
        input_normalization_modes={"observation.images.top": "mean_std", "observation.state": "mean_std"},
        output_normalization_modes={"action": "mean_std"},
        lr=3e-5,
        weight_decay=1e-3,
        chunk_size=5,
        n_action_steps=5,
        dim_model=32,
        n_heads=2,
        dim_feedforward=64,
        n_encoder_layers=1,
        n_vae_encoder_layers=1,
        latent_dim=4,
        pretrained_backbone_weights=None,
        device="cpu",
    )
    canonical = act_config(optimizer_lr=3e-5, optimizer_weight_decay=1e-3)
    assert guide.to_dict() == canonical.to_dict()
    assert guide.lr == 3e-5 and guide.weight_decay == 1e-3
    torch.manual_seed(0)
    a = ACTPolicy(guide)
    torch.manual_seed(0)
    b = ACTPolicy(canonical)
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    state_a, state_b = a.state_dict(), b.state_dict()
    assert state_a.keys() == state_b.keys()
    for name, value in state_a.items():
        assert torch.equal(value, state_b[name]), name


def test_temporal_ensembling_averages_overlapping_chunks():
    """Same observation every step -> chunk c each step; step k = sum_j w_j c[k-j] / sum_j w_j."""
    coeff = 0.5
    config = act_config(temporal_ensemble_coeff=coeff, n_action_steps=1)
    torch.manual_seed(0)
    policy = ACTPolicy(config, dataset_stats=make_stats(config.input_features | config.output_features))
    obs = make_observation(config, batch_size=2)
    chunk = policy.predict_action_chunk(obs)  # (2, 5, A) robot units; ensembling is linear, so it commutes
    policy.reset()
    weights = torch.exp(-coeff * torch.arange(config.chunk_size, dtype=torch.float32))
    for k in range(config.chunk_size):
        got = policy.select_action(obs)["action"]
        want = sum(weights[j] * chunk[:, k - j] for j in range(k + 1)) / weights[: k + 1].sum()
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    assert got.shape == (2, ACTION_DIM)


def test_temporal_ensembling_needs_one_action_step():
    with pytest.raises(ValueError, match="n_action_steps=1"):
        act_config(temporal_ensemble_coeff=0.01, n_action_steps=5)


def test_backbone_weights_load_from_a_local_file(tmp_path):
    torch.manual_seed(3)
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18-local.pth"
    torch.save(reference.state_dict(), path)
    policy = ACTPolicy(act_config(pretrained_backbone_weights=str(path)))
    backbone = policy.model.backbone.state_dict()
    expected = {
        k: v for k, v in reference.state_dict().items() if not k.startswith("fc.") and "num_batches" not in k
    }
    assert backbone.keys() == expected.keys()
    for key, value in expected.items():
        assert torch.equal(backbone[key], value), key


def _forbid_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("tried to download backbone weights")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", refuse)
    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)


def test_offline_missing_imagenet_weights_warn_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    _forbid_downloads(monkeypatch)
    with pytest.warns(UserWarning, match=r"resnet18-f37072fd\.pth.*torch_home.*pretrained_backbone_weights"):
        policy = ACTPolicy(act_config(pretrained_backbone_weights="ResNet18_Weights.IMAGENET1K_V1"))
    assert policy.model.backbone is not None


def test_cached_imagenet_weights_are_used_offline(tmp_path, monkeypatch):
    """A file in the torch hub cache is found by its weights name, with no network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    _forbid_downloads(monkeypatch)
    torch.manual_seed(4)
    reference = torchvision.models.resnet18(weights=None)
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(reference.state_dict(), cache / "resnet18-f37072fd.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy = ACTPolicy(act_config(pretrained_backbone_weights="ResNet18_Weights.IMAGENET1K_V1"))
    assert torch.equal(policy.model.backbone.state_dict()["conv1.weight"], reference.conv1.weight)


def test_network_failure_warns_instead_of_failing(tmp_path, monkeypatch):
    from lerobot.policies import backbones

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(backbones, "hub_offline", lambda: False)  # the Hub client read "1" at import
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    attempts = []

    def no_network(*args, **kwargs):
        attempts.append(args)
        raise OSError("Name or service not known")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    with pytest.warns(UserWarning, match="not available offline"):
        ACTPolicy(act_config(pretrained_backbone_weights="ResNet18_Weights.IMAGENET1K_V1"))
    assert attempts  # online, the download was tried (and its failure became the warning)


def test_unknown_weights_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="neither a file nor a torchvision weights name"):
        ACTPolicy(act_config(pretrained_backbone_weights="/nowhere/resnet.pth"))


def test_dilating_a_basic_block_resnet_is_a_clear_error():
    with pytest.raises(ValueError, match="bottleneck blocks .resnet50"):
        ACTPolicy(act_config(pretrained_backbone_weights=None, replace_final_stride_with_dilation=True))


@pytest.mark.parametrize("pre_norm", [False, True])
def test_vae_encoder_cls_only_last_layer_equals_the_full_stack(pre_norm):
    config = act_config(n_vae_encoder_layers=2, pre_norm=pre_norm)
    policy = ACTPolicy(
        config, dataset_stats=make_stats(config.input_features | config.output_features)
    ).eval()
    encoder = policy.model.vae_encoder
    x = torch.randn(7, 3, config.dim_model)
    pos = torch.randn(7, 1, config.dim_model)
    mask = torch.zeros(3, 7, dtype=torch.bool)
    mask[0, -2:] = True
    full = encoder(x, pos_embed=pos, key_padding_mask=mask)
    first = encoder(x, pos_embed=pos, key_padding_mask=mask, first_token_only=True)
    assert first.shape == (1, 3, config.dim_model)
    torch.testing.assert_close(first[0], full[0], rtol=1e-5, atol=1e-6)


def test_ema_is_opt_in_saved_as_the_average_and_refused_by_export(tmp_path):
    assert "use_ema" not in act_config().to_dict()  # a default config.json stays LeRobot's
    config = act_config(use_ema=True, ema_max_decay=0.9)
    assert ACTConfig.from_dict(config.to_dict()).use_ema
    policy = ACTPolicy(config, make_stats({**config.input_features, **config.output_features}))
    optimizer = torch.optim.SGD(policy.parameters(), lr=1e-3)
    batch = make_batch(config)
    for _ in range(4):
        optimizer.zero_grad()
        policy(batch)["loss"].backward()
        optimizer.step()
        policy.update()
    head = policy.model.action_head.weight
    averaged = policy.ema.shadow["action_head.weight"]
    assert not torch.equal(averaged, head)
    with pytest.raises(ValueError, match="training an EMA.*save_pretrained"):
        policy.export_graph()
    policy.save_pretrained(tmp_path)
    loaded = ACTPolicy.from_pretrained(tmp_path)
    assert torch.equal(loaded.model.action_head.weight, averaged)
    loaded.export_graph()  # a saved checkpoint holds plain (averaged) weights
