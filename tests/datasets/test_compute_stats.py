"""Statistics reproduce what the reference wrote into the peer fixture, per episode and aggregated."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from tests.conftest import PEER_VIDEO

from lerobot.datasets.compute_stats import (
    RunningQuantileStats,
    aggregate_stats,
    auto_downsample_image,
    compute_episode_stats,
    deserialize_stats,
    sample_indices,
    serialize_stats,
)
from lerobot.datasets.utils import STAT_KEYS, features_from_disk

RTOL = 1e-4
ATOL = 1e-8  # q01 of an exactly-valued series is min - 1e-10, i.e. -1e-10 when min is 0
IMAGE_KEY = "observation.images.front"


@pytest.fixture(scope="module")
def peer() -> dict:
    """Episode buffers as the reference writer held them, plus its per-episode and aggregated stats."""
    info = json.loads((PEER_VIDEO / "meta/info.json").read_text())
    features = features_from_disk(info["features"])
    data = pq.read_table(PEER_VIDEO / "data/chunk-000/file-000.parquet").to_pydict()
    episode_rows = pq.read_table(PEER_VIDEO / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    episode_index = np.asarray(data["episode_index"])
    episodes = []
    for e in range(info["total_episodes"]):
        rows = np.flatnonzero(episode_index == e)
        ep = {
            key: np.asarray([data[key][i] for i in rows], dtype=features[key]["dtype"])
            for key in data
            if key in features
        }
        # The reference buffers timestamps as Python floats frame_index / fps (float64); only the parquet
        # holds them as float32. It matters: in episode 2 the value 0.7 sits exactly on a histogram edge.
        ep["timestamp"] = ep["frame_index"] / info["fps"]
        f = ep["frame_index"]
        rgb = np.stack([20 + 8 * f, np.full(len(f), 60 + 60 * e), 200 - 4 * f], axis=1).astype(np.uint8)
        ep[IMAGE_KEY] = np.ascontiguousarray(np.broadcast_to(rgb[:, None, None, :], (len(f), 64, 96, 3)))
        episodes.append(ep)
    expected = [
        {
            key: {stat: np.asarray(row[f"stats/{key}/{stat}"]) for stat in STAT_KEYS}
            for key in features
            if f"stats/{key}/min" in row
        }
        for row in episode_rows
    ]
    stats_json = json.loads((PEER_VIDEO / "meta/stats.json").read_text())
    return {"features": features, "episodes": episodes, "expected": expected, "stats_json": stats_json}


@pytest.fixture(scope="module")
def episode_stats(peer) -> list[dict]:
    return [compute_episode_stats(ep, peer["features"]) for ep in peer["episodes"]]


def assert_stats_close(actual: dict, expected: dict) -> None:
    assert list(actual) == list(expected)
    for key, stats in expected.items():
        assert list(actual[key]) == list(STAT_KEYS), key
        for stat in STAT_KEYS:
            exp = np.asarray(stats[stat])
            assert actual[key][stat].shape == exp.shape, f"{key}/{stat}"
            np.testing.assert_allclose(actual[key][stat], exp, rtol=RTOL, atol=ATOL, err_msg=f"{key}/{stat}")


@pytest.mark.parametrize("episode", [0, 1, 2])
def test_episode_stats_match_reference(peer, episode_stats, episode):
    stats = episode_stats[episode]
    assert_stats_close(stats, peer["expected"][episode])
    for key, ft_stats in stats.items():
        assert ft_stats["count"].dtype == np.int64
        assert ft_stats["count"].tolist() == [len(peer["episodes"][episode]["index"])], key


def test_float32_features_keep_reference_rounding(episode_stats):
    """action std is computed as sqrt(E[x²] - E[x]²) in float32, as the reference does (off by ~0.2%)."""
    std = episode_stats[0]["action"]["std"]
    assert std.dtype == np.float32
    assert std[0] == np.float32(5.75543212890625)
    image = episode_stats[0][IMAGE_KEY]
    assert image["mean"].dtype == np.float32 and image["q50"].dtype == np.float64
    assert episode_stats[0]["frame_index"]["mean"].dtype == np.float64


def test_aggregate_matches_reference_stats_json(peer, episode_stats):
    aggregated = aggregate_stats(episode_stats)
    expected = peer["stats_json"]
    assert sorted(aggregated) == sorted(expected)
    assert_stats_close(aggregated, {key: expected[key] for key in aggregated})


def test_incremental_aggregation_equals_all_at_once(episode_stats):
    all_at_once = aggregate_stats(episode_stats)
    running = episode_stats[0]
    for stats in episode_stats[1:]:
        running = aggregate_stats([running, stats])
    for key, stats in all_at_once.items():
        for stat, value in stats.items():
            np.testing.assert_allclose(
                running[key][stat], value, rtol=1e-12, atol=1e-15, err_msg=f"{key}/{stat}"
            )


def test_aggregate_feature_missing_from_some_entries():
    a = {"x": _stats_of(np.arange(4.0)), "y": _stats_of(np.ones(3))}
    b = {"x": _stats_of(np.arange(4.0, 10.0))}
    out = aggregate_stats([a, b])
    assert out["y"]["count"].tolist() == [3]
    np.testing.assert_allclose(out["y"]["mean"], [1.0])
    np.testing.assert_allclose(out["x"]["mean"], [4.5])
    np.testing.assert_allclose(out["x"]["std"], [np.arange(10.0).std()])
    assert out["x"]["min"].tolist() == [0.0] and out["x"]["max"].tolist() == [9.0]


def test_aggregate_drops_quantile_missing_from_an_entry():
    """Stats of older datasets may lack quantiles; averaging the others would misstate the quantile."""
    a, b = _stats_of(np.arange(4.0)), _stats_of(np.arange(6.0))
    del b["q50"]
    out = aggregate_stats([{"x": a}, {"x": b}])["x"]
    assert "q50" not in out
    np.testing.assert_allclose(out["q90"], (4 * a["q90"] + 6 * b["q90"]) / 10)


def _stats_of(values: np.ndarray) -> dict[str, np.ndarray]:
    return compute_episode_stats({"x": values}, {"x": {"dtype": "float64", "shape": (1,)}})["x"]


@pytest.mark.parametrize(
    ("length", "expected_num"), [(1, 1), (50, 50), (100, 100), (400, 100), (20000, int(20000**0.75))]
)
def test_sample_indices(length, expected_num):
    idx = sample_indices(length)
    assert len(idx) == expected_num
    assert np.issubdtype(idx.dtype, np.integer)
    assert idx[0] == 0 and idx[-1] == length - 1
    np.testing.assert_array_equal(idx, np.round(np.linspace(0, length - 1, expected_num)).astype(int))
    if length <= 100:
        np.testing.assert_array_equal(idx, np.arange(length))


def test_single_frame_episode_quantiles_equal_mean():
    features = {"state": {"dtype": "float32", "shape": (3,)}, "cam": {"dtype": "image", "shape": (4, 5, 3)}}
    data = {
        "state": np.array([[1.0, -2.0, 3.5]], dtype=np.float32),
        "cam": np.full((1, 4, 5, 3), 51, dtype=np.uint8),
    }
    stats = compute_episode_stats(data, features)
    for key in features:
        assert stats[key]["count"].tolist() == [1]
        assert np.all(stats[key]["std"] == 0)
    np.testing.assert_array_equal(stats["state"]["mean"], data["state"][0])
    for q in ("q01", "q10", "q50", "q90", "q99"):
        np.testing.assert_array_equal(stats["state"][q], stats["state"]["mean"])
        # One frame is still 20 pixels per channel, so camera quantiles come from the histogram (float64).
        np.testing.assert_allclose(stats["cam"][q], stats["cam"]["mean"], rtol=1e-6)
    np.testing.assert_allclose(stats["cam"]["mean"], np.full((3, 1, 1), 0.2), rtol=1e-6)


def test_auto_downsample_image():
    img = np.arange(480 * 640 * 3, dtype=np.uint32).astype(np.uint8).reshape(480, 640, 3)
    small = auto_downsample_image(img)
    assert small.shape == (120, 160, 3)
    np.testing.assert_array_equal(small, img[::4, ::4])
    unchanged = np.zeros((64, 96, 3), dtype=np.uint8)
    assert auto_downsample_image(unchanged) is unchanged


def test_camera_stats_use_sampled_frames():
    frames = np.zeros((400, 2, 2, 1), dtype=np.uint8)
    frames[sample_indices(400)] = 255  # only the sampled frames are bright
    stats = compute_episode_stats({"cam": frames}, {"cam": {"dtype": "video", "shape": (2, 2, 1)}})["cam"]
    assert stats["count"].tolist() == [100]
    assert stats["mean"].shape == (1, 1, 1)
    assert stats["min"].item() == 1.0 and stats["mean"].item() == 1.0


def test_string_features_are_skipped_and_shapes_follow_features():
    features = {
        "task": {"dtype": "string", "shape": (1,)},
        "grid": {"dtype": "float32", "shape": (2, 3)},
        "flag": {"dtype": "bool", "shape": (1,)},
    }
    data = {
        "task": np.array(["a", "b"]),
        "grid": np.arange(12, dtype=np.float32).reshape(2, 2, 3),
        "flag": np.array([True, False]),
    }
    stats = compute_episode_stats(data, features)
    assert list(stats) == ["grid", "flag"]
    assert stats["grid"]["mean"].shape == (2, 3)
    np.testing.assert_allclose(stats["grid"]["mean"], np.arange(3, 9, dtype=np.float32).reshape(2, 3))
    np.testing.assert_allclose(stats["flag"]["mean"], [0.5])


def test_running_stats_streaming_matches_one_batch():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 4)) * [1.0, 10.0, 0.1, 5.0] + [0.0, 100.0, -3.0, 0.0]
    one = RunningQuantileStats()
    one.update(x)
    streamed = RunningQuantileStats()
    for chunk in np.array_split(x, 7):  # later chunks widen the range, forcing re-binning
        streamed.update(chunk)
    a, b = one.get_statistics(), streamed.get_statistics()
    for stat in ("min", "max", "mean", "std", "count"):
        np.testing.assert_allclose(b[stat], a[stat], rtol=1e-10)
    # A histogram quantile lies in the bin holding the sample where the empirical CDF reaches q;
    # each re-binning may move mass by about one more bin.
    width = (x.max(axis=0) - x.min(axis=0)) / 5000
    for q, name in zip((0.01, 0.10, 0.50, 0.90, 0.99), ("q01", "q10", "q50", "q90", "q99"), strict=True):
        exact = np.quantile(x, q, axis=0, method="inverted_cdf")
        assert np.all(np.abs(a[name] - exact) <= 1.01 * width), name
        assert np.all(np.abs(b[name] - exact) <= 4 * width), name


def test_running_stats_rejects_empty_and_mismatched_input():
    stats = RunningQuantileStats()
    with pytest.raises(ValueError):
        stats.get_statistics()
    stats.update(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        stats.update(np.zeros((2, 4)))


def test_serialize_roundtrip(episode_stats):
    serialized = serialize_stats(episode_stats[1])
    text = json.dumps(serialized)
    restored = deserialize_stats(json.loads(text))
    assert serialized[IMAGE_KEY]["mean"][0] == [[pytest.approx(0.45490196347236633)]]
    for key, stats in episode_stats[1].items():
        assert restored[key]["count"].dtype == np.int64
        for stat, value in stats.items():
            if stat != "count":
                assert restored[key][stat].dtype == np.float64
            np.testing.assert_array_equal(restored[key][stat], value)


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.bool_])
def test_small_integer_inputs_match_float_inputs(dtype):
    """Small ints are histogrammed through per-value counts; that must not change any statistic."""
    info = np.iinfo(dtype) if dtype is not np.bool_ else None
    lo, hi = (0, 2) if info is None else (max(info.min, -3000), min(info.max, 3000) + 1)
    x = np.random.default_rng(0).integers(lo, hi, size=(2000, 3)).astype(dtype)
    x[:, 1] = x[0, 1]  # a constant column
    as_int, as_float = RunningQuantileStats(), RunningQuantileStats()
    for chunk in np.array_split(x, 3):
        as_int.update(chunk)
        as_float.update(chunk.astype(np.promote_types(dtype, np.float32)))
    a, b = as_int.get_statistics(), as_float.get_statistics()
    for stat in STAT_KEYS:
        np.testing.assert_array_equal(a[stat], b[stat], err_msg=stat)
