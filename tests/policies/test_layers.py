"""The CPU speed-ups keep the stock math: dropout's distribution, weight layouts, ACT's cls-only VAE layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from tests.policies.conftest import act_config, make_batch, make_observation, make_stats
from torch import nn
from torchvision.ops import misc as torchvision_misc

from lerobot.policies import layers
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.backbones import make_resnet
from lerobot.policies.layers import Conv2d, Dropout, FrozenBatchNorm2d, MaxPool2d


@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_keeps_one_minus_p_scaled_like_nn_dropout(p):
    torch.manual_seed(0)
    layer = Dropout(p)
    x = torch.ones(400_000, requires_grad=True)
    y = layer(x)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005  # ~10 standard deviations
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - p)))
    assert torch.equal(y[kept], F.dropout(torch.ones(10), p, training=True).max().expand(int(kept.sum())))
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask)/dx is the mask
    layer.eval()
    assert torch.equal(layer(x), x)
    assert isinstance(layer, nn.Dropout) and torch.equal(Dropout(0.0)(x), x)


@pytest.mark.parametrize("extra_sigmas", [6.0, -20.0])  # -20: too few gaps per draw, the loop continues
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_is_iid_bernoulli(monkeypatch, p, extra_sigmas):
    monkeypatch.setattr(layers, "_EXTRA_SIGMAS", extra_sigmas)
    torch.manual_seed(0)
    n = 2_000_000
    mask = layers.dropout_scale_mask(n, p)
    scale = torch.tensor(1 / (1 - p)).item()  # in float32, as the mask holds it
    assert mask.shape == (n,) and set(mask.unique().tolist()) <= {0.0, scale}
    dropped = mask == 0
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.float().mean().item() - p) < 6 * sigma
    pairs = (dropped[1:] & dropped[:-1]).float().mean().item()  # independence of neighbours
    assert abs(pairs - p * p) < 6 * (p * p * (1 - p * p) / n) ** 0.5
    quarters = dropped.view(4, -1).float().mean(1)  # no drift along the tensor
    assert (quarters - p).abs().max().item() < 6 * sigma * 2
    assert dropped[-1000:].any()  # the process reaches the end


def test_dropout_mask_follows_the_torch_seed():
    torch.manual_seed(3)
    first = layers.dropout_scale_mask(10_000, 0.1)
    torch.manual_seed(3)
    assert torch.equal(layers.dropout_scale_mask(10_000, 0.1), first)
    assert not torch.equal(layers.dropout_scale_mask(10_000, 0.1), first)


def test_dropout_in_place_and_extremes():
    torch.manual_seed(0)
    x = torch.ones(1000)
    y = Dropout(0.3, inplace=True)(x)
    assert y is x and 0.6 < (x != 0).float().mean() < 0.8
    assert torch.equal(Dropout(1.0)(torch.ones(5)), torch.zeros(5))


@pytest.mark.parametrize(
    ("shape", "pool"), [((4, 8, 24, 24), (3, 2, 1)), ((2, 3, 7, 9), (3, 2, 1)), ((2, 5, 8, 8), (2, None, 0))]
)
def test_max_pool_matches_nn_max_pool_values_ties_and_gradients(shape, pool):
    torch.manual_seed(0)
    x = F.relu(torch.randn(shape)).round(decimals=1).requires_grad_()  # ReLU zeros: many tied maxima
    x_stock = x.detach().clone().requires_grad_()
    ours, stock = MaxPool2d(*pool), nn.MaxPool2d(*pool)
    y, y_stock = ours(x), stock(x_stock)
    assert torch.equal(y, y_stock) and y.is_contiguous()
    grad = torch.randn_like(y)
    y.backward(grad)
    y_stock.backward(grad)
    assert torch.equal(x.grad, x_stock.grad)  # the same maxima chosen among ties
    with torch.no_grad():
        assert torch.equal(ours(x), y_stock)
    channels_last = x.detach().contiguous(memory_format=torch.channels_last)
    assert torch.equal(ours(channels_last), y_stock)


def test_resnet_pools_with_our_max_pool_and_keeps_its_state_dict():
    resnet = make_resnet("resnet18")
    assert isinstance(resnet.maxpool, MaxPool2d)
    stock = torchvision.models.resnet18(weights=None, norm_layer=torchvision_misc.FrozenBatchNorm2d)
    assert resnet.state_dict().keys() == stock.state_dict().keys()  # checkpoints load either way


def _act_policy(**overrides) -> ACTPolicy:
    config = act_config(**overrides)
    torch.manual_seed(0)
    return ACTPolicy(config, dataset_stats=make_stats(config.input_features | config.output_features))


def test_conv_weights_are_laid_out_for_inference_only_outside_training():
    policy = _act_policy()
    convs = [p for p in policy.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous() for p in convs)
    observation = make_observation(policy.config)
    values = [p.detach().clone() for p in convs]
    policy.train()
    reference = policy.eval().predict_action_chunk(observation)  # the first switch converts
    for p, value in zip(convs, values, strict=True):
        assert torch.equal(p, value)
        assert p.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(policy.predict_action_chunk(observation), reference)
    policy.train()
    assert all(p.is_contiguous() for p in convs)
    policy(make_batch(policy.config))["loss"].backward()
    assert all(p.grad is not None and p.grad.is_contiguous() for p in convs)


def test_vae_encoder_cls_only_last_layer_equals_the_full_stack():
    for pre_norm in (False, True):
        policy = _act_policy(n_vae_encoder_layers=2, pre_norm=pre_norm).eval()  # eval: no dropout
        encoder = policy.model.vae_encoder
        x = torch.randn(7, 3, policy.config.dim_model)
        pos = torch.randn(7, 1, policy.config.dim_model)
        mask = torch.zeros(3, 7, dtype=torch.bool)
        mask[0, -2:] = True
        full = encoder(x, pos_embed=pos, key_padding_mask=mask)
        first = encoder(x, pos_embed=pos, key_padding_mask=mask, first_token_only=True)
        assert first.shape == (1, 3, policy.config.dim_model)
        torch.testing.assert_close(first[0], full[0], rtol=1e-5, atol=1e-6)


def _random_frozen_norm(layer: nn.Module, channels: int, seed: int) -> nn.Module:
    gen = torch.Generator().manual_seed(seed)
    layer.load_state_dict(
        {
            "weight": torch.rand(channels, generator=gen) + 0.5,
            "bias": torch.randn(channels, generator=gen),
            "running_mean": torch.randn(channels, generator=gen),
            "running_var": torch.rand(channels, generator=gen) + 0.5,
        }
    )
    return layer


def test_frozen_batch_norm_caches_its_affine_map_and_notices_new_statistics():
    ours = _random_frozen_norm(FrozenBatchNorm2d(16), 16, seed=0)
    stock = _random_frozen_norm(torchvision_misc.FrozenBatchNorm2d(16), 16, seed=0)
    x = torch.randn(2, 16, 5, 5)
    with torch.no_grad():
        assert torch.equal(ours(x), stock(x))
        assert torch.equal(ours(x), stock(x))  # from the cache
        _random_frozen_norm(ours, 16, seed=1)  # load_state_dict copies in place
        _random_frozen_norm(stock, 16, seed=1)
        assert torch.equal(ours(x), stock(x))
        ours.running_var = ours.running_var * 4  # a new tensor object
        stock.running_var = stock.running_var * 4
        assert torch.equal(ours(x), stock(x))
        ours.double()
        assert ours(x.double()).dtype == torch.float64
    ours.float()
    with torch.inference_mode():
        ours(x)  # cached under inference mode ...
    x.requires_grad_(True)
    ours(x).sum().backward()  # ... and not reused where autograd saves the scale
    torch.testing.assert_close(x.grad, ours._affine[2].expand_as(x))


def test_inference_results_are_ordinary_tensors_and_training_still_works():
    policy = _act_policy()
    observation = make_observation(policy.config)
    action = policy.select_action(observation)["action"]
    chunk = policy.predict_action_chunk(observation)
    assert not action.is_inference() and not chunk.is_inference()
    action.clamp_(-1.0, 1.0)  # in place, as a safety layer would
    chunk.add_(1.0)
    policy.train()
    policy(make_batch(policy.config))["loss"].backward()
    assert all(
        not p.is_inference() and p.grad is not None
        for p in policy.model.backbone.parameters()
        if p.requires_grad
    )


@pytest.mark.parametrize(
    ("channels", "size", "stride", "bias", "by_product"),
    [(256, 3, 1, False, True), (512, 5, 2, True, True), (64, 3, 1, False, False), (256, 8, 1, False, False)],
)
def test_conv_weight_gradient_by_matrix_product_matches_the_stock_layer(
    channels, size, stride, bias, by_product
):
    torch.manual_seed(0)
    stock = nn.Conv2d(channels, 32, 3, stride=stride, padding=1, bias=bias)
    ours = Conv2d(channels, 32, 3, stride=stride, padding=1, bias=bias)
    ours.load_state_dict(stock.state_dict())
    x = torch.randn(4, channels, size, size)
    grads = []
    for layer in (stock, ours):
        inp = x.clone().requires_grad_(True)
        out = layer(inp)
        if layer is ours:
            assert ("GemmWeightGrad" in type(out.grad_fn).__name__) == by_product
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        grads.append((out.detach(), inp.grad, *(p.grad for p in layer.parameters())))
    for expected, got in zip(*grads, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(grads[0][0], grads[1][0])  # the forward is the stock convolution


def test_resnet_convolutions_are_ours():
    resnet = make_resnet("resnet18")
    assert all(type(m) is Conv2d for m in resnet.modules() if isinstance(m, nn.Conv2d))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "bias", "batch", "size"),
    [
        (3, 1, 1, 1, False, 1, 3),
        (3, 2, 1, 1, True, 2, 6),
        (1, 1, 0, 1, False, 1, 4),
        (3, 1, 2, 2, True, 3, 5),
    ],
)
def test_patch_product_inference_convolution_matches_the_stock_layer(
    monkeypatch, kernel, stride, padding, dilation, bias, batch, size
):
    monkeypatch.setattr(layers, "_ONEDNN_MIN_WEIGHTS", 0)  # these small weights take the product too
    monkeypatch.setattr(layers, "_PATCH_PRODUCT_MAX_ROWS", 75)  # and the 3 x 5 x 5 outputs below
    torch.manual_seed(0)
    ours = Conv2d(64, 32, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
    x = torch.randn(batch, 64, size, size)
    calls = []
    monkeypatch.setattr(
        ours,
        "_patch_product",
        lambda x, size, product=ours._patch_product: calls.append(1) or product(x, size),
    )
    with torch.no_grad():
        expected = nn.functional.conv2d(x, ours.weight, ours.bias, stride, padding, dilation)
        layers.set_conv_weight_layouts(ours, training=False)
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(
            ours(x.contiguous(memory_format=torch.channels_last)), expected, rtol=1e-5, atol=1e-5
        )
    assert len(calls) == 2
    layers.set_conv_weight_layouts(ours, training=True)
    assert ours.weight.is_contiguous()


def test_patch_product_is_for_few_output_positions(monkeypatch):
    conv = Conv2d(256, 256, 3, padding=1, bias=False)  # 2**19 weights: over the size floor
    layers.set_conv_weight_layouts(conv, training=False)
    calls = []
    monkeypatch.setattr(conv, "_patch_product", lambda x, size: calls.append(x.shape[0]) or x)
    with torch.no_grad():
        conv(torch.randn(1, 256, 6, 6))  # 36 positions: streams the weights
        out = conv(torch.randn(8, 256, 6, 6))  # 288: the kernel, with no unfolded copy
    assert calls == [1] and out.shape == (8, 256, 6, 6)


@pytest.mark.parametrize("shape", [(11, 256), (2, 11, 256), (5, 3, 256)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_f_linear_and_reads_the_current_weights(monkeypatch, shape, bias):
    if layers._ONEDNN_LINEAR is None:
        pytest.skip("this torch build has no oneDNN: layers.linear is F.linear")
    calls = []
    onednn = layers._ONEDNN_LINEAR
    monkeypatch.setattr(layers, "_ONEDNN_LINEAR", lambda *args: calls.append(1) or onednn(*args))
    torch.manual_seed(0)
    layer = layers.Linear(256, 1024, bias=bias)  # 2**18 weights: oneDNN's matrix product
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
        layer.weight.mul_(-2.0)  # an optimiser step in between: no stale copy of the old weights
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), F.linear(x, layer.weight, layer.bias), rtol=1e-5, atol=1e-5)
    assert len(calls) == 3
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer(x).dtype == torch.bfloat16  # autocast's choice stands
    strided = layer.weight.detach().t().contiguous().t()  # oneDNN rejects it: F.linear serves
    with torch.no_grad():
        torch.testing.assert_close(layers.linear(x, strided), F.linear(x, strided), rtol=0, atol=0)
    assert len(calls) == 3
    y = layer(x.requires_grad_())  # with grad: the stock op and its autograd formula
    assert len(calls) == 3
    y.square().sum().backward()
    assert layer.weight.grad is not None and x.grad is not None
    assert (
        isinstance(layer, nn.Linear)
        and layer.state_dict().keys() == nn.Linear(256, 1024, bias=bias).state_dict().keys()
    )


@pytest.mark.parametrize("pre_norm", [False, True])
def test_decoder_shortcut_for_zero_queries_equals_full_attention(pre_norm):
    policy = _act_policy(pre_norm=pre_norm, n_decoder_layers=2).eval()
    decoder, cfg = policy.model.decoder, policy.config
    queries = torch.zeros(cfg.chunk_size, 3, cfg.dim_model)
    memory = torch.randn(7, 3, cfg.dim_model)
    pos = {
        "decoder_pos_embed": torch.randn(cfg.chunk_size, 1, cfg.dim_model),
        "encoder_pos_embed": torch.randn(7, 1, cfg.dim_model),
    }
    with torch.no_grad():
        full = decoder(queries, memory, **pos)
        short = decoder(queries, memory, **pos, zero_queries=True)
    torch.testing.assert_close(short, full, rtol=1e-5, atol=1e-6)
