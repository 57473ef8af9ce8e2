"""CPU acceleration of a stock policy: one opt-in transform, :func:`accelerate`.

Policies are built from stock torch / torchvision modules and run as such on every device. On the
CPU a few of those modules have a faster equivalent for the shapes the policies use; ``accelerate``
swaps them in, in place, and nothing else:

``dropout``
    ``nn.Dropout`` while training draws one uniform per *dropped* element (an i.i.d. Bernoulli mask
    is the same thing as drops separated by i.i.d. geometric gaps) instead of one per element.
``max_pool``
    ``nn.MaxPool2d`` pools channels-last and back-propagates channels-first (PyTorch's NCHW forward
    and its channels-last backward are the slow halves); same maxima, ties and gradients.
``conv2d_weight_grad``
    ``nn.Conv2d`` on tiny, wide maps (ResNet's layer4) computes its weight gradient as one matrix
    product over unfolded patches instead of oneDNN's convolution-backward kernel.
``conv2d_inference``
    ``nn.Conv2d`` without autograd calls oneDNN's convolution directly: for a single small image
    PyTorch's dispatcher otherwise picks its slower im2col kernel.
``conv1d``
    ``nn.Conv1d`` (Diffusion's U-Net over short action sequences with wide channels) as one matrix
    product over the unfolded time windows, where oneDNN spends more time setting up than computing.
``linear``
    ``nn.Linear`` with a big weight and no autograd (ACT's batch-1 feed-forward layers) through
    oneDNN's matrix product, which streams such weights faster than the default GEMM.

Each piece is kept because it saves at least 3% of a benchmarked step
(``benchmarks/cpu_acceleration.py``; the numbers are in ``benchmarks/results``). All are the same
float32 math as the stock module, summed in another order; no parameter, buffer or state-dict key
changes, so checkpoints save and load alike. The replacements are subclasses of the stock modules
that share the original parameters, so an optimiser built before the call keeps working.

Several pieces call ops that are private to torch (``torch.ops.mkldnn._linear_pointwise``,
``torch.mkldnn_convolution``, ``aten.max_pool2d_with_indices_backward``,
``aten.convolution_backward``), whose signatures may change in any release. Once per process each
piece is run against its stock module on a tiny input; a piece that fails or differs is left out,
with one log line saying so.

The scripts (``lerobot-train``, ``-eval``, ``-record``, ``-deploy``, the demo and the policy server)
apply it when the policy runs on the CPU, unless ``--cpu_acceleration=false``.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Collection
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair

logger = logging.getLogger(__name__)

PIECES = ("dropout", "max_pool", "conv2d_weight_grad", "conv2d_inference", "conv1d", "linear")


def accelerate(policy: nn.Module, pieces: Collection[str] = PIECES) -> nn.Module:
    """Swap the stock modules of a CPU ``policy`` for the faster equivalents in ``pieces``; return it.

    Refuses a module with any parameter or buffer off the CPU. Idempotent; state dict unchanged.
    """
    unknown = set(pieces) - set(PIECES)
    if unknown:
        raise ValueError(f"Unknown CPU acceleration pieces {sorted(unknown)}; choose from {list(PIECES)}.")
    off_cpu = {str(t.device) for t in [*policy.parameters(), *policy.buffers()] if t.device.type != "cpu"}
    if off_cpu:
        raise ValueError(
            f"accelerate() is for policies on the CPU; this one has tensors on {sorted(off_cpu)}. "
            "Accelerators run the stock modules as they are: skip the transform there."
        )
    usable = {piece for piece in pieces if verified(piece)}
    for parent in list(policy.modules()):
        for name, child in list(parent.named_children()):
            replacement = _accelerated(child, usable)
            if replacement is not None:
                setattr(parent, name, replacement.train(child.training))
    return policy


def accelerate_on_cpu(policy: nn.Module, enabled: bool = True) -> nn.Module:
    """What the scripts call: :func:`accelerate` when ``enabled`` and the policy lives on the CPU."""
    devices = {t.device.type for t in policy.parameters()}
    if enabled and devices <= {"cpu"}:
        accelerate(policy)
        logger.info("CPU acceleration on (lerobot.policies.cpu_acceleration; --cpu_acceleration=false: off).")
    return policy


def _accelerated(module: nn.Module, pieces: set[str]) -> nn.Module | None:
    """The accelerated twin of a stock ``module`` (sharing its parameters), or None to keep it."""
    kind = type(module)  # exact types: subclasses (MultiheadAttention's out_proj, ours) are left alone
    if kind is nn.Dropout and "dropout" in pieces:
        return GapDropout(module.p, module.inplace)
    if kind is nn.MaxPool2d and "max_pool" in pieces and not module.return_indices:
        return ChannelsLastMaxPool2d(
            module.kernel_size, module.stride, module.padding, module.dilation, ceil_mode=module.ceil_mode
        )
    if kind is nn.Conv2d and module.groups == 1 and module.padding_mode == "zeros":
        inference, weight_grad = "conv2d_inference" in pieces, "conv2d_weight_grad" in pieces
        if inference or weight_grad:
            return _share_parameters(module, AcceleratedConv2d(module, inference, weight_grad))
    if (
        kind is nn.Conv1d
        and "conv1d" in pieces
        and (module.groups, module.padding_mode, module.dilation) == (1, "zeros", (1,))
        and not isinstance(module.padding, str)
    ):
        return _share_parameters(module, WindowMatmulConv1d(module))
    if kind is nn.Linear and "linear" in pieces:
        return _share_parameters(module, OneDnnLinear(module))
    return None


def _share_parameters(stock: nn.Module, accelerated: nn.Module) -> nn.Module:
    """Point ``accelerated`` at ``stock``'s parameter objects (same names, so the same state dict)."""
    for name, param in stock.named_parameters(recurse=False):
        setattr(accelerated, name, param)
    return accelerated


