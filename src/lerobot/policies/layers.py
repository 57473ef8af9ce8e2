"""Small pieces the policies share where PyTorch's stock CPU path is measurably slow.

Same math as the stock code (float32, the same dropout distribution, no parameters added), so
checkpoints and results are interchangeable; ``benchmarks/policies.py`` measures what they save.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


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
