from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from lerobot.datasets.transforms import (
    AddGaussianNoise,
    ColorJitter,
    ImageTransformConfig,
    ImageTransforms,
    ImageTransformsConfig,
    RandomCrop,
    RandomShift,
    SharpnessJitter,
    make_transform_from_config,
)

# Every image transform, with parameters wide enough that each call visibly changes the image.
IMAGE_TRANSFORMS = {
    "random_crop": lambda: RandomCrop(scale=(0.5, 0.9)),
    "random_shift": lambda: RandomShift(pad=6),
    "color_jitter": lambda: ColorJitter(brightness=0.3, contrast=0.3, saturation=0.5, hue=0.1),
    "sharpness": lambda: SharpnessJitter((0.2, 3.0)),
    "affine": lambda: make_transform_from_config(
        ImageTransformConfig(type="RandomAffine", kwargs={"degrees": 20, "translate": (0.1, 0.1)})
    ),
    "pipeline": lambda: ImageTransforms(ImageTransformsConfig(enable=True, max_num_transforms=6)),
}


def _image(*leading: int, c: int = 3, h: int = 24, w: int = 32) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1234)
    return torch.rand(*leading, c, h, w, generator=gen)


class _Recorder(nn.Module):
    """Identity that logs its name, to see which transforms the pipeline picked and in what order."""

    def __init__(self, name: str, log: list[str]) -> None:
        super().__init__()
        self.name = name
        self.log = log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.log.append(self.name)
        return x


def _with_recorders(cfg: ImageTransformsConfig) -> tuple[ImageTransforms, list[str]]:
    pipeline = ImageTransforms(cfg)
    log: list[str] = []
    for name in list(pipeline.transforms):
        pipeline.transforms[name] = _Recorder(name, log)
    return pipeline, log


