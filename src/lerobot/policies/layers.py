"""Small pieces the policies share where PyTorch's stock CPU path is measurably slow.

Same math as the stock code (float32, the same dropout distribution, no parameters added), so
checkpoints and results are interchangeable; ``benchmarks/policies.py`` measures what they save.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair
from torchvision.ops import misc as torchvision_misc


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask is drawn by placing only the dropped elements.

    On CPU ``F.dropout`` fills its mask with ``bernoulli_``, about 9 ns per element here, and even
    one uniform per element (``rand >= p``) costs 6-7 ns: a tenth of an ACT training step. An
    i.i.d. Bernoulli mask is the same thing as drops separated by i.i.d. geometric gaps, so
    :func:`dropout_scale_mask` draws one uniform per *dropped* element (a tenth of them at
    p = 0.1). Kept elements are scaled by ``1 / (1 - p)`` as usual; the torch RNG drives it, so
    seeding and resuming reproduce the masks. On other devices the fused stock kernel stays.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        mask = dropout_scale_mask(x.numel(), self.p, x.dtype).view(x.shape)
        return x.mul_(mask) if self.inplace else x * mask


_EXTRA_SIGMAS = 6.0


def dropout_scale_mask(numel: int, p: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """Flat ``(numel,)`` mask: 0 with probability ``p`` independently per element, else ``1 / (1 - p)``.

    The gap from one drop to the next is Geometric(p) on {1, 2, ...}, drawn by inversion from a
    float64 uniform: ``floor(log(1 - u) / log(1 - p)) + 1``.
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