def _stock_arguments(conv: nn.Module) -> dict[str, Any]:
    """Constructor arguments of a stock convolution, weights allocated nowhere (replaced right after)."""
    return {
        "in_channels": conv.in_channels,
        "out_channels": conv.out_channels,
        "kernel_size": conv.kernel_size,
        "stride": conv.stride,
        "padding": conv.padding,
        "dilation": conv.dilation,
        "bias": conv.bias is not None,
        "device": "meta",
    }


def _require_cpu(x: Tensor, module: nn.Module) -> None:
    if x.device.type != "cpu":
        raise RuntimeError(
            f"{type(module).__name__} comes from lerobot.policies.cpu_acceleration and runs on the CPU only, "
            f"got a {x.device.type} tensor: build the policy again (without accelerate) for that device."
        )


# ---- dropout ----------------------------------------------------------------------------------------
class GapDropout(nn.Dropout):
    """``nn.Dropout`` whose training mask places only the dropped elements (geometric gaps)."""

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0:
            return x
        _require_cpu(x, self)
        if self.p == 1.0:
            return x * 0.0
        mask = dropout_scale_mask(x.numel(), self.p, x.dtype).view(x.shape)
        return x.mul_(mask) if self.inplace else x * mask


_EXTRA_SIGMAS = 6.0


