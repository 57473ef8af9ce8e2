"""Vision backbones shared by the policies: torchvision ResNets and spatial-softmax keypoints.

``pretrained_backbone_weights`` may be

* ``None`` -- random initialisation;
* a local file (``.pth``/``.pt`` or ``.safetensors``) holding a torchvision ResNet state dict, e.g.
  ``resnet18-f37072fd.pth`` fetched once from ``https://download.pytorch.org/models/`` -- the way to
  get ImageNet weights on a machine without network;
* a torchvision weights name such as ``"ResNet18_Weights.IMAGENET1K_V1"`` (LeRobot's default): read
  from the torch hub cache (``$TORCH_HOME/hub/checkpoints``) when present, downloaded otherwise
  (unless ``HF_HUB_OFFLINE=1``). When it cannot be had, a warning says how to provide the file and
  the backbone starts from random weights.

While a checkpoint is being loaded (:func:`skip_pretrained_backbone_weights`) nothing is fetched:
the checkpoint's own weights replace the backbone's anyway.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
import torchvision
from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops.misc import FrozenBatchNorm2d

from lerobot.datasets.hub import hub_offline

logger = logging.getLogger(__name__)
_SKIP_WEIGHTS = False


@contextlib.contextmanager
def skip_pretrained_backbone_weights() -> Iterator[None]:
    """Build models without fetching backbone weights (used by ``from_pretrained``)."""
    global _SKIP_WEIGHTS
    previous, _SKIP_WEIGHTS = _SKIP_WEIGHTS, True
    try:
        yield
    finally:
        _SKIP_WEIGHTS = previous


def make_resnet_feature_extractor(
    name: str, weights: str | None = None, replace_final_stride_with_dilation: bool = False
) -> tuple[nn.Module, int]:
    """``resnetXX`` up to ``layer4`` (returns ``{"feature_map": (B, C, H/32, W/32)}``) and its C."""
    resnet = make_resnet(name, weights, replace_final_stride_with_dilation=replace_final_stride_with_dilation)
    out_channels = resnet.fc.in_features
    return IntermediateLayerGetter(resnet, return_layers={"layer4": "feature_map"}), out_channels


def make_resnet(
    name: str,
    weights: str | None = None,
    *,
    norm_layer: Callable[[int], nn.Module] = FrozenBatchNorm2d,
    replace_final_stride_with_dilation: bool = False,
) -> torchvision.models.ResNet:
    """A whole torchvision ResNet with ``weights`` loaded (see the module docstring).

    ``norm_layer`` is FrozenBatchNorm2d by default (ACT); Diffusion Policy trains ``nn.BatchNorm2d``
    or uses group norm (no pretrained weights then).
    """
    if not name.startswith("resnet") or not hasattr(torchvision.models, name):
        raise ValueError(
            f"vision_backbone must be a torchvision ResNet (resnet18, resnet34, ...), got {name!r}."
        )
    if replace_final_stride_with_dilation and name in ("resnet18", "resnet34"):
        raise ValueError(
            f"replace_final_stride_with_dilation=true needs a ResNet built from bottleneck blocks (resnet50, "
            f"resnet101, ...): torchvision cannot dilate {name}'s basic blocks. Set it to false or pick another "
            "vision_backbone."
        )
    resnet = getattr(torchvision.models, name)(
        weights=None,
        replace_stride_with_dilation=[False, False, replace_final_stride_with_dilation],
        norm_layer=norm_layer,
    )
    if weights is not None and not _SKIP_WEIGHTS:
        state = load_backbone_state_dict(weights)
        if state is not None:
            # Batch-norm step counters are bookkeeping only: present or not, they never change outputs.
            state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
            missing, unexpected = resnet.load_state_dict(state, strict=False)
            missing = [k for k in missing if not k.endswith("num_batches_tracked")]
            if missing or unexpected:
                raise ValueError(
                    f"pretrained_backbone_weights={weights!r} do not fit a {name}: missing {missing[:5]}, "
                    f"unexpected {unexpected[:5]}."
                )
    return resnet


def load_backbone_state_dict(weights: str) -> dict[str, torch.Tensor] | None:
    path = Path(weights).expanduser()
    if path.is_file():
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
        return state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        weight_enum = torchvision.models.get_weight(weights)
    except (ValueError, AttributeError, KeyError) as e:
        raise FileNotFoundError(
            f"pretrained_backbone_weights={weights!r} is neither a file nor a torchvision weights name "
            "(like 'ResNet18_Weights.IMAGENET1K_V1')."
        ) from e
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weight_enum.url)
    if cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    if not hub_offline():
        try:
            return weight_enum.get_state_dict(progress=False)
        except Exception as e:  # no network, proxy, ...: fall through to the warning below
            logger.debug("Downloading %s failed: %s", weight_enum.url, e)
    warnings.warn(
        f"Backbone weights {weights!r} are not available offline: put {weight_enum.url} at {cached} "
        "(or anywhere, and set pretrained_backbone_weights to that path). Starting from random weights.",
        UserWarning,
        stacklevel=3,
    )
    return None


class SpatialSoftmax(nn.Module):
    """Feature map -> expected (x, y) image position of each keypoint (Levine et al. 2016).

    A 1x1 convolution turns the C channels into K keypoint heat maps; a softmax over each map's
    pixels weights a grid of coordinates in [-1, 1]: (B, C, H, W) -> (B, K, 2).
    """

    def __init__(self, in_channels: int, height: int, width: int, num_kp: int | None = None):
        super().__init__()
        self.nets = nn.Conv2d(in_channels, num_kp, kernel_size=1) if num_kp is not None else None
        self.num_kp = num_kp or in_channels
        pos_x, pos_y = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
        grid = np.stack([pos_x.reshape(-1), pos_y.reshape(-1)], axis=1)  # (H * W, 2), x then y
        self.register_buffer("pos_grid", torch.from_numpy(grid).float())

    def forward(self, features: Tensor) -> Tensor:
        if self.nets is not None:
            features = self.nets(features)
        attention = F.softmax(features.flatten(2), dim=-1)  # (B, K, H * W)
        return attention @ self.pos_grid  # (B, K, 2)
