"""Training-time augmentations for camera frames and state vectors.

Every transform samples its random parameters once per call and applies them to the whole input, so a
``(T, C, H, W)`` stack of timesteps from one sample is augmented consistently (the policy sees one
camera, not T independently jittered ones). Parameters come from torch's global RNG, so
``torch.manual_seed`` and the DataLoader's per-worker seeding make runs reproducible, and every
transform is a plain ``nn.Module`` so it pickles into DataLoader worker processes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torchvision.transforms.v2.functional as F
from torch import nn
from torchvision.transforms import v2

__all__ = [
    "AddGaussianNoise",
    "ColorJitter",
    "ImageTransformConfig",
    "ImageTransforms",
    "ImageTransformsConfig",
    "RandomCrop",
    "RandomShift",
    "SharpnessJitter",
    "make_transform_from_config",
]

Range = tuple[float, float]


def _uniform(low: float, high: float) -> float:
    """Draw from torch's RNG (not Python's) so ``torch.manual_seed`` governs every augmentation."""
    return torch.empty(()).uniform_(low, high).item()


def _factor_range(value: float | Sequence[float], name: str, center: float = 1.0) -> Range | None:
    """Normalise torchvision-style ``float | (min, max)`` arguments; ``None`` means "leave unchanged"."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
        low, high = max(0.0, center - value), center + value
    else:
        low, high = (float(v) for v in value)
        if not 0.0 <= low <= high:
            raise ValueError(f"{name} range must satisfy 0 <= min <= max, got ({low}, {high})")
    return None if low == high == center else (float(low), float(high))


def _hue_range(value: float | Sequence[float]) -> Range | None:
    """Hue shifts are fractions of the colour wheel, so unlike the other factors they centre on 0."""
    if isinstance(value, (int, float)):
        if not 0.0 <= value <= 0.5:
            raise ValueError(f"hue must be in [0, 0.5], got {value}")
        low, high = -float(value), float(value)
    else:
        low, high = (float(v) for v in value)
        if not -0.5 <= low <= high <= 0.5:
            raise ValueError(f"hue range must satisfy -0.5 <= min <= max <= 0.5, got ({low}, {high})")
    return None if low == high == 0.0 else (low, high)


