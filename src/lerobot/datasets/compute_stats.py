"""Per-episode feature statistics and their aggregation into dataset statistics (spec §1.8).

The numbers must agree with what the reference implementation writes into ``meta/stats.json`` and the
``stats/...`` columns of the episodes parquet, because normalisation of trained policies depends on them.
That includes its floating point habits: min/max/mean/std stay in the input's (promoted) dtype and std
is taken as ``sqrt(E[x²] - E[x]²)``, which in float32 is visibly off for large values; quantiles come
from a 5000-bin histogram and are float64. Those habits are reproduced on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from lerobot.datasets.utils import CAMERA_DTYPES, DEFAULT_QUANTILES, STAT_KEYS

NUM_QUANTILE_BINS = 5000
# Widening the histogram range by this much keeps the extreme samples strictly inside the outer bins.
_EDGE_MARGIN = 1e-10

_MOMENT_KEYS = ("min", "max", "mean", "std", "count")

_MIN_IMAGE_SAMPLES = 100
_MAX_IMAGE_SAMPLES = 10_000
_IMAGE_SAMPLES_POWER = 0.75
_DOWNSAMPLE_TARGET = 150
_DOWNSAMPLE_FROM = 300


def quantile_key(q: float) -> str:
    """``0.01 -> "q01"``: the stat name the format uses for a quantile."""
    return f"q{int(q * 100):02d}"


def sample_indices(length: int) -> np.ndarray:
    """Frames of an episode that image statistics are computed on.

    Short episodes use every frame; long ones a sub-linear number spread evenly, so that stats of a
    long recording stay cheap while still seeing all of it.
    """
    num = max(min(length, _MIN_IMAGE_SAMPLES), min(int(length**_IMAGE_SAMPLES_POWER), _MAX_IMAGE_SAMPLES))
    return np.round(np.linspace(0, length - 1, num)).astype(int)


def auto_downsample_image(img: np.ndarray) -> np.ndarray:
    """Keep every k-th pixel of a large ``(..., H, W, C)`` image; per-channel stats barely change."""
    height, width = img.shape[-3], img.shape[-2]
    longest = max(height, width)
    if longest < _DOWNSAMPLE_FROM:
        return img
    k = int(longest / _DOWNSAMPLE_TARGET)
    return img[..., ::k, ::k, :]


def _bin_edges(lo: np.ndarray, hi: np.ndarray, num_bins: int) -> np.ndarray:
    """``(D, num_bins + 1)`` edges, each row equal bit for bit to ``np.linspace(lo[d], hi[d], num_bins + 1)``.

    A single vectorised ``np.linspace`` over arrays switches *every* row to its zero-step formula as soon
    as one row has zero width, which moves edges by an ulp; the reference builds edges one row at a time.
    """
    delta = hi - lo
    step = delta / num_bins
    i = np.arange(num_bins + 1, dtype=lo.dtype)
    edges = np.where(
        (step == 0)[:, None], (i / num_bins)[None, :] * delta[:, None], i[None, :] * step[:, None]
    )
    edges += lo[:, None]
    edges[:, -1] = hi
    return edges


def _histogram(values: np.ndarray, edges: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Per-column ``np.histogram`` of ``values`` (N, D) over ``edges`` (D, B+1) -> float counts (D, B).

    Same bin rule as ``np.histogram``: ``edges[b] <= x < edges[b+1]``, the last bin closed on the right;
    values outside a column's outer edges must carry zero weight. The bin is first guessed arithmetically
    (edges are near-uniform) and checked against the actual edges; only the rare misses, e.g. where
    float32 edges coincide, are searched. That keeps it linear in N instead of a binary search per value.
    """
    num_dims, num_bins = edges.shape[0], edges.shape[1] - 1
    first, span = edges[:, 0], (edges[:, -1] - edges[:, 0]).astype(np.float64)
    scale = np.divide(num_bins, span, out=np.zeros_like(span), where=span > 0)
    bins = np.clip(np.floor((values - first) * scale), 0, num_bins - 1).astype(np.intp)
    bins[:, span == 0] = num_bins - 1  # all edges equal: np.histogram puts everything in the last bin
    lower = np.take_along_axis(edges.T, bins, axis=0)
    upper = np.take_along_axis(edges.T, bins + 1, axis=0)
    wrong = (values < lower) | ((values >= upper) & (bins < num_bins - 1))
    for d in np.flatnonzero(wrong.any(axis=0)):
        rows = np.flatnonzero(wrong[:, d])
        found = np.searchsorted(edges[d], values[rows, d], side="right") - 1
        bins[rows, d] = np.clip(found, 0, num_bins - 1)
    flat = (bins + np.arange(num_dims) * num_bins).ravel()
    counts = np.bincount(
        flat, weights=None if weights is None else weights.ravel(), minlength=num_dims * num_bins
    )
    return counts.reshape(num_dims, num_bins).astype(np.float64)


