"""The CPU transform keeps the stock math and state: dropout's distribution, pooling ties, gradients, checkpoints."""

from __future__ import annotations

import logging

import pytest
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from safetensors.torch import load_file
from tests.policies.conftest import act_config, diffusion_config, make_batch, make_observation, make_stats
from torch import nn
from torchvision.ops import misc as torchvision_misc

from lerobot.policies import cpu_acceleration
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.policies.backbones import make_resnet
from lerobot.policies.cpu_acceleration import (
    GapDropout,
    OneDnnConv2d,
    WindowMatmulConv1d,
    accelerate,
    accelerate_on_cpu,
)
from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy


def _policy(kind: str, **overrides):
    config = act_config(**overrides) if kind == "act" else diffusion_config(**overrides)
    torch.manual_seed(0)
    cls = ACTPolicy if kind == "act" else DiffusionPolicy
    return cls(config, dataset_stats=make_stats(config.input_features | config.output_features))


# ---- the policies are stock ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["act", "diffusion"])
def test_policies_are_built_from_stock_torch_and_torchvision_modules(kind):
    policy = _policy(kind)
    for name, module in policy.named_modules():
        where = type(module).__module__
        assert where.startswith(("torch.nn.", "torchvision.", "lerobot.policies.")), (name, where)
        if where.startswith("lerobot."):  # our own containers: compositions, never a stock layer's subclass
            stock_bases = [
                b for b in type(module).__mro__[1:] if b.__module__.startswith("torch.nn.modules.")
            ]
            assert stock_bases == [nn.Module], (name, type(module).__mro__)
    resnet = make_resnet("resnet18")
    assert isinstance(resnet.bn1, torchvision_misc.FrozenBatchNorm2d)
    assert type(resnet.maxpool) is nn.MaxPool2d and type(resnet.conv1) is nn.Conv2d
    stock = torchvision.models.resnet18(weights=None, norm_layer=torchvision_misc.FrozenBatchNorm2d)
    assert resnet.state_dict().keys() == stock.state_dict().keys()


# ---- the transform ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["act", "diffusion"])
def test_accelerate_never_changes_a_state_dict(kind, tmp_path):
    stock = _policy(kind)
    accelerated = accelerate(_policy(kind))
    swapped = [m for m in accelerated.modules() if type(m).__module__ == cpu_acceleration.__name__]
    assert swapped  # something was accelerated
    assert accelerate(accelerated) is accelerated  # idempotent
    before, after = stock.state_dict(), accelerated.state_dict()
    assert list(before) == list(after)
    assert all(torch.equal(before[k], after[k]) for k in before)
    stock.save_pretrained(tmp_path / "stock")
    accelerated.save_pretrained(tmp_path / "accelerated")
    saved = [load_file(str(tmp_path / d / "model.safetensors")) for d in ("stock", "accelerated")]
    assert saved[0].keys() == saved[1].keys()
    assert all(torch.equal(saved[0][k], saved[1][k]) for k in saved[0])
    loaded = type(stock).from_pretrained(tmp_path / "accelerated")  # and loads into the stock policy
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in before.items() if k in loaded.state_dict())


def test_accelerated_modules_share_the_parameters_an_optimizer_already_holds():
    policy = _policy("act")
    params = {id(p) for p in policy.parameters()}
    accelerate(policy)
    assert {id(p) for p in policy.parameters()} == params


@pytest.mark.parametrize("kind", ["act", "diffusion"])
def test_accelerated_policy_predicts_and_trains_like_the_stock_one(kind):
    stock, accelerated = _policy(kind), accelerate(_policy(kind))
    observation = make_observation(stock.config)
    torch.manual_seed(1)
    expected = stock.predict_action_chunk(observation)
    torch.manual_seed(1)
    torch.testing.assert_close(accelerated.predict_action_chunk(observation), expected, rtol=1e-4, atol=1e-4)
    # Training: ACT with dropout 0 (the accelerated mask is another draw of the same distribution).
    if kind == "act":
        stock, accelerated = _policy(kind, dropout=0.0), accelerate(_policy(kind, dropout=0.0))
    batch = make_batch(stock.config)
    grads = []
    for policy in (stock, accelerated):
        policy.train()
        torch.manual_seed(2)
        policy(batch)["loss"].backward()
        grads.append([p.grad for p in policy.parameters() if p.requires_grad])
    for got, want in zip(grads[1], grads[0], strict=True):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-5)


