"""The parity check of an export: the observations, the original's actions with the same draws, the comparison.

Observations come from a recorded dataset (:func:`dataset_observations`: evenly spaced frames, with the
policy's observation history, cameras back to the uint8 (H, W, C) they were recorded as) or, without
one, from the policy's own statistics (:func:`synthetic_observations`). The rule each format must meet
is in :mod:`lerobot.export.exporter`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lerobot.configs.types import FeatureType
from lerobot.policies.export_graph import PolicyGraph
from lerobot.policies.pretrained import PreTrainedPolicy


@dataclasses.dataclass
class ParityReport:
    """How far the exported model's actions are from the original's, against the format's tolerance."""

    format: str
    rule: str
    tolerance: float
    max_abs_diff: float
    max_scaled_diff: float
    worst: tuple[int, int, int]
    range_source: str | None = None

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.max_scaled_diff) and self.max_scaled_diff <= self.tolerance)

    def summary(self) -> str:
        obs, step, dim = self.worst
        return (
            f"Largest difference {self.max_abs_diff:.3g} (action dimension {dim}, chunk step {step}, observation "
            f"{obs}): {self.max_scaled_diff:.3g} by the rule '{self.rule}', tolerance {self.tolerance:g}."
        )

    def to_dict(self, n_observations: int, source: str) -> dict[str, Any]:
        return {
            "observations": n_observations,
            "observations_source": source,
            "rule": self.rule,
            "tolerance": self.tolerance,
            "max_abs_diff": self.max_abs_diff,
            "max_scaled_diff": self.max_scaled_diff,
            "action_range_source": self.range_source,
            "passed": self.passed,
        }


def run_original(
    policy: PreTrainedPolicy, graph: PolicyGraph, observations: Sequence[dict[str, np.ndarray]], seed: int
) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """The original policy's chunks (N, T, A) at batch 1, and the draws it used (each ``{input: (1, ...)}``)."""
    random_specs = [spec for spec in graph.inputs if spec.random]
    chunks, draws = [], []
    for i, obs in enumerate(observations):
        batch = {
            name: x if isinstance(x, str) else torch.from_numpy(np.asarray(x))[None]
            for name, x in obs.items()
        }
        kwargs = {}
        if random_specs:
            drawn = graph.draw_inputs(1, torch.Generator().manual_seed(seed + i))
            draws.append({spec.name: d.numpy() for spec, d in zip(random_specs, drawn, strict=True)})
            kwargs = graph.original_kwargs(drawn, torch.Generator().manual_seed(seed + i))
        else:
            draws.append({})
        chunks.append(policy.predict_action_chunk(batch, **kwargs)[0].detach().cpu().numpy())
    return np.stack(chunks), draws


def action_range(
    policy: PreTrainedPolicy, reference: np.ndarray, stats: dict[str, Any] | None
) -> tuple[np.ndarray, str]:
    """Each action dimension's range (A,): dataset stats, else the policy's, else the reference's spread."""
    for source, found in (
        ("dataset statistics", stats or {}),
        ("policy statistics", _policy_action_stats(policy)),
    ):
        if "min" in found and "max" in found:
            return np.asarray(found["max"], np.float64) - np.asarray(
                found["min"], np.float64
            ), f"max - min of the {source}"
        if "std" in found:
            return 4 * np.asarray(found["std"], np.float64), f"4 standard deviations of the {source}"
    flat = reference.reshape(-1, reference.shape[-1])
    return flat.max(0) - flat.min(0), "spread of the original's actions"


def _policy_action_stats(policy: PreTrainedPolicy) -> dict[str, np.ndarray]:
    holder = policy.unnormalize_outputs.feature_stats("action")
    if holder is None:
        return {}
    return {k: b.detach().cpu().numpy() for k, b in holder.named_buffers() if torch.isfinite(b).all()}


