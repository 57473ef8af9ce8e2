"""Small pieces the policies share where PyTorch's stock CPU path is measurably slow.

Same math as the stock code (float32, the same dropout distribution, no parameters added), so
checkpoints and results are interchangeable; ``benchmarks/policies.py`` measures what they save.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair


class Dropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask comes from one uniform draw instead of ``bernoulli_``.

    On CPU ``F.dropout`` fills its mask with ``bernoulli_``, about 9 ns per element here: a tenth of
    an ACT training step. ``rand >= p`` keeps each element with probability ``1 - p`` just the
    same and costs a third as much. The kept elements are scaled by ``1 / (1 - p)`` as usual. On
    other devices the fused stock kernel is already the fast one.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu":
            return super().forward(x)
        if self.p == 1.0:
            return x * 0.0
        keep = torch.rand_like(x).ge_(self.p).mul_(1.0 / (1.0 - self.p))  # 0 or 1/(1-p)
        return x.mul_(keep) if self.inplace else x * keep


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