def test_inference_results_are_ordinary_tensors_and_training_still_works():
    policy = accelerate(_policy("act"))
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


def test_accelerate_refuses_tensors_off_the_cpu():
    policy = _policy("act").to("meta")
    with pytest.raises(ValueError, match="on the CPU.*meta"):
        accelerate(policy)
    assert accelerate_on_cpu(policy) is policy  # the scripts' helper leaves such a policy stock
    assert not any(type(m).__module__ == cpu_acceleration.__name__ for m in policy.modules())
    conv = accelerate(nn.Sequential(nn.Conv2d(3, 4, 3)))[0]
    conv.to("meta")  # moved after the transform
    with pytest.raises(RuntimeError, match="CPU only, got a meta tensor"):
        conv(torch.zeros(1, 3, 5, 5, device="meta"))


def test_scripts_helper_obeys_its_flag():
    assert (
        type(accelerate_on_cpu(_policy("act"), enabled=False).model.encoder.layers[0].dropout) is nn.Dropout
    )
    assert type(accelerate_on_cpu(_policy("act")).model.encoder.layers[0].dropout) is GapDropout


def test_a_piece_that_differs_from_the_stock_op_is_left_out_with_one_log_line(monkeypatch, caplog):
    def differs() -> None:
        raise AssertionError("Tensor-likes are not close!")

    monkeypatch.setitem(cpu_acceleration._CHECKS, "conv2d_inference", differs)
    cpu_acceleration.verified.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger=cpu_acceleration.__name__):
            first, second = accelerate(_policy("act")), accelerate(_policy("act"))
        assert type(first.model.backbone.conv1) is nn.Conv2d  # stock kept
        assert type(second.model.encoder.layers[0].dropout) is GapDropout  # the other pieces apply
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1 and "'conv2d_inference' left out" in lines[0]
    finally:
        cpu_acceleration.verified.cache_clear()


def test_unknown_piece_is_one_clear_error():
    with pytest.raises(ValueError, match="Unknown CPU acceleration pieces.*'batch_norm'"):
        accelerate(_policy("act"), pieces=["batch_norm"])


# ---- the pieces ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_dropout_keeps_one_minus_p_scaled_like_nn_dropout(p):
    torch.manual_seed(0)
    layer = GapDropout(p)
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
    assert isinstance(layer, nn.Dropout) and torch.equal(GapDropout(0.0)(x), x)


@pytest.mark.parametrize("extra_sigmas", [6.0, -20.0])  # -20: too few gaps per draw, the loop continues
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_dropout_mask_is_iid_bernoulli(monkeypatch, p, extra_sigmas):
    monkeypatch.setattr(cpu_acceleration, "_EXTRA_SIGMAS", extra_sigmas)
    torch.manual_seed(0)
    n = 2_000_000
    mask = cpu_acceleration.dropout_scale_mask(n, p)
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
    first = cpu_acceleration.dropout_scale_mask(10_000, 0.1)
    torch.manual_seed(3)
    assert torch.equal(cpu_acceleration.dropout_scale_mask(10_000, 0.1), first)
    assert not torch.equal(cpu_acceleration.dropout_scale_mask(10_000, 0.1), first)