def compare_actions(
    original: np.ndarray,
    exported: np.ndarray,
    fmt: str,
    policy: PreTrainedPolicy,
    tolerance: float,
    ranges: np.ndarray | None = None,
    stats: dict[str, Any] | None = None,
) -> ParityReport:
    """Largest difference between (N, T, A) chunks, scaled by the format's rule (see the exporter)."""
    diff = np.abs(exported.astype(np.float64) - original.astype(np.float64))
    source = None
    if fmt == "int8":
        if ranges is None:
            ranges, source = action_range(policy, original, stats)
        else:
            source = "given"
        scaled = diff / np.maximum(np.asarray(ranges, np.float64), 1e-12)
        rule = "|exported - original| / range of the action dimension"
    else:
        scaled = diff / np.maximum(1.0, np.abs(original.astype(np.float64)))
        rule = "|exported - original| / max(1, |original|)"
    if not np.isfinite(scaled).all():
        scaled = np.where(np.isfinite(scaled), scaled, np.inf)
    worst = np.unravel_index(int(np.argmax(scaled)), scaled.shape)
    return ParityReport(
        format=fmt,
        rule=rule,
        tolerance=tolerance,
        max_abs_diff=float(diff.max()),
        max_scaled_diff=float(scaled.max()),
        worst=tuple(int(i) for i in worst),
        range_source=source,
    )


SYNTHETIC_TASKS = ("pick up the red cube", "place the blue cube in the bin")


def synthetic_observations(
    graph: PolicyGraph, policy: PreTrainedPolicy, n: int, seed: int
) -> list[dict[str, np.ndarray]]:
    """``n`` observations drawn from the policy's input statistics (uniform bytes for cameras; a VLA's
    instruction one of :data:`SYNTHETIC_TASKS`)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        obs = {}
        if graph.instruction is not None:  # a VLA: the instruction as text (the export tokenises it)
            obs["task"] = SYNTHETIC_TASKS[i % len(SYNTHETIC_TASKS)]
        for spec in graph.inputs:
            if spec.random or spec.name in graph.instruction_names:
                continue
            if spec.dtype == torch.uint8:
                obs[spec.name] = rng.integers(0, 256, spec.shape, dtype=np.uint8)
                continue
            holder = policy.normalize_inputs.feature_stats(spec.name)
            stats = {k: b.cpu().numpy() for k, b in holder.named_buffers()} if holder is not None else {}
            if "mean" in stats and np.isfinite(stats["mean"]).all():
                x = stats["mean"] + stats["std"] * rng.standard_normal(spec.shape)
            elif "min" in stats and np.isfinite(stats["min"]).all():
                x = rng.uniform(stats["min"], stats["max"], spec.shape)
            else:
                x = rng.standard_normal(spec.shape)
            obs[spec.name] = x.astype(np.float32)
        out.append(obs)
    return out


def dataset_observations(
    policy: PreTrainedPolicy, graph: PolicyGraph, repo_id: str, root: str | None, n: int
) -> tuple[list[dict[str, np.ndarray]], dict[str, Any] | None, str]:
    """``n`` evenly spaced recorded observations as the export takes them, the action stats, and a label."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    cfg = policy.config
    meta_ds = LeRobotDataset(repo_id, root=root)
    delta = None
    if graph.history:
        fps = meta_ds.fps
        delta = {name: [i / fps for i in range(1 - graph.history, 1)] for name in graph.observation_names}
        ds = LeRobotDataset(repo_id, root=root, delta_timestamps=delta)
    else:
        ds = meta_ds
    missing = [name for name in graph.observation_names if name not in ds.features]
    if missing:
        raise ValueError(
            f"Dataset {repo_id} has no {missing}, which the policy reads: check --dataset.repo_id/--dataset.root "
            "(the policy's training dataset is the natural choice)."
        )
    indices = np.linspace(0, len(ds) - 1, num=min(n, len(ds))).round().astype(int)
    out = []
    for i in indices:
        item = ds[int(i)]
        obs = {}
        for name, ft in cfg.input_features.items():
            if name not in graph.observation_names:  # a VLA's padding camera slot: no recorded frames
                continue
            x = item[name].numpy()
            if ft.type is FeatureType.VISUAL:  # float (C, H, W) in [0, 1] -> the recorded bytes, (H, W, C)
                x = np.moveaxis(np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8), -3, -1)
            else:
                x = x.astype(np.float32)
            obs[name] = x
        if graph.instruction is not None:
            obs["task"] = str(item["task"])
        out.append(obs)
    stats = (ds.meta.stats or {}).get("action")
    label = f"dataset {repo_id}" + (f" at {root}" if root else "") + f", frames {indices.tolist()}"
    return out, stats, label