class RandomCrop(nn.Module):
    """Random-resized crop that keeps the aspect ratio and the output size.

    Resizing back to the input size (instead of returning a smaller crop) keeps every sample the same
    shape, so batches stack and the policy's input layer does not change between training and eval.
    """

    def __init__(self, scale: Sequence[float] = (0.8, 1.0)) -> None:
        super().__init__()
        low, high = (float(s) for s in scale)
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"scale must satisfy 0 < min <= max <= 1, got ({low}, {high})")
        self.scale: Range = (low, high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        side = math.sqrt(_uniform(*self.scale))
        crop_h = min(height, max(1, round(height * side)))
        crop_w = min(width, max(1, round(width * side)))
        top = int(torch.randint(0, height - crop_h + 1, ()).item())
        left = int(torch.randint(0, width - crop_w + 1, ()).item())
        return F.resized_crop(x, top, left, crop_h, crop_w, [height, width], antialias=True)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"


class RandomShift(nn.Module):
    """Shift the frame by up to ``pad`` pixels each way: edge-pad, then crop back to the input size.

    The augmentation of DrQ (Kostrikov et al. 2021) and DrQ-v2 that makes pixel policies learn from a
    few demonstrations: unlike a resized crop it keeps the scale, so an object's apparent size (which
    tells a policy how far away it is) is left as the fixed camera sees it. Edge padding, not zeros, so
    no black border appears that evaluation frames never have.
    """

    def __init__(self, pad: int = 4) -> None:
        super().__init__()
        if int(pad) < 0:
            raise ValueError(f"pad must be non-negative, got {pad}")
        self.pad = int(pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad == 0:
            return x
        height, width = x.shape[-2:]
        flat = x.reshape(-1, *x.shape[-3:])  # replicate padding wants a batch dim; (T, C, H, W) has one
        padded = nn.functional.pad(flat, [self.pad] * 4, mode="replicate").reshape(
            *x.shape[:-2], height + 2 * self.pad, width + 2 * self.pad
        )
        top = int(torch.randint(0, 2 * self.pad + 1, ()).item())
        left = int(torch.randint(0, 2 * self.pad + 1, ()).item())
        return padded[..., top : top + height, left : left + width]

    def extra_repr(self) -> str:
        return f"pad={self.pad}"


class ColorJitter(nn.Module):
    """Brightness/contrast/saturation/hue jitter with torchvision's argument conventions.

    Re-implemented rather than wrapping ``v2.ColorJitter`` so the sampled factors are explicit and the
    class stays a small, stable pickle target regardless of torchvision's internals.
    """

    def __init__(
        self,
        brightness: float | Sequence[float] = 0,
        contrast: float | Sequence[float] = 0,
        saturation: float | Sequence[float] = 0,
        hue: float | Sequence[float] = 0,
    ) -> None:
        super().__init__()
        self.brightness = _factor_range(brightness, "brightness")
        self.contrast = _factor_range(contrast, "contrast")
        self.saturation = _factor_range(saturation, "saturation")
        self.hue = _hue_range(hue)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ops: list[tuple[Range | None, Callable[[torch.Tensor, float], torch.Tensor]]] = [
            (self.brightness, F.adjust_brightness),
            (self.contrast, F.adjust_contrast),
            (self.saturation, F.adjust_saturation),
            (self.hue, F.adjust_hue),
        ]
        # Like torchvision, the order is shuffled per call: the ops do not commute, and a fixed order
        # would bias the distribution of augmented images.
        for idx in torch.randperm(len(ops)).tolist():
            bounds, op = ops[idx]
            if bounds is not None:
                x = op(x, _uniform(*bounds))
        return x

    def extra_repr(self) -> str:
        return (
            f"brightness={self.brightness}, contrast={self.contrast}, "
            f"saturation={self.saturation}, hue={self.hue}"
        )


class SharpnessJitter(nn.Module):
    """Random sharpness factor: <1 blurs, >1 sharpens, 1 is identity.

    torchvision only offers a probabilistic fixed-factor sharpness transform; sampling the factor from
    a range gives a continuum of focus/motion-blur conditions instead of two discrete ones.
    """

    def __init__(self, sharpness: float | Sequence[float] = (0.5, 1.5)) -> None:
        super().__init__()
        self.sharpness = _factor_range(sharpness, "sharpness")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.sharpness is None:
            return x
        return F.adjust_sharpness(x, _uniform(*self.sharpness))

    def extra_repr(self) -> str:
        return f"sharpness={self.sharpness}"


class AddGaussianNoise(nn.Module):
    """Additive Gaussian noise, for state vectors (robustness to sensor noise) as well as images.

    The noise itself is drawn independently per element (that is what sensor noise looks like); only
    its distribution is fixed. ``clamp=None`` clamps to [0, 1] when the input looks like an image
    (3+ dims), since a float frame outside [0, 1] is not a valid image, while state vectors are left
    unbounded.
    """

    def __init__(self, std: float = 0.01, mean: float = 0.0, clamp: bool | None = None) -> None:
        super().__init__()
        if std < 0:
            raise ValueError(f"std must be non-negative, got {std}")
        self.std = float(std)
        self.mean = float(mean)
        self.clamp = clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(f"AddGaussianNoise needs a floating-point tensor, got {x.dtype}")
        out = x + torch.randn_like(x) * self.std + self.mean
        clamp = x.ndim >= 3 if self.clamp is None else self.clamp
        return out.clamp_(0.0, 1.0) if clamp else out

    def extra_repr(self) -> str:
        return f"std={self.std}, mean={self.mean}, clamp={self.clamp}"


_TRANSFORM_TYPES: dict[str, Callable[..., nn.Module]] = {
    "Identity": nn.Identity,
    "ColorJitter": ColorJitter,
    "SharpnessJitter": SharpnessJitter,
    "RandomCrop": RandomCrop,
    "RandomShift": RandomShift,
    # torchvision's v2 transforms already sample once per call for a batched (T, C, H, W) tensor,
    # use torch's RNG and pickle, so the affine warp needs no re-implementation.
    "RandomAffine": v2.RandomAffine,
    "AddGaussianNoise": AddGaussianNoise,
}


@dataclass
class ImageTransformConfig:
    """One named augmentation: its registered ``type``, constructor ``kwargs`` and sampling weight."""

    weight: float = 1.0
    type: str = "Identity"
    kwargs: dict[str, Any] = field(default_factory=dict)


def _default_tfs() -> dict[str, ImageTransformConfig]:
    return {
        "brightness": ImageTransformConfig(type="ColorJitter", kwargs={"brightness": (0.8, 1.2)}),
        "contrast": ImageTransformConfig(type="ColorJitter", kwargs={"contrast": (0.8, 1.2)}),
        "saturation": ImageTransformConfig(type="ColorJitter", kwargs={"saturation": (0.5, 1.5)}),
        "hue": ImageTransformConfig(type="ColorJitter", kwargs={"hue": (-0.05, 0.05)}),
        "sharpness": ImageTransformConfig(type="SharpnessJitter", kwargs={"sharpness": (0.5, 1.5)}),
        "affine": ImageTransformConfig(
            type="RandomAffine", kwargs={"degrees": (-5.0, 5.0), "translate": (0.05, 0.05)}
        ),
    }


@dataclass
class ImageTransformsConfig:
    """Which augmentations ``ImageTransforms`` may draw from, and how many per sample.

    Off by default: augmentation is a training choice, and a dataset opened for inspection or
    evaluation should return frames exactly as recorded.
    """

    enable: bool = False
    """Augment the training frames (evaluation and val_loss always see frames as recorded)."""
    max_num_transforms: int = 3
    """How many of ``tfs`` each sample gets, drawn by weight without replacement."""
    random_order: bool = False
    """Apply the drawn transforms in random order (default: the order of ``tfs``)."""
    tfs: dict[str, ImageTransformConfig] = field(default_factory=_default_tfs)
    """Name -> {type, kwargs, weight}; types: ColorJitter, SharpnessJitter, RandomCrop, RandomShift,
    RandomAffine, AddGaussianNoise, Identity."""


def make_transform_from_config(cfg: ImageTransformConfig | Mapping[str, Any]) -> nn.Module:
    """Build one transform; plain mappings are accepted so configs loaded from JSON/YAML work as-is."""
    cfg = _as_transform_config(cfg)
    factory = _TRANSFORM_TYPES.get(cfg.type)
    if factory is None:
        known = ", ".join(sorted(_TRANSFORM_TYPES))
        raise ValueError(f"Unknown image transform type {cfg.type!r}; known types: {known}")
    return factory(**cfg.kwargs)


def _as_transform_config(cfg: ImageTransformConfig | Mapping[str, Any]) -> ImageTransformConfig:
    return ImageTransformConfig(**cfg) if isinstance(cfg, Mapping) else cfg


class ImageTransforms(nn.Module):
    """Apply a weighted random subset of the configured transforms to each sample.

    Drawing a few transforms per sample (rather than all of them) keeps most frames close to the
    recorded distribution while still covering every augmentation over an epoch. The transforms are
    built even when disabled so a typo in a config fails at startup, not when someone turns it on.
    """

    def __init__(self, cfg: ImageTransformsConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.transforms = nn.ModuleDict()
        # A plain list, not a buffer, so ``.to(device)`` / ``.half()`` on a parent module cannot turn
        # the sampling weights into something ``torch.multinomial`` rejects.
        self.weights: list[float] = []
        for name, tf_cfg in cfg.tfs.items():
            tf_cfg = _as_transform_config(tf_cfg)
            transform = make_transform_from_config(tf_cfg)
            if tf_cfg.weight > 0:
                self.transforms[name] = transform
                self.weights.append(float(tf_cfg.weight))
        if cfg.enable and self.transforms and cfg.max_num_transforms < 1:
            raise ValueError(f"max_num_transforms must be >= 1, got {cfg.max_num_transforms}")
        self.num_to_apply = min(cfg.max_num_transforms, len(self.weights)) if cfg.enable else 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.num_to_apply == 0:
            return x
        weights = torch.tensor(self.weights, dtype=torch.float64)
        chosen = torch.multinomial(weights, self.num_to_apply, replacement=False).tolist()
        transforms = list(self.transforms.values())
        for idx in chosen if self.cfg.random_order else sorted(chosen):
            x = transforms[idx](x)
        return x