def inference_layout(images: Tensor, training: bool) -> Tensor:
    """(N, C, H, W) images channels-last (NHWC) at inference; unchanged (NCHW) while training.

    :meth:`PreTrainedPolicy.train` stores convolution weights channels-last outside training; feeding
    NHWC images too lets oneDNN run every layer without a reorder.
    """
    return images if training else images.contiguous(memory_format=torch.channels_last)


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` whose CPU training path pools channels-last and back-propagates channels-first.

    PyTorch's NCHW max-pool forward on CPU is a scalar loop: ResNet's stem pool over
    8x64x48x48 takes 8 ms here, the channels-last kernel 0.8 ms. Its channels-last *backward*
    is the slow one instead, so the gradient goes through the NCHW kernel with the same indices
    (both layouts number positions within a plane alike). The outputs, the chosen maxima and
    hence the gradients are the stock ones exactly; only the memory walk differs.
    """

    def forward(self, x: Tensor) -> Tensor:
        if (
            x.device.type != "cpu"
            or x.dim() != 4
            or self.return_indices
            or x.is_contiguous(memory_format=torch.channels_last)  # already the fast layout
        ):
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


class FrozenBatchNorm2d(torchvision_misc.FrozenBatchNorm2d):
    """torchvision's ``FrozenBatchNorm2d`` that keeps its per-channel scale and shift between calls.

    The stock module rebuilds them from its four buffers on every call: nine tiny ops per layer,
    which at batch-1 inference cost more than applying them (ResNet18 has 20 such layers). Without
    autograd the pair is cached and rebuilt when any buffer is replaced or modified in place
    (``load_state_dict``, ``.to()``); the output is the stock ``x * scale + shift`` bit for bit.
    With autograd on (training) the stock path runs unchanged.
    """

    def __init__(self, num_features: int, eps: float = 1e-5):
        super().__init__(num_features, eps)
        self._affine: tuple[tuple[Tensor, ...], tuple[int | bool, ...], Tensor, Tensor] | None = None

    def forward(self, x: Tensor) -> Tensor:
        buffers = (self.weight, self.bias, self.running_mean, self.running_var)
        if torch.is_grad_enabled() or any(b.is_inference() for b in buffers):  # the latter have no versions
            return super().forward(x)
        # The cache holds the buffers themselves, so "the same object" cannot be a recycled address;
        # tensors made under inference_mode must not leak out of it, hence the mode in the state.
        state = (torch.is_inference_mode_enabled(), *(b._version for b in buffers))
        cached = self._affine
        if cached is None or cached[1] != state or any(a is not b for a, b in zip(cached[0], buffers)):
            scale = (
                self.weight.reshape(1, -1, 1, 1) * (self.running_var.reshape(1, -1, 1, 1) + self.eps).rsqrt()
            )
            shift = self.bias.reshape(1, -1, 1, 1) - self.running_mean.reshape(1, -1, 1, 1) * scale
            cached = self._affine = (buffers, state, scale, shift)
        return (x * cached[2]).add_(cached[3])


_ONEDNN_LINEAR = (
    getattr(torch.ops.mkldnn, "_linear_pointwise", None) if torch.backends.mkldnn.is_available() else None
)
_ONEDNN_MIN_WEIGHTS = 2**18  # 1 MB of float32: below it oneDNN's ~20 us per call outweighs its faster stream


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear``; for big float32 weights at CPU inference, oneDNN's matrix product instead.

    A few rows times a big weight -- ACT's batch-1 transformer (11 tokens through 256x3200
    feed-forward weights), ResNet's layers 3-4 as patch products -- only streams the weight from
    memory. MKL's GEMM behind ``F.linear`` reads such weights at 5-9 GB/s here, oneDNN's at
    13-18 GB/s (a copy runs at 29); compute-bound products such as :class:`Conv2d`'s weight
    gradient run 10-20% faster too (205-215 against 172-186 GFLOPS on this AMD CPU). oneDNN's call
    costs ~20 us more, hence the size floor, and its op (the one ``torch.compile`` emits for CPU
    linears) has no autograd formula, hence grad-free calls only. It reads the weight as it is at
    each call (no cached copy goes stale). The same float32 sums in another order.
    """
    if (
        _ONEDNN_LINEAR is None
        or torch.is_grad_enabled()
        or x.device.type != "cpu"
        or torch.is_autocast_enabled("cpu")  # autocast picks the dtype: leave the op to it
        or x.dtype != torch.float32
        or weight.dtype != torch.float32
        or weight.numel() < _ONEDNN_MIN_WEIGHTS
        or not weight.is_contiguous()  # oneDNN rejects strided weights
    ):
        return F.linear(x, weight, bias)
    return _ONEDNN_LINEAR(x, weight, bias, "none", [], "")


class Linear(nn.Linear):
    """``nn.Linear`` computed by :func:`linear`; same parameters and state-dict keys."""

    def forward(self, x: Tensor) -> Tensor:
        return linear(x, self.weight, self.bias)


class Conv2d(nn.Conv2d):
    """``nn.Conv2d`` with two CPU paths where oneDNN's convolution is measurably slow; same state.

    * Training, tiny and wide maps: the weight gradient is one matrix product over unfolded
      patches, by :func:`linear`. oneDNN's convolution kernel takes 8 ms for ResNet18's layer4 on
      a 84x84 crop (3x3 maps, 512 channels, 16 images), the product 2.7 ms (a tenth of a Diffusion
      training step over the three such layers; at 4x4 maps, or 256 channels and 6x6, the kernel
      is as fast or faster). Forward and input gradient stay the kernel's.
    * Inference, weights from 1 MB on and at most 64 output positions in all (ResNet18's layers
      3-4 on one small image): such a call mostly streams the weights. Outside training
      :func:`set_conv_weight_layouts` stores them channels-last, which viewed as
      ``(O, kh*kw*C)`` is a linear layer's weight for NHWC patches, and ``forward`` computes the
      convolution as :func:`linear` of the unfolded patches (ACT's batch-1 call: 18.8 -> 14.2 ms
      together with :class:`Linear`). More positions make the product compute-bound, where the
      kernel needs no unfolded copy of the input.

    Both are the same sums in float32, in another order. Other shapes, devices and modes run the
    stock layer.
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or x.dim() != 4 or self.groups != 1 or self.padding_mode != "zeros":
            return super().forward(x)
        if not torch.is_grad_enabled():
            out_size = _output_size(x.shape[-2:], self)
            if (
                self.weight.numel() >= _ONEDNN_MIN_WEIGHTS
                and self.weight.is_contiguous(memory_format=torch.channels_last)
                and x.shape[0] * math.prod(out_size) <= _PATCH_PRODUCT_MAX_ROWS
            ):
                return self._patch_product(x, out_size)
            return super().forward(x)
        if (
            self.weight.requires_grad
            and self.in_channels * self.kernel_size[0] * self.kernel_size[1] >= _GEMM_WEIGHT_GRAD_MIN_DEPTH
            and math.prod(_output_size(x.shape[-2:], self)) <= _GEMM_WEIGHT_GRAD_MAX_POSITIONS
        ):
            return _GemmWeightGradConv.apply(
                x, self.weight, self.bias, self.stride, self.padding, self.dilation
            )
        return super().forward(x)

    def _patch_product(self, x: Tensor, out_size: tuple[int, ...]) -> Tensor:
        """Convolution as :func:`linear` of (N*oh*ow, kh*kw*C) patches; NHWC in, channels-last out."""
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        n, channels = x.shape[:2]
        oh, ow = out_size
        nhwc = F.pad(x.permute(0, 2, 3, 1), (0, 0, pw, pw, ph, ph)).contiguous()
        s_n, s_h, s_w, s_c = nhwc.stride()
        patches = nhwc.as_strided(
            (n, oh, ow, kh, kw, channels), (s_n, s_h * sh, s_w * sw, s_h * dh, s_w * dw, s_c)
        )
        weight = self.weight.permute(0, 2, 3, 1).reshape(self.out_channels, -1)  # a view: channels-last
        out = linear(patches.reshape(n * oh * ow, -1), weight, self.bias)
        return out.view(n, oh, ow, self.out_channels).permute(0, 3, 1, 2)


_GEMM_WEIGHT_GRAD_MIN_DEPTH = 256 * 9  # input channels x kernel positions
_GEMM_WEIGHT_GRAD_MAX_POSITIONS = 9  # output rows x columns
_PATCH_PRODUCT_MAX_ROWS = 64  # images x output positions


def set_conv_weight_layouts(module: nn.Module, training: bool) -> None:
    """Store every 4-D weight in the memory order its mode runs fastest in (values unchanged).

    Training: contiguous (NCHW), which oneDNN's backward and the fused optimisers want. Inference:
    channels-last, so a single observation runs oneDNN without reorders, and the big
    :class:`Conv2d` weights are the linear layers :meth:`Conv2d._patch_product` streams.
    """
    memory_format = torch.contiguous_format if training else torch.channels_last
    for param in module.parameters():
        if param.dim() == 4 and not param.is_contiguous(memory_format=memory_format):
            param.data = param.data.contiguous(memory_format=memory_format)


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
            patches = F.unfold(
                x, weight.shape[-2:], dilation=dilation, padding=padding, stride=stride
            )  # (N, C*k*k, L)
            grad_rows = grad.flatten(2).transpose(0, 1).reshape(out_channels, -1)  # (O, N*L)
            columns = patches.transpose(0, 1).reshape(patches.shape[1], -1)  # (C*k*k, N*L)
            grad_weight = linear(grad_rows, columns).view(weight.shape)  # (O, C*k*k)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = grad.sum((0, 2, 3))
        return grad_x, grad_weight, grad_bias, None, None, None
