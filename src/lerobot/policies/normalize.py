"""Normalisation from dataset statistics, and the checkpoint files that carry those statistics.

A policy owns three small modules built from its features and ``normalization_mapping``:
``normalize_inputs`` (observations), ``normalize_targets`` (the action, for the training loss) and
``unnormalize_outputs`` (predicted actions back to robot units). Each keeps its statistics as
buffers named ``buffer_<feature with "." -> "_">.<stat>``, e.g. ``buffer_observation_state.mean``:
the names older LeRobot checkpoints used inside ``model.safetensors``, so such a file loads as is.

Formulas (eps = 1e-8, as LeRobot 0.6):

=========== ====================================== ======================================
mode        normalise                              unnormalise
=========== ====================================== ======================================
MEAN_STD    ``(x - mean) / (std + eps)``           ``x * std + mean``
MIN_MAX     ``2 (x - min) / d - 1``, ``d = max-min`` ``(x + 1) / 2 * d + min``
            (``d`` = eps where it is exactly 0)
QUANTILES   MIN_MAX with ``q01`` / ``q99``
QUANTILE10  MIN_MAX with ``q10`` / ``q90``
IDENTITY    unchanged                              unchanged
=========== ====================================== ======================================

Shapes: a vector feature's stats have the feature's shape; a camera's are ``(C, 1, 1)`` so they
broadcast over ``(B, C, H, W)`` images.

On disk (LeRobot 0.6 "processor" layout, which is also ours): ``policy_preprocessor.json`` +
``policy_preprocessor_step_3_normalizer_processor.safetensors`` and ``policy_postprocessor.json`` +
``policy_postprocessor_step_0_unnormalizer_processor.safetensors``; each safetensors file is flat
``{"<feature>.<stat>": float32 tensor}``.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from lerobot.configs.types import FeatureType, NormalizationMode, PolicyFeature
from lerobot.policies.config import checkpoint_file

EPS = 1e-8
STATS_FOR_MODE = {
    NormalizationMode.MEAN_STD: ("mean", "std"),
    NormalizationMode.MIN_MAX: ("min", "max"),
    NormalizationMode.QUANTILES: ("q01", "q99"),
    NormalizationMode.QUANTILE10: ("q10", "q90"),
    NormalizationMode.IDENTITY: (),
}
NORMALIZER_PREFIXES = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")
PREPROCESSOR = "policy_preprocessor"
POSTPROCESSOR = "policy_postprocessor"


def stats_shape(feature: PolicyFeature) -> tuple[int, ...]:
    if feature.type is FeatureType.VISUAL:
        return (feature.shape[0], 1, 1)
    return tuple(feature.shape)


def buffer_name(feature_name: str) -> str:
    return "buffer_" + feature_name.replace(".", "_")


class _FeatureStats(nn.Module):
    """The statistics of one feature, as buffers (so they follow ``.to(device)`` and the state dict)."""

    def __init__(self, shape: tuple[int, ...], stat_names: tuple[str, ...]):
        super().__init__()
        for stat in stat_names:
            # inf means "not set yet": using it raises a clear error instead of producing NaNs.
            self.register_buffer(stat, torch.full(shape, torch.inf, dtype=torch.float32))


class _Normalizer(nn.Module):
    inverse = False

    def __init__(
        self,
        features: Mapping[str, PolicyFeature],
        norm_map: Mapping[str, NormalizationMode],
        stats: Mapping[str, Mapping[str, Any]] | None = None,
    ):
        super().__init__()
        self.features = dict(features)
        self.modes = {
            name: NormalizationMode(norm_map.get(ft.type.value, NormalizationMode.IDENTITY))
            for name, ft in self.features.items()
        }
        for name, ft in self.features.items():
            stat_names = STATS_FOR_MODE[self.modes[name]]
            if stat_names:
                self.add_module(buffer_name(name), _FeatureStats(stats_shape(ft), stat_names))
        self._ready = False
        self._unset: list[str] = []  # features without statistics, passed through (see _check_ready)
        if stats is not None:
            self.load_stats(stats, strict=True)

    def feature_stats(self, name: str) -> _FeatureStats | None:
        return getattr(self, buffer_name(name), None)

    def needs_stats(self) -> bool:
        return any(self.feature_stats(n) is not None for n in self.features)

    @torch.no_grad()
    def load_stats(self, stats: Mapping[str, Mapping[str, Any]], strict: bool = True) -> list[str]:
        """Copy ``{feature: {stat: array}}`` into the buffers; returns the ``feature.stat`` still unset."""
        missing = []
        for name in self.features:
            holder = self.feature_stats(name)
            if holder is None:
                continue
            for stat, buf in holder.named_buffers():
                value = (stats.get(name) or {}).get(stat)
                if value is None:
                    missing.append(f"{name}.{stat}")
                    continue
                value = torch.as_tensor(value, dtype=torch.float32)
                if value.numel() != buf.numel():
                    raise ValueError(
                        f"Stats '{name}.{stat}' have shape {tuple(value.shape)}; feature {name!r} "
                        f"needs {tuple(buf.shape)}."
                    )
                buf.copy_(value.reshape(buf.shape))
        if missing and strict:
            raise KeyError(f"dataset_stats lack {missing} needed to normalise ({self.modes}).")
        self._ready = False
        return missing

    def flat_stats(self) -> dict[str, Tensor]:
        """``{"<feature>.<stat>": tensor}`` of every statistic that has been set."""
        out = {}
        for name in self.features:
            holder = self.feature_stats(name)
            for stat, buf in holder.named_buffers() if holder is not None else ():
                if torch.isfinite(buf).all():
                    out[f"{name}.{stat}"] = buf.detach().cpu().contiguous()
        return out

    def _check_ready(self) -> None:
        """Features without any statistics pass through unchanged (said once); half-set ones are an error.

        A policy built without ``dataset_stats`` (``ACTPolicy(config)``, as in the guide's own
        training loop and in LeRobot 0.6, whose policies leave normalisation to processors) then
        trains and acts on raw values, consistently; statistics loaded later take effect.
        """
        if self._ready:
            return
        unset = []
        for name in self.features:
            holder = self.feature_stats(name)
            buffers = dict(holder.named_buffers()) if holder is not None else {}
            missing = [stat for stat, buf in buffers.items() if torch.isinf(buf).any()]
            if (
                missing
                and len(missing) == len(buffers)
                and all(torch.isinf(b).all() for b in buffers.values())
            ):
                unset.append(name)
            elif missing:
                raise RuntimeError(
                    f"Normalisation statistics for '{name}' are incomplete ({missing[0]} is unset). Build the "
                    "policy with dataset_stats=dataset.meta.stats (make_policy(cfg, ds_meta=...) does this), "
                    "or load a trained checkpoint with from_pretrained."
                )
        if unset and self._unset != unset:
            warnings.warn(
                f"No normalisation statistics for {unset}: they are used unnormalised. Pass "
                "dataset_stats=dataset.meta.stats when building the policy to normalise them.",
                stacklevel=4,
            )
        self._unset = unset
        self._ready = True

    def forward(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        self._check_ready()
        out = dict(batch)
        for name in self.features:
            holder = self.feature_stats(name)
            if holder is None or name not in out or name in self._unset:
                continue
            x = out[name]
            x = x.float() if not torch.is_floating_point(x) else x
            out[name] = self._transform(self.modes[name], holder, x)
        return out

    def _transform(self, mode: NormalizationMode, s: _FeatureStats, x: Tensor) -> Tensor:
        if mode is NormalizationMode.MEAN_STD:
            return x * s.std + s.mean if self.inverse else (x - s.mean) / (s.std + EPS)
        low, high = (getattr(s, n) for n in STATS_FOR_MODE[mode])
        span = high - low
        span = torch.where(span == 0, torch.full_like(span, EPS), span)
        return (x + 1) / 2 * span + low if self.inverse else 2 * (x - low) / span - 1


class Normalize(_Normalizer):
    """Scale features into the network's range (see the module docstring for the formulas)."""