def test_dropout_in_place_and_extremes():
    torch.manual_seed(0)
    x = torch.ones(1000)
    y = GapDropout(0.3, inplace=True)(x)
    assert y is x and 0.6 < (x != 0).float().mean() < 0.8
    assert torch.equal(GapDropout(1.0)(torch.ones(5)), torch.zeros(5))


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "dilation", "bias", "batch", "size"),
    [
        (3, 1, 1, 1, False, 1, 3),
        (3, 2, 1, 1, True, 2, 6),
        (1, 1, 0, 1, False, 1, 4),
        (3, 1, 2, 2, True, 3, 5),
    ],
)
def test_inference_convolution_matches_the_stock_layer(kernel, stride, padding, dilation, bias, batch, size):
    torch.manual_seed(0)
    stock = nn.Conv2d(64, 32, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias)
    x = torch.randn(batch, 64, size, size)
    with torch.no_grad():
        expected = stock(x)
        ours = accelerate(nn.Sequential(stock))[0]
        assert type(ours) is OneDnnConv2d
        ours.min_macs = 0  # these small inputs through oneDNN all the same
        torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-5)
        channels_last = x.contiguous(memory_format=torch.channels_last)
        torch.testing.assert_close(ours(channels_last), expected, rtol=1e-5, atol=1e-5)
    assert ours.weight is stock.weight


def test_small_convolutions_keep_the_stock_op(monkeypatch):
    """oneDNN's per-call setup outweighs its kernel below ``min_macs`` (TD-MPC's 8-channel encoder)."""
    calls = []
    onednn = torch.mkldnn_convolution
    monkeypatch.setattr(torch, "mkldnn_convolution", lambda *args: calls.append(1) or onednn(*args))
    small = accelerate(nn.Sequential(nn.Conv2d(8, 8, 3, stride=2)))[0]
    big = accelerate(nn.Sequential(nn.Conv2d(256, 256, 3, padding=1)))[0]
    with torch.no_grad():
        small(torch.randn(1, 8, 13, 13))
        assert calls == []
        big(torch.randn(1, 256, 6, 6))  # 21 M multiply-adds
        assert calls == [1]


@pytest.mark.parametrize(
    ("channels", "length", "kernel", "stride", "padding"),
    [
        (16, 8, 5, 1, 2),
        (128, 4, 5, 1, 2),
        (256, 16, 3, 1, 1),
        (64, 16, 3, 2, 1),
        (6, 16, 1, 1, 0),
        (32, 9, 4, 2, 1),
    ],
)
def test_window_matmul_conv_equals_conv1d(channels, length, kernel, stride, padding):
    torch.manual_seed(0)
    plain = nn.Conv1d(channels, 24, kernel, stride=stride, padding=padding)
    fast = accelerate(nn.Sequential(nn.Conv1d(channels, 24, kernel, stride=stride, padding=padding)))[0]
    assert type(fast) is WindowMatmulConv1d
    fast.load_state_dict(plain.state_dict())
    x = torch.randn(3, channels, length, requires_grad=True)
    torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the inference rule may pick the other path
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-5, atol=1e-5)
    grad_fast = torch.autograd.grad(fast(x).square().sum(), [x, fast.weight, fast.bias])
    grad_plain = torch.autograd.grad(plain(x).square().sum(), [x, plain.weight, plain.bias])
    for a, b in zip(grad_fast, grad_plain, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_the_checks_run_whatever_autograd_mode_the_caller_is_in():
    policy = _policy("act")
    cpu_acceleration.verified.cache_clear()
    try:
        with torch.inference_mode():
            accelerate(policy)
        assert type(policy.model.backbone.conv1) is OneDnnConv2d
    finally:
        cpu_acceleration.verified.cache_clear()


def test_the_once_per_process_checks_leave_the_global_rng_alone():
    """A check seeds its own inputs; the training run that triggers it keeps its random stream."""
    from lerobot.policies import cpu_acceleration

    for piece in cpu_acceleration.PIECES:
        cpu_acceleration.verified.cache_clear()
        torch.manual_seed(123)
        expected = torch.rand(4)
        torch.manual_seed(123)
        assert cpu_acceleration.verified(piece)
        assert torch.equal(torch.rand(4), expected), piece