def dropout_scale_mask(numel: int, p: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """Flat ``(numel,)`` mask: 0 with probability ``p`` independently per element, else ``1 / (1 - p)``.

    The gap from one drop to the next is Geometric(p) on {1, 2, ...}, drawn by inversion from a
    float64 uniform of the torch RNG (so seeding reproduces it): ``floor(log(1 - u) / log(1 - p)) + 1``.
    """
    mask = torch.full((numel,), 1.0 / (1.0 - p), dtype=dtype)
    log_keep = math.log1p(-p)
    last = -1  # position of the latest drop
    while True:
        remaining = numel - 1 - last
        spread = math.sqrt(remaining * p * (1.0 - p))
        draws = max(int(remaining * p + _EXTRA_SIGMAS * spread) + 16, 16)  # rarely too few: then loop
        gaps = torch.rand(draws, dtype=torch.float64).neg_().log1p_().div_(log_keep).floor_().add_(1.0)
        positions = gaps.cumsum_(0).add_(last).long()
        if positions[-1] >= numel:  # the process has left the tensor: done
            mask.index_fill_(0, positions[positions < numel], 0.0)
            return mask
        mask.index_fill_(0, positions, 0.0)
        last = int(positions[-1])


# ---- max pool ---------------------------------------------------------------------------------------
class ChannelsLastMaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d``: channels-last forward, NCHW backward with the same indices.

    Both layouts number positions within a plane alike, so the outputs, the chosen maxima and the
    gradients are the stock ones exactly; only the memory walk differs.
    """

    def forward(self, x: Tensor) -> Tensor:
        _require_cpu(x, self)
        if x.dim() != 4 or x.is_contiguous(memory_format=torch.channels_last):  # already the fast layout
            return super().forward(x)
        args = (
            _pair(self.kernel_size),
            _pair(self.stride if self.stride is not None else self.kernel_size),
            _pair(self.padding),
            _pair(self.dilation),
            self.ceil_mode,
        )
        if not (torch.is_grad_enabled() and x.requires_grad):
            return F.max_pool2d(x.contiguous(memory_format=torch.channels_last), *args).contiguous()
        return _ChannelsLastMaxPool.apply(x, args)


class _ChannelsLastMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, args: tuple) -> Tensor:
        out, indices = torch.ops.aten.max_pool2d_with_indices(
            x.contiguous(memory_format=torch.channels_last), *args
        )
        ctx.save_for_backward(x, indices.contiguous())
        ctx.args = args
        return out.contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        x, indices = ctx.saved_tensors
        grad_x = torch.ops.aten.max_pool2d_with_indices_backward(grad.contiguous(), x, *ctx.args, indices)
        return grad_x, None


# ---- matrix products --------------------------------------------------------------------------------
_ONEDNN_MIN_WEIGHTS = (
    2**18
)  # 1 MB of float32: below it oneDNN's fixed cost per call outweighs its faster stream


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear``; for big float32 weights without autograd, oneDNN's matrix product instead.

    oneDNN's op (the one ``torch.compile`` emits for CPU linears) has no autograd formula, hence
    grad-free calls only (inference, and backward formulas, which run without grad). It reads the
    weight as it is at each call: no cached copy goes stale.
    """
    if (
        not _ONEDNN_LINEAR_OK
        or torch.is_grad_enabled()
        or torch.is_autocast_enabled("cpu")  # autocast picks the dtype: leave the op to it
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or weight.numel() < _ONEDNN_MIN_WEIGHTS
        or not weight.is_contiguous()  # oneDNN rejects strided weights
    ):
        return F.linear(x, weight, bias)
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


_ONEDNN_LINEAR_OK = False  # set by verified("linear")


class OneDnnLinear(nn.Linear):
    """``nn.Linear`` computed by :func:`linear`; same parameters and state-dict keys."""

    def __init__(self, stock: nn.Linear):
        super().__init__(stock.in_features, stock.out_features, stock.bias is not None, device="meta")

    def forward(self, x: Tensor) -> Tensor:
        _require_cpu(x, self)
        return linear(x, self.weight, self.bias)


class AcceleratedConv2d(nn.Conv2d):
    """``nn.Conv2d`` with oneDNN at inference and/or a matrix-product weight gradient on tiny maps."""

    def __init__(self, stock: nn.Conv2d, inference: bool, weight_grad: bool):
        super().__init__(**_stock_arguments(stock))
        self.inference, self.weight_grad = inference, weight_grad

    def forward(self, x: Tensor) -> Tensor:
        _require_cpu(x, self)
        if x.dim() != 4 or x.dtype != torch.float32:
            return super().forward(x)
        if not torch.is_grad_enabled():
            if self.inference:
                return torch.mkldnn_convolution(
                    x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups
                )
            return super().forward(x)
        if (
            self.weight_grad
            and self.weight.requires_grad
            and self.in_channels * self.kernel_size[0] * self.kernel_size[1] >= _GEMM_WEIGHT_GRAD_MIN_DEPTH
            and math.prod(_output_size(x.shape[-2:], self)) <= _GEMM_WEIGHT_GRAD_MAX_POSITIONS
        ):
            return _GemmWeightGradConv.apply(
                x, self.weight, self.bias, self.stride, self.padding, self.dilation
            )
        return super().forward(x)


_GEMM_WEIGHT_GRAD_MIN_DEPTH = 256 * 9  # input channels x kernel positions
_GEMM_WEIGHT_GRAD_MAX_POSITIONS = 9  # output rows x columns


def _output_size(size: tuple[int, ...], conv: nn.Conv2d) -> tuple[int, ...]:
    """(oh, ow) of ``conv`` applied to an (H, W) map."""
    return tuple(
        (n + 2 * p - d * (k - 1) - 1) // s + 1
        for n, k, s, p, d in zip(
            size, conv.kernel_size, conv.stride, conv.padding, conv.dilation, strict=True
        )
    )


class _GemmWeightGradConv(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: Tensor, weight: Tensor, bias: Tensor | None, stride: Any, padding: Any, dilation: Any
    ) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conv = (stride, padding, dilation)
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, stride, padding, dilation)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        stride, padding, dilation = ctx.conv
        grad_x = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x, weight, None, stride, padding, dilation, False, [0, 0], 1, [True, False, False]
            )[0]
        if ctx.needs_input_grad[1]:
            out_channels = weight.shape[0]
            patches = F.unfold(x, weight.shape[-2:], dilation=dilation, padding=padding, stride=stride)
            grad_rows = grad.flatten(2).transpose(0, 1).reshape(out_channels, -1)  # (O, N*L)
            columns = patches.transpose(0, 1).reshape(patches.shape[1], -1)  # (C*k*k, N*L)
            grad_weight = linear(grad_rows, columns).view(weight.shape)  # (O, C*k*k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_x, grad_weight, grad_bias, None, None, None