class Unnormalize(_Normalizer):
    """Map network outputs back to dataset units (inverse of :class:`Normalize`)."""

    inverse = True


def split_flat_stats(flat: Mapping[str, Tensor], feature_names: list[str]) -> dict[str, dict[str, Tensor]]:
    """``{"observation.state.mean": t}`` -> ``{"observation.state": {"mean": t}}`` for the named features."""
    out: dict[str, dict[str, Tensor]] = {}
    for key, value in flat.items():
        for name in feature_names:
            stat = key[len(name) + 1 :]
            if key.startswith(name + ".") and "." not in stat:
                out.setdefault(name, {})[stat] = value
    return out


# ---- LeRobot 0.6 processor files -------------------------------------------------------------------
def _features_json(features: Mapping[str, PolicyFeature]) -> dict[str, Any]:
    return {name: ft.to_dict() for name, ft in features.items()}


def save_processor_files(
    save_directory: Path,
    input_features: Mapping[str, PolicyFeature],
    output_features: Mapping[str, PolicyFeature],
    norm_map: Mapping[str, NormalizationMode],
    stats: Mapping[str, Tensor],
    device: str,
    extra_steps: list[dict[str, Any]] = (),
    rename_map: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write the pre/post-processor pipelines exactly as LeRobot 0.6's default ones look on disk.

    ``extra_steps`` (a VLA's newline and tokenizer steps) go between batching and the device step,
    where LeRobot puts them; the normaliser's state file is named after its step index.
    """
    norm_map_json = {k: NormalizationMode(v).value for k, v in norm_map.items()}
    extra_steps = list(extra_steps)
    pre_state = f"{PREPROCESSOR}_step_{3 + len(extra_steps)}_normalizer_processor.safetensors"
    post_state = f"{POSTPROCESSOR}_step_0_unnormalizer_processor.safetensors"
    normalizer = {
        "registry_name": "normalizer_processor",
        "config": {
            "eps": EPS,
            "features": _features_json({**input_features, **output_features}),
            "norm_map": norm_map_json,
        },
    }
    unnormalizer = {
        "registry_name": "unnormalizer_processor",
        "config": {"eps": EPS, "features": _features_json(output_features), "norm_map": norm_map_json},
    }
    written = []
    if stats:
        normalizer["state_file"] = pre_state
        unnormalizer["state_file"] = post_state
        for name in (pre_state, post_state):
            save_file(dict(stats), str(save_directory / name))
            written.append(save_directory / name)
    pre = {
        "name": PREPROCESSOR,
        "steps": [
            {
                "registry_name": "rename_observations_processor",
                "config": {"rename_map": dict(rename_map or {})},
            },
            {"registry_name": "to_batch_processor", "config": {}},
            *extra_steps,
            {"registry_name": "device_processor", "config": {"device": device, "float_dtype": None}},
            normalizer,
        ],
    }
    post = {
        "name": POSTPROCESSOR,
        "steps": [
            unnormalizer,
            {"registry_name": "device_processor", "config": {"device": "cpu", "float_dtype": None}},
        ],
    }
    for name, pipeline in ((PREPROCESSOR, pre), (POSTPROCESSOR, post)):
        path = save_directory / f"{name}.json"
        path.write_text(json.dumps(pipeline, indent=2))
        written.append(path)
    return written


def load_rename_map(directory: Path) -> dict[str, str]:
    """The rename step's ``{data name: policy name}`` of ``directory``'s preprocessor ({} when none)."""
    path = directory / f"{PREPROCESSOR}.json"
    if not path.is_file():
        return {}
    for step in json.loads(path.read_text()).get("steps", []):
        if step.get("registry_name") == "rename_observations_processor":
            mapping = (step.get("config") or {}).get("rename_map") or {}
            if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
                raise ValueError(f"{path}: rename_map must map strings to strings, got {mapping!r}.")
            return dict(mapping)
    return {}


def load_processor_stats(directory: Path) -> tuple[dict[str, Tensor], dict[str, Tensor]] | None:
    """Flat stats of the (normalizer, unnormalizer) steps in ``directory``; None when there is no pipeline."""
    found: dict[str, dict[str, Tensor]] = {}
    for pipeline, step_name in (
        (PREPROCESSOR, "normalizer_processor"),
        (POSTPROCESSOR, "unnormalizer_processor"),
    ):
        path = directory / f"{pipeline}.json"
        if not path.is_file():
            continue
        for step in json.loads(path.read_text()).get("steps", []):
            name = step.get("registry_name") or step.get("class", "").rsplit(".", 1)[-1]
            if name in (
                step_name,
                "NormalizerProcessorStep"
                if step_name == "normalizer_processor"
                else "UnnormalizerProcessorStep",
            ):
                state_file = step.get("state_file")
                found[step_name] = (
                    load_file(str(checkpoint_file(directory, state_file, f"{path.name} state_file")))
                    if state_file
                    else {}
                )
    if not found:
        return None
    pre = found.get("normalizer_processor", found.get("unnormalizer_processor", {}))
    post = found.get("unnormalizer_processor", pre)
    return pre, post
