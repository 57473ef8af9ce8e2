"""CPU acceleration of a stock policy: one opt-in transform, :func:`accelerate`.

Policies are built from stock torch / torchvision modules and run as such on every device. On the
CPU a few of those modules have a faster equivalent for the shapes the policies use; ``accelerate``
swaps them in, in place, and nothing else:

``dropout``
    ``nn.Dropout`` while training draws one uniform per *dropped* element (an i.i.d. Bernoulli mask
    is the same thing as drops separated by i.i.d. geometric gaps) instead of one per element.
``conv2d_inference``
    ``nn.Conv2d`` without autograd calls oneDNN's convolution directly: for a single small image
    PyTorch's dispatcher otherwise picks its slower im2col kernel. Small convolutions (under
    ``OneDnnConv2d.min_macs`` multiply-adds per call, e.g. TD-MPC's 8-channel encoder) keep the stock
    op: there oneDNN's per-call setup costs more than it saves.
``conv1d``
    ``nn.Conv1d`` (Diffusion's U-Net over short action sequences with wide channels) as one matrix
    product over the unfolded time windows, where oneDNN spends more time setting up than computing.

Each piece is kept because it saves at least 3% of a benchmarked step
(``benchmarks/cpu_acceleration.py``; the numbers are in ``benchmarks/results``). All are the same
float32 math as the stock module, summed in another order; no parameter, buffer or state-dict key
changes, so checkpoints save and load alike. The replacements are subclasses of the stock modules
that share the original parameters, so an optimiser built before the call keeps working.

``conv2d_inference`` calls an op that is private to torch (``torch.mkldnn_convolution``), whose
signature may change in any release. Once per process each piece is run against its stock module
on a tiny input; a piece that fails or differs is left out, with one log line saying so. While
``torch.jit.trace``, ``torch.export`` or ``torch.onnx.export`` records a call, every piece runs its stock
op, so an export of an accelerated policy holds stock ops only.

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

logger = logging.getLogger(__name__)

PIECES = ("dropout", "conv2d_inference", "conv1d")


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
    if (
        kind is nn.Conv2d
        and "conv2d_inference" in pieces
        and module.padding_mode == "zeros"
        and not isinstance(module.padding, str)
    ):
        return _share_parameters(module, OneDnnConv2d(module))
    if (
        kind is nn.Conv1d
        and "conv1d" in pieces
        and (module.groups, module.padding_mode, module.dilation) == (1, "zeros", (1,))
        and not isinstance(module.padding, str)
    ):
        return _share_parameters(module, WindowMatmulConv1d(module))
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


def _recording() -> bool:
    """Whether ``torch.jit.trace``, ``torch.export`` / ``torch.onnx.export`` or ``torch.compile`` is recording
    the call: then the stock op runs, so an export of an accelerated policy is a stock graph."""
    return torch.jit.is_tracing() or torch.compiler.is_compiling()


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


# ---- convolutions -----------------------------------------------------------------------------------
class OneDnnConv2d(nn.Conv2d):
    """``nn.Conv2d`` that calls oneDNN's convolution when there is no autograd and the call is big enough;
    the stock layer otherwise."""

    min_macs: int = 5_000_000
    """Multiply-adds of a call below which the stock op runs (``benchmarks/cpu_acceleration.py``)."""

    def __init__(self, stock: nn.Conv2d):
        super().__init__(**_stock_arguments(stock), groups=stock.groups)
        self._macs_per_output = self.weight[0].numel()  # multiply-adds behind one output value

    def forward(self, x: Tensor) -> Tensor:
        _require_cpu(x, self)
        if (
            self._multiply_adds(x) < self.min_macs  # first: the cheapest test, and the usual reason
            or torch.is_grad_enabled()
            or x.dtype != torch.float32
            or torch.is_autocast_enabled("cpu")
            or _recording()
        ):  # the stock op (padding_mode "zeros", as _accelerated requires)
            return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)
        return torch.mkldnn_convolution(
            x, self.weight, self.bias, self.padding, self.stride, self.dilation, self.groups
        )

    def _multiply_adds(self, x: Tensor) -> int:
        """About the multiply-adds of this call (output size from the input size and stride)."""
        *lead, height, width = x.shape
        batch = lead[0] if len(lead) == 2 else 1
        stride_h, stride_w = self.stride
        return batch * (height // stride_h) * (width // stride_w) * self.out_channels * self._macs_per_output


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
        if (self.in_channels * k < 512 and not torch.is_grad_enabled()) or _recording():
            return super().forward(x)
        windows = F.pad(x, (pad, pad)).unfold(2, k, stride)  # (B, C_in, L_out, k)
        windows = windows.transpose(1, 2).flatten(2)  # (B, L_out, C_in * k)
        out = F.linear(windows, self.weight.reshape(self.out_channels, -1), self.bias)  # (B, L_out, C_out)
        return out.transpose(1, 2)


# ---- the once-per-process check -----------------------------------------------------------------------
def _same(got: Tensor, expected: Tensor) -> None:
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


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


def _check_conv2d() -> None:
    torch.manual_seed(0)
    stock = nn.Conv2d(8, 4, 3, stride=2, padding=1)
    twin = _share_parameters(stock, OneDnnConv2d(stock))
    twin.min_macs = 0  # a tiny input, through oneDNN all the same
    _check_stock_twin(stock, twin, torch.randn(1, 8, 5, 5))


def _check_conv1d() -> None:
    torch.manual_seed(0)
    stock = nn.Conv1d(128, 8, 5, padding=2)  # 640 inputs x taps: the product also without autograd
    _check_stock_twin(stock, _share_parameters(stock, WindowMatmulConv1d(stock)), torch.randn(2, 128, 6))


_CHECKS: dict[str, Callable[[], None]] = {
    "dropout": lambda: None,  # public ops only; its distribution is tested in tests/policies
    "conv2d_inference": _check_conv2d,
    "conv1d": _check_conv1d,
}


@functools.cache
def verified(piece: str) -> bool:
    """Whether ``piece`` matches its stock module on this torch build (checked once per process)."""
    try:
        with (
            torch.inference_mode(False),
            torch.enable_grad(),  # the check back-propagates, whatever the caller's mode
            torch.random.fork_rng(devices=[]),  # and seeds its inputs without moving the caller's RNG
        ):
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