class WindowMatmulConv1d(nn.Conv1d):
    """``nn.Conv1d`` as one matrix product over the unfolded time windows.

    While training every convolution takes the product; without autograd only those from 512
    inputs x taps on (below, oneDNN's kernel is as fast at batch 1).
    """

    def __init__(self, stock: nn.Conv1d):
        super().__init__(**_stock_arguments(stock))

    def forward(self, x: Tensor) -> Tensor:
        _require_cpu(x, self)
        (k,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        if self.in_channels * k < 512 and not torch.is_grad_enabled():
            return super().forward(x)
        windows = F.pad(x, (pad, pad)).unfold(2, k, stride)  # (B, C_in, L_out, k)
        windows = windows.transpose(1, 2).flatten(2)  # (B, L_out, C_in * k)
        out = linear(windows, self.weight.reshape(self.out_channels, -1), self.bias)  # (B, L_out, C_out)
        return out.transpose(1, 2)


# ---- the once-per-process check -----------------------------------------------------------------------
def _same(got: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def _check_linear() -> None:
    global _ONEDNN_LINEAR_OK
    _ONEDNN_LINEAR_OK = False
    x, weight, bias = torch.randn(3, 8), torch.randn(5, 8), torch.randn(5)
    with torch.no_grad():
        _same(torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], ""), F.linear(x, weight, bias))
    _ONEDNN_LINEAR_OK = True


def _check_stock_twin(stock: nn.Module, accelerated: nn.Module, x: Tensor) -> None:
    """Forward (with and without autograd) and input/parameter gradients equal the stock module's."""
    with torch.no_grad():
        _same(accelerated(x), stock(x))
    outputs = []
    for module in (stock, accelerated):
        inp = x.clone().requires_grad_(True)
        out = module(inp)
        out.backward(torch.linspace(-1, 1, out.numel()).view_as(out))
        outputs.append((out.detach(), inp.grad, *(p.grad for p in module.parameters())))
        module.zero_grad(set_to_none=True)  # the twins share their parameters
    for got, expected in zip(outputs[1], outputs[0], strict=True):
        _same(got, expected)


def _check_max_pool() -> None:
    x = F.relu(torch.randn(2, 3, 7, 9, generator=torch.Generator().manual_seed(0)))
    _check_stock_twin(nn.MaxPool2d(3, 2, 1), ChannelsLastMaxPool2d(3, 2, 1), x)


def _check_conv2d(inference: bool) -> Callable[[], None]:
    def check() -> None:
        torch.manual_seed(0)
        stock = nn.Conv2d(256, 4, 3, padding=1)  # 256 x 9 inputs: the weight-gradient product's depth
        accelerated = _share_parameters(stock, AcceleratedConv2d(stock, inference, not inference))
        _check_stock_twin(stock, accelerated, torch.randn(2, 256, 3, 3))

    return check


def _check_conv1d() -> None:
    torch.manual_seed(0)
    stock = nn.Conv1d(128, 8, 5, padding=2)  # 640 inputs x taps: the product also without autograd
    _check_stock_twin(stock, _share_parameters(stock, WindowMatmulConv1d(stock)), torch.randn(2, 128, 6))


_CHECKS: dict[str, Callable[[], None]] = {
    "dropout": lambda: None,  # public ops only; its distribution is tested in tests/policies
    "max_pool": _check_max_pool,
    "conv2d_weight_grad": _check_conv2d(inference=False),
    "conv2d_inference": _check_conv2d(inference=True),
    "conv1d": _check_conv1d,
    "linear": _check_linear,
}


@functools.cache
def verified(piece: str) -> bool:
    """Whether ``piece`` matches its stock module on this torch build (checked once per process)."""
    try:
        if piece != "linear":
            verified("linear")  # the products below go through it
        _CHECKS[piece]()
    except Exception as e:  # an op renamed, a signature changed, a result that differs: all mean "stock"
        logger.warning(
            "CPU acceleration: %r left out, it does not match the stock op on torch %s (%s: %s).",
            piece,
            torch.__version__,
            type(e).__name__,
            str(e).splitlines()[0] if str(e) else "",
        )
        return False
    return True