def _value_counts(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integers ``lo..hi`` spanned by a small-integer array (N, D) and how often each occurs per column."""
    lo, hi = int(x.min()), int(x.max())
    counts = [np.bincount(x[:, d].astype(np.intp) - lo, minlength=hi - lo + 1) for d in range(x.shape[1])]
    return np.arange(lo, hi + 1), np.stack(counts, axis=1)


class RunningQuantileStats:
    """Streaming min/max/mean/std and histogram-based quantiles of vectors.

    Inputs are promoted to at least float32 (ints of 64 bits to float64) and min/max/mean/std are kept
    in that dtype, as the reference does. Each dimension has ``num_bins`` equal bins between
    ``min - 1e-10`` and ``max + 1e-10``; when a later batch widens the range, the old counts are moved
    to the new bins by their bin centres, so streamed quantiles are approximate.
    """

    def __init__(self, quantiles: Iterable[float] = DEFAULT_QUANTILES, num_bins: int = NUM_QUANTILE_BINS):
        self.quantiles = tuple(quantiles)
        self.num_bins = num_bins
        self._count = 0
        self._min: np.ndarray | None = None
        self._max: np.ndarray | None = None
        self._mean: np.ndarray | None = None
        self._mean_sq: np.ndarray | None = None
        self._hist: np.ndarray | None = None  # (D, num_bins)
        self._edges: np.ndarray | None = None  # (D, num_bins + 1)

    def update(self, x: np.ndarray) -> None:
        """Add a batch ``x`` of shape (N, D)."""
        raw = np.asarray(x)
        if raw.ndim != 2:
            raise ValueError(f"RunningQuantileStats.update expects an (N, D) array, got shape {raw.shape}.")
        if raw.shape[0] == 0:
            return
        x = raw.astype(np.promote_types(raw.dtype, np.float32), copy=False)
        n = x.shape[0]
        batch_min, batch_max = x.min(axis=0), x.max(axis=0)
        batch_mean, batch_mean_sq = x.mean(axis=0), (x**2).mean(axis=0)

        if self._count == 0:
            self._min, self._max = batch_min, batch_max
            self._mean, self._mean_sq = batch_mean, batch_mean_sq
            self._count = n
            self._edges = _bin_edges(self._min - _EDGE_MARGIN, self._max + _EDGE_MARGIN, self.num_bins)
            self._hist = self._batch_histogram(raw, x)
            return

        if x.shape[1] != self._mean.shape[0]:
            raise ValueError(f"Batch has {x.shape[1]} dimensions, earlier batches had {self._mean.shape[0]}.")
        new_min, new_max = np.minimum(self._min, batch_min), np.maximum(self._max, batch_max)
        if np.any(new_min < self._min) or np.any(new_max > self._max):
            self._min, self._max = new_min, new_max
            self._rebin()
        self._count += n
        self._mean += (batch_mean - self._mean) * (n / self._count)
        self._mean_sq += (batch_mean_sq - self._mean_sq) * (n / self._count)
        self._hist += self._batch_histogram(raw, x)

    def _batch_histogram(self, raw: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Histogram of one batch (``x`` is ``raw`` promoted to float).

        Small-integer data (camera pixels) is first reduced to per-value counts: the same histogram
        for a fraction of the work, since a batch of images holds millions of values but only 256 levels.
        """
        if raw.dtype.kind in "biu" and raw.dtype.itemsize <= 2:
            levels, counts = _value_counts(raw)
            levels = np.broadcast_to(levels.astype(x.dtype)[:, None], counts.shape)
            return _histogram(levels, self._edges, weights=counts)
        return _histogram(x, self._edges)

    def _rebin(self) -> None:
        """Move existing counts onto edges spanning the widened range, placing each old bin at its centre."""
        centres = ((self._edges[:, :-1] + self._edges[:, 1:]) / 2).T
        self._edges = _bin_edges(self._min - _EDGE_MARGIN, self._max + _EDGE_MARGIN, self.num_bins)
        self._hist = _histogram(centres, self._edges, weights=self._hist.T)

    def _quantiles(self) -> list[np.ndarray]:
        """Invert the cumulative histogram, interpolating linearly inside the bin that crosses the target."""
        cum = np.cumsum(self._hist, axis=1)
        lo_edge0 = self._edges[:, 0]
        results = []
        for q in self.quantiles:
            target = q * self._count
            # First bin whose cumulative count reaches the target (searchsorted 'left' on each row).
            idx = np.minimum(np.sum(cum < target, axis=1), self.num_bins - 1)[:, None]
            before = np.where(idx > 0, np.take_along_axis(cum, np.maximum(idx - 1, 0), axis=1), 0.0)
            in_bin = np.take_along_axis(cum, idx, axis=1) - before
            left = np.take_along_axis(self._edges, idx, axis=1)
            right = np.take_along_axis(self._edges, idx + 1, axis=1)
            value = left + (target - before) / in_bin * (right - left)
            results.append(np.where(idx[:, 0] == 0, lo_edge0.astype(np.float64), value[:, 0]))
        return results

    def get_statistics(self) -> dict[str, np.ndarray]:
        """Stats so far; with a single sample the histogram says nothing, so quantiles are the mean."""
        if self._count == 0:
            raise ValueError("No samples: call update() with at least one row before get_statistics().")
        std = np.sqrt(np.maximum(0, self._mean_sq - self._mean**2))
        stats = {
            "min": self._min.copy(),
            "max": self._max.copy(),
            "mean": self._mean.copy(),
            "std": std,
            "count": np.array([self._count], dtype=np.int64),
        }
        quantiles = [self._mean.copy() for _ in self.quantiles] if self._count < 2 else self._quantiles()
        for q, value in zip(self.quantiles, quantiles, strict=True):
            stats[quantile_key(q)] = value
        return stats


def _numeric_stats(data: np.ndarray) -> dict[str, np.ndarray]:
    """Stats over frames of an (N,) or (N, *shape) array, reshaped to the feature shape ((1,) for scalars)."""
    stats_shape = (1,) if data.ndim == 1 else data.shape[1:]
    running = RunningQuantileStats()
    running.update(data.reshape(data.shape[0], -1))
    return {k: v if k == "count" else v.reshape(stats_shape) for k, v in running.get_statistics().items()}


def _camera_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats in [0, 1] of a subsample of (N, H, W, C) uint8 frames, shaped (C, 1, 1).

    The reference divides float32 stats by 255 *after* computing them, so min/max/mean/std stay float32.
    """
    idx = sample_indices(frames.shape[0])
    channels = frames.shape[-1]
    running = RunningQuantileStats()
    running.update(frames[idx].reshape(-1, channels))
    stats = {
        k: v.reshape(channels, 1, 1) / 255.0 for k, v in running.get_statistics().items() if k != "count"
    }
    stats["count"] = np.array([len(idx)], dtype=np.int64)
    return {k: stats[k] for k in STAT_KEYS}


def compute_episode_stats(
    episode_data: Mapping[str, np.ndarray], features: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, np.ndarray]]:
    """Stats of one episode for every numeric and camera feature present in ``episode_data``.

    Keys come out in feature order, which is the column order of the episodes parquet. Camera data
    must hold all frames (already passed through ``auto_downsample_image``); the frames used are
    chosen here with ``sample_indices`` so every caller samples the same way.
    """
    stats: dict[str, dict[str, np.ndarray]] = {}
    for key, ft in features.items():
        if ft["dtype"] in ("string", "language") or key not in episode_data:
            continue
        data = np.asarray(episode_data[key])
        if data.shape[0] == 0:
            raise ValueError(f"Cannot compute stats of feature '{key}' for an episode without frames.")
        stats[key] = _camera_stats(data) if ft["dtype"] in CAMERA_DTYPES else _numeric_stats(data)
    return stats


def _aggregate_feature(entries: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Combine one feature's stats over episodes, exactly for moments and approximately for quantiles.

    Everything is a count-weighted combination, so folding episodes in one at a time gives the same
    result as aggregating them all at once (up to float rounding).
    """
    counts = np.stack([np.asarray(e["count"], dtype=np.int64) for e in entries])  # (K, 1)
    total = counts.sum(axis=0)
    means = np.stack([np.asarray(e["mean"], dtype=np.float64) for e in entries])
    weights = counts.reshape((len(entries),) + (1,) * (means.ndim - 1)).astype(np.float64)
    total_w = weights.sum(axis=0)
    mean = (means * weights).sum(axis=0) / total_w
    # Squared in the std's own dtype (float32 for float32 features) before widening, as the reference
    # does; this keeps stats.json equal to its bit for bit.
    variances = np.stack([np.asarray(e["std"]) ** 2 for e in entries]).astype(np.float64)
    variance = ((variances + (means - mean) ** 2) * weights).sum(axis=0) / total_w

    out = {
        "min": np.min(np.stack([np.asarray(e["min"], dtype=np.float64) for e in entries]), axis=0),
        "max": np.max(np.stack([np.asarray(e["max"], dtype=np.float64) for e in entries]), axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": total,
    }
    # Quantiles cannot be merged exactly; like the reference, take their count-weighted mean. A quantile
    # that some episode lacks (older datasets) is left out rather than estimated from the others.
    for key in (k for k in entries[0] if k not in _MOMENT_KEYS):
        if all(key in e for e in entries):
            values = np.stack([np.asarray(e[key], dtype=np.float64) for e in entries])
            out[key] = (values * weights).sum(axis=0) / total_w
    return out


def aggregate_stats(stats_list: list[dict[str, dict[str, np.ndarray]]]) -> dict[str, dict[str, np.ndarray]]:
    """Dataset stats from per-episode (or per-dataset) stats; a feature is aggregated over the entries having it.

    Results are float64 (count int64) whatever the inputs' dtype.
    """
    if not stats_list:
        raise ValueError("aggregate_stats needs at least one stats dict.")
    keys = list(dict.fromkeys(k for stats in stats_list for k in stats))
    return {key: _aggregate_feature([stats[key] for stats in stats_list if key in stats]) for key in keys}


def serialize_stats(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Arrays -> nested lists, the form both ``stats.json`` and the episodes parquet store."""
    return {
        key: {name: np.asarray(value).tolist() for name, value in ft.items()} for key, ft in stats.items()
    }


def deserialize_stats(stats: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, np.ndarray]]:
    """Nested lists -> arrays: float64, except ``count`` which is int64."""
    return {
        key: {
            name: np.asarray(value, dtype=np.int64 if name == "count" else np.float64)
            for name, value in ft.items()
        }
        for key, ft in stats.items()
    }