@pytest.mark.parametrize("name", sorted(IMAGE_TRANSFORMS))
@pytest.mark.parametrize("leading", [(), (3,)], ids=["CHW", "TCHW"])
def test_shape_dtype_and_range_kept(name: str, leading: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    x = _image(*leading)
    y = IMAGE_TRANSFORMS[name]()(x)
    assert y.shape == x.shape
    assert y.dtype == torch.float32
    assert y.min() >= 0.0 and y.max() <= 1.0


@pytest.mark.parametrize("name", sorted(IMAGE_TRANSFORMS))
def test_same_params_for_every_timestep(name: str) -> None:
    torch.manual_seed(0)
    frame = _image()
    stacked = frame.expand(4, *frame.shape).clone()
    transform = IMAGE_TRANSFORMS[name]()
    out = transform(stacked)
    for t in range(1, 4):
        torch.testing.assert_close(out[t], out[0], rtol=0, atol=0)
    assert not torch.equal(out[0], frame), "transform should have changed the frame"


@pytest.mark.parametrize("name", sorted(IMAGE_TRANSFORMS))
def test_seeded_reproducibility(name: str) -> None:
    transform = IMAGE_TRANSFORMS[name]()
    x = _image(2)
    torch.manual_seed(7)
    first = transform(x)
    torch.manual_seed(7)
    second = transform(x)
    torch.manual_seed(8)
    other = transform(x)
    assert torch.equal(first, second)
    assert not torch.equal(first, other)


@pytest.mark.parametrize("name", sorted(IMAGE_TRANSFORMS))
def test_pickle_round_trip(name: str) -> None:
    transform = IMAGE_TRANSFORMS[name]()
    clone = pickle.loads(pickle.dumps(transform))
    x = _image()
    torch.manual_seed(3)
    expected = transform(x)
    torch.manual_seed(3)
    assert torch.equal(clone(x), expected)


def test_disabled_config_is_identity() -> None:
    pipeline = ImageTransforms(ImageTransformsConfig())
    x = _image(2)
    assert pipeline(x) is x


def test_default_config_matches_lerobot_defaults() -> None:
    cfg = ImageTransformsConfig()
    assert (cfg.enable, cfg.max_num_transforms, cfg.random_order) == (False, 3, False)
    assert {name: (tf.type, tf.kwargs) for name, tf in cfg.tfs.items()} == {
        "brightness": ("ColorJitter", {"brightness": (0.8, 1.2)}),
        "contrast": ("ColorJitter", {"contrast": (0.8, 1.2)}),
        "saturation": ("ColorJitter", {"saturation": (0.5, 1.5)}),
        "hue": ("ColorJitter", {"hue": (-0.05, 0.05)}),
        "sharpness": ("SharpnessJitter", {"sharpness": (0.5, 1.5)}),
        "affine": ("RandomAffine", {"degrees": (-5.0, 5.0), "translate": (0.05, 0.05)}),
    }
    assert all(tf.weight == 1.0 for tf in cfg.tfs.values())
    assert ImageTransformsConfig().tfs is not cfg.tfs


def test_max_num_transforms_and_fixed_order() -> None:
    pipeline, log = _with_recorders(ImageTransformsConfig(enable=True, max_num_transforms=2))
    order = list(pipeline.transforms)
    torch.manual_seed(0)
    for _ in range(50):
        log.clear()
        pipeline(_image())
        assert len(log) == 2 and len(set(log)) == 2
        assert sorted(log, key=order.index) == log


def test_max_num_transforms_larger_than_available() -> None:
    cfg = ImageTransformsConfig(enable=True, max_num_transforms=10)
    pipeline, log = _with_recorders(cfg)
    pipeline(_image())
    assert log == list(cfg.tfs)


def test_random_order_shuffles() -> None:
    pipeline, log = _with_recorders(
        ImageTransformsConfig(enable=True, max_num_transforms=6, random_order=True)
    )
    torch.manual_seed(0)
    orders = set()
    for _ in range(20):
        log.clear()
        pipeline(_image())
        orders.add(tuple(log))
    assert len(orders) > 1


def test_selection_follows_weights_and_zero_weight_disables() -> None:
    cfg = ImageTransformsConfig(
        enable=True,
        max_num_transforms=1,
        tfs={
            "heavy": ImageTransformConfig(weight=3.0, type="SharpnessJitter"),
            "light": ImageTransformConfig(weight=1.0, type="SharpnessJitter"),
            "off": ImageTransformConfig(weight=0.0, type="SharpnessJitter"),
            "negative": ImageTransformConfig(weight=-1.0, type="SharpnessJitter"),
        },
    )
    pipeline, log = _with_recorders(cfg)
    assert list(pipeline.transforms) == ["heavy", "light"]
    torch.manual_seed(0)
    for _ in range(2000):
        pipeline(_image(h=2, w=2))
    assert set(log) == {"heavy", "light"}
    assert log.count("heavy") / len(log) == pytest.approx(0.75, abs=0.04)


def test_all_weights_disabled_is_identity() -> None:
    tfs = {"b": ImageTransformConfig(weight=0.0, type="ColorJitter", kwargs={"brightness": 0.5})}
    pipeline = ImageTransforms(ImageTransformsConfig(enable=True, tfs=tfs))
    x = _image()
    assert pipeline(x) is x


def test_plain_dict_transform_configs_are_accepted() -> None:
    tfs = {"b": {"weight": 2.0, "type": "ColorJitter", "kwargs": {"brightness": [0.5, 1.5]}}}
    pipeline = ImageTransforms(ImageTransformsConfig(enable=True, tfs=tfs))
    assert isinstance(pipeline.transforms["b"], ColorJitter)
    assert pipeline.weights == [2.0]


def test_unknown_type_lists_known_types() -> None:
    tfs = {"oops": ImageTransformConfig(type="Posterize")}
    with pytest.raises(ValueError, match="Posterize") as excinfo:
        ImageTransforms(ImageTransformsConfig(tfs=tfs))
    for known in ("ColorJitter", "SharpnessJitter", "RandomCrop", "RandomAffine", "AddGaussianNoise"):
        assert known in str(excinfo.value)


def test_invalid_max_num_transforms() -> None:
    with pytest.raises(ValueError, match="max_num_transforms"):
        ImageTransforms(ImageTransformsConfig(enable=True, max_num_transforms=0))


def test_random_crop_full_scale_is_identity() -> None:
    x = _image(2)
    assert torch.equal(RandomCrop(scale=(1.0, 1.0))(x), x)


def test_random_crop_zooms_in() -> None:
    # A horizontal ramp: zooming into a crop narrows the range of values that spans the width.
    ramp = torch.linspace(0, 1, 64).expand(3, 48, 64).clone()
    torch.manual_seed(0)
    out = RandomCrop(scale=(0.25, 0.25))(ramp)
    span = out[0, 0, -1] - out[0, 0, 0]
    assert span == pytest.approx(0.5, abs=0.05)


@pytest.mark.parametrize("scale", [(0.0, 1.0), (0.9, 0.8), (0.5, 1.2)])
def test_random_crop_rejects_bad_scale(scale: tuple[float, float]) -> None:
    with pytest.raises(ValueError, match="scale"):
        RandomCrop(scale=scale)


def test_random_shift_moves_the_frame_without_rescaling() -> None:
    """Every output pixel is an input pixel moved by at most ``pad`` (edges repeated), the scale kept."""
    x = _image(2)
    torch.manual_seed(0)
    y = RandomShift(pad=3)(x)
    shifts = [(dr, dc) for dr in range(-3, 4) for dc in range(-3, 4)]
    matches = [
        (dr, dc) for dr, dc in shifts
        if torch.equal(y[..., 3:-3, 3:-3], x[..., 3 + dr : x.shape[-2] - 3 + dr, 3 + dc : x.shape[-1] - 3 + dc])
    ]  # fmt: skip
    assert len(matches) == 1
    assert torch.equal(RandomShift(pad=0)(x), x)
    with pytest.raises(ValueError, match="pad"):
        RandomShift(pad=-1)


def test_random_shift_keeps_uint8_frames() -> None:
    x = (_image() * 255).to(torch.uint8)
    y = RandomShift(pad=2)(x)
    assert y.dtype == torch.uint8 and y.shape == x.shape


def test_color_jitter_argument_conventions() -> None:
    jitter = ColorJitter(brightness=0.2, contrast=(0.5, 1.5), saturation=1.5, hue=0.1)
    assert jitter.brightness == (0.8, 1.2)
    assert jitter.contrast == (0.5, 1.5)
    assert jitter.saturation == (0.0, 2.5)
    assert jitter.hue == (-0.1, 0.1)
    x = _image()
    assert torch.equal(ColorJitter()(x), x)
    for bad in ({"brightness": -0.1}, {"contrast": (1.2, 0.8)}, {"hue": 0.6}, {"hue": (-0.6, 0.0)}):
        with pytest.raises(ValueError):
            ColorJitter(**bad)


def test_sharpness_jitter_unit_factor_is_identity() -> None:
    x = _image()
    assert torch.equal(SharpnessJitter((1.0, 1.0))(x), x)
    with pytest.raises(ValueError):
        SharpnessJitter((1.5, 0.5))


def test_gaussian_noise_statistics_on_state() -> None:
    torch.manual_seed(0)
    state = torch.zeros(200_000)
    noisy = AddGaussianNoise(std=0.1, mean=0.5)(state)
    assert noisy.std().item() == pytest.approx(0.1, rel=0.02)
    assert noisy.mean().item() == pytest.approx(0.5, abs=0.002)
    assert AddGaussianNoise(std=0.1)(torch.ones(1000)).max() > 1.0, "state vectors must not be clamped"


def test_gaussian_noise_clamps_images() -> None:
    torch.manual_seed(0)
    image = torch.full((2, 3, 16, 16), 0.95)
    noisy = AddGaussianNoise(std=0.5)(image)
    assert noisy.shape == image.shape and noisy.dtype == torch.float32
    assert noisy.min() >= 0.0 and noisy.max() <= 1.0
    assert not torch.equal(noisy, image)
    assert AddGaussianNoise(std=0.5, clamp=False)(image).max() > 1.0


def test_gaussian_noise_rejects_integer_tensors() -> None:
    with pytest.raises(TypeError):
        AddGaussianNoise()(torch.zeros(3, 4, 4, dtype=torch.uint8))


def test_legacy_import_path() -> None:
    from lerobot.common.datasets import transforms as legacy

    assert legacy.ImageTransforms is ImageTransforms
    assert legacy.ImageTransformsConfig is ImageTransformsConfig
