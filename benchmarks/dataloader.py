"""DataLoader random-access and recording throughput of ``LeRobotDataset``, against the reference.

Why this benchmark exists: training reads random frames (one video decode per camera per sample),
so loader throughput bounds how fast a policy can train on a small CPU machine; and the reference
implementation (Hugging Face LeRobot 0.6.1) gets slower at *recording* as the dataset grows (2.8 s
per 400-frame episode at first, 25 s after 51 episodes), which our writer is designed not to do.
This script measures both on a synthetic dataset built with our own writer, compares with the
reference's numbers and writes ``benchmarks/results/dataloader.{json,md}``. The issue's loader
figures were taken on another day, and this shared machine's speed drifts, so a fair loader ratio
needs ``--reference-python``: it times LeRobot 0.6.1 (``reference_dataloader.py``) on the same
files right after each timing of ours and writes ``benchmarks/results/dataloader_lerobot.json``.

Usage::

    .venv/bin/python benchmarks/dataloader.py --reference-python /tmp/lerobot-ref/bin/python \\
        --rounds 3 --repeats 3 --configs torchcodec/plain/w0,pyav/chunk/w0   # same-session ratios
    .venv/bin/python benchmarks/dataloader.py            # full run (a few minutes on 2 cores)
    .venv/bin/python benchmarks/dataloader.py --quick    # smoke test (< 1 min), results to results/tmp/
    .venv/bin/python benchmarks/dataloader.py --profile  # cProfile of the hot paths, to results/tmp/

Measurement rules, chosen because the machine is small and shared:

- every loader configuration runs in a fresh child process (full mode), so decoder caches, allocator
  state and the peak-RSS counter of one configuration never leak into the next;
- each measurement is repeated (median of >= 3 runs, min/max and the load average kept);
- loader throughput is "steady state": timed over whole epochs after a short warm-up that forks the
  workers and opens the decoders. The number including that start-up is reported next to it;
- peak memory is the kernel's high-water mark (``VmHWM``), reset before each run for the main process;
  workers are fresh per run. For forked workers it counts pages shared copy-on-write with the parent.
"""

from __future__ import annotations

import argparse
import ctypes
import dataclasses
import datetime as dt
import functools
import gc
import json
import logging
import multiprocessing as mp
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
CACHE_DIR = BENCH_DIR / ".cache"
RESULTS_DIR = BENCH_DIR / "results"
TMP_RESULTS_DIR = RESULTS_DIR / "tmp"

# Bump when the synthetic scene or the dataset layout changes, so a stale cache is rebuilt.
SCENE_VERSION = 1
REPO_ID = "bench/synthetic_arm"
TASK = "follow the red object"
FPS = 30
IMAGE = 96
STATE_DIM = 6
BATCH_SIZE = 32
CHUNK = 10
CAMERA = "observation.images.top"
FEATURES: dict[str, dict] = {
    CAMERA: {"dtype": "video", "shape": (IMAGE, IMAGE, 3), "names": ["height", "width", "channels"]},
    "observation.state": {
        "dtype": "float32",
        "shape": (STATE_DIM,),
        "names": [f"j{i}" for i in range(STATE_DIM)],
    },
    "action": {"dtype": "float32", "shape": (STATE_DIM,), "names": [f"j{i}" for i in range(STATE_DIM)]},
}
# The reference's defaults, spelled out so a change of our defaults cannot silently change the workload.
VIDEO_CODEC, VIDEO_G, VIDEO_CRF = "libsvtav1", 2, 30

REFERENCE_LABEL = "reference (measured by the issue author, not re-run here)"
REFERENCE: dict[str, Any] = {
    "label": REFERENCE_LABEL,
    "implementation": "Hugging Face LeRobot 0.6.1, torchcodec backend, same machine kind (2 CPU cores)",
    # DataLoader samples/s, batch 32, shuffle; "chunk" = delta_timestamps action chunk of 10 steps.
    "loader_samples_per_s": {"plain/w0": 942.0, "plain/w2": 1319.0, "chunk/w0": 415.0, "chunk/w2": 701.0},
    # Seconds to record one 400-frame episode (add_frame + save_episode): 2.8 s on an empty dataset,
    # 25 s "after 51 episodes" (we compare the latter with our 50-episode point). No 200-episode figure.
    "record_s_per_400_frames": {"0": 2.8, "50": 25.0},
}
TARGET_SPEEDUP = 2.0


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; ``QUICK`` shrinks everything so a smoke test finishes in under a minute."""

    episodes: int = 20
    frames_per_episode: int = 100
    epochs: int = 2
    warmup_batches: int = 5
    repeats: int = 5
    record_len: int = 400
    record_points: tuple[int, ...] = (0, 50, 200)
    record_repeats: int = 3
    fill_len: int = 100
    isolate: bool = True  # one child process per loader configuration


FULL = Sizes()
QUICK = Sizes(
    episodes=8,
    frames_per_episode=50,
    epochs=1,
    warmup_batches=2,
    repeats=1,
    record_len=100,
    record_points=(0, 5, 20),
    record_repeats=1,
    fill_len=10,
    isolate=False,
)


# ------------------------------------------------------------------------------ synthetic scene


def _box_blur(img: np.ndarray, k: int) -> np.ndarray:
    """Separable moving average (wrap-around), to turn blocky noise into a smooth texture."""
    out = img.astype(np.float32)
    for axis in (0, 1):
        out = sum(np.roll(out, s, axis=axis) for s in range(-(k // 2), k // 2 + 1)) / k
    return out


def make_texture(seed: int = 0, size: int = 320) -> np.ndarray:
    """A table-top texture (smoothed colour noise plus a wood-like grating), uint8 (size, size, 3).

    Realistic enough that the AV1 encoder and decoder do real work: a solid colour would make
    decoding unrealistically cheap and flatter our numbers.
    """
    rng = np.random.default_rng(seed)
    low = rng.integers(0, 256, (size // 8, size // 8, 3)).astype(np.float32)
    blotches = _box_blur(np.kron(low, np.ones((8, 8, 1), np.float32)), 9) - 128
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    grain = np.sin(xx / 5.0 + 3 * np.sin(yy / 37.0))[..., None] * np.array([30, 20, 10], np.float32)
    tex = np.array([150, 110, 75], np.float32) + 0.35 * blotches + grain
    for _ in range(12):  # objects lying on the table: flat-coloured boxes with a dark outline
        y, x, h, w = rng.integers(0, size - 40), rng.integers(0, size - 40), *rng.integers(10, 40, 2)
        tex[y : y + h, x : x + w] = 40
        tex[y + 2 : y + h - 2, x + 2 : x + w - 2] = rng.integers(30, 230, 3)
    fine = rng.normal(0, 4, (size, size, 1)).astype(np.float32)
    return np.clip(tex + fine, 0, 255).astype(np.uint8)


_YY, _XX = np.mgrid[0:IMAGE, 0:IMAGE]


def episode_frames(episode: int, length: int, texture: np.ndarray) -> list[dict[str, np.ndarray]]:
    """One episode of a 6-joint arm: the camera pans over the table, a shaded object moves across it.

    The state is a smooth joint trajectory and the action the next state plus noise, so the action
    chunk and the stats are meaningful; a little sensor noise keeps consecutive frames distinct.
    """
    rng = np.random.default_rng(1000 + episode)
    phase = rng.uniform(0, 2 * np.pi, STATE_DIM)
    freq = rng.uniform(0.5, 2.0, STATE_DIM)
    t = np.arange(length + 1, dtype=np.float64) / FPS
    joints = np.sin(freq * t[:, None] + phase).astype(np.float32)
    margin = texture.shape[0] - IMAGE
    frames = []
    for i in range(length):
        q = joints[i]
        cy, cx = int((q[0] + 1) / 2 * margin), int((q[1] + 1) / 2 * margin)
        img = texture[cy : cy + IMAGE, cx : cx + IMAGE].astype(np.int16)
        oy, ox = (q[2:4] + 1) / 2 * (IMAGE - 1)
        d2 = (_YY - oy) ** 2 + (_XX - ox) ** 2
        disc = d2 <= 100
        shade = (1.0 - d2[disc] / 200.0)[:, None]
        img[disc] = (np.array([230, 50, 40]) * shade).astype(np.int16)
        img += rng.integers(-2, 3, img.shape, dtype=np.int16)
        frames.append(
            {
                CAMERA: np.clip(img, 0, 255).astype(np.uint8),
                "observation.state": q.copy(),
                "action": (joints[i + 1] + rng.normal(0, 0.01, STATE_DIM)).astype(np.float32),
            }
        )
    return frames


def _video_encoder():
    from lerobot.datasets.video import VideoEncoderConfig

    return VideoEncoderConfig(vcodec=VIDEO_CODEC, g=VIDEO_G, crf=VIDEO_CRF)


# ------------------------------------------------------------------------------ dataset cache


def dataset_root(sizes: Sizes) -> Path:
    return CACHE_DIR / f"loader-v{SCENE_VERSION}-{sizes.episodes}x{sizes.frames_per_episode}"


def dataset_is_complete(root: Path, sizes: Sizes) -> bool:
    """A cached dataset is reused only if it is finalized and has the expected size."""
    info_path = root / "meta" / "info.json"
    if not info_path.is_file() or (root / ".pending").exists():
        return False
    info = json.loads(info_path.read_text())
    return (
        info.get("total_episodes") == sizes.episodes
        and info.get("total_frames") == sizes.episodes * sizes.frames_per_episode
    )


def build_dataset(root: Path, sizes: Sizes) -> float:
    """Record the synthetic dataset with our writer into ``root``; returns the seconds it took.

    Built in a sibling folder and renamed at the end, so an interrupted build is never reused.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    building = root.with_name(root.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.parent.mkdir(parents=True, exist_ok=True)
    texture = make_texture()
    t0 = time.perf_counter()
    ds = LeRobotDataset.create(
        REPO_ID,
        fps=FPS,
        features=FEATURES,
        root=building,
        robot_type="synthetic_6dof",
        video_encoder=_video_encoder(),
    )
    for ep in range(sizes.episodes):
        for frame in episode_frames(ep, sizes.frames_per_episode, texture):
            ds.add_frame(frame, task=TASK)
        ds.save_episode()
    ds.finalize()
    elapsed = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    building.rename(root)
    return elapsed


def ensure_dataset(sizes: Sizes) -> dict[str, Any]:
    root = dataset_root(sizes)
    built, build_s = False, None
    if not dataset_is_complete(root, sizes):
        print(f"Building the synthetic dataset in {root} ...", flush=True)
        build_s = build_dataset(root, sizes)
        built = True
    video_bytes = sum(p.stat().st_size for p in (root / "videos").rglob("*.mp4"))
    return {
        "root": str(root.relative_to(REPO_ROOT)),
        "built_this_run": built,
        "build_s": build_s,
        "episodes": sizes.episodes,
        "frames_per_episode": sizes.frames_per_episode,
        "frames": sizes.episodes * sizes.frames_per_episode,
        "video_bytes": video_bytes,
        "camera": f"{CAMERA} {IMAGE}x{IMAGE} {VIDEO_CODEC} g={VIDEO_G} crf={VIDEO_CRF}",
    }


# ------------------------------------------------------------------------------ memory


def _status_kb(pid: int, key: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident set size (``VmHWM``) of a live process, in MiB; None off Linux."""
    kb = _status_kb(pid, "VmHWM")
    return None if kb is None else round(kb / 1024, 1)


def current_rss_mb(pid: int) -> float | None:
    kb = _status_kb(pid, "VmRSS")
    return None if kb is None else round(kb / 1024, 1)


def smaps_mb(pid: int) -> dict[str, float]:
    """Current Rss, Pss and private (Private_Clean + Private_Dirty) memory of a process, in MiB.

    For a forked DataLoader worker ``Private`` is what the worker really adds: Rss also counts the
    pages it still shares copy-on-write with the parent (torch's libraries, the dataset's arrays).
    """
    fields: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    except (OSError, ValueError):
        return {}
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {
        "rss_mb": round(fields.get("Rss", 0) / 1024, 1),
        "pss_mb": round(fields.get("Pss", 0) / 1024, 1),
        "private_mb": round(private / 1024, 1),
    }


def reset_peak_rss() -> bool:
    """Reset this process's ``VmHWM`` to its current RSS (Linux >= 4.0), so each run has its own peak."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class _PsutilSampler:
    """Fallback where ``/proc`` is missing: poll RSS of this process and its children with psutil.

    Sampling misses short spikes, so the kernel's ``VmHWM`` is preferred wherever it exists.
    """

    def __init__(self, interval_s: float = 0.05) -> None:
        import threading

        import psutil

        self._psutil, self.interval_s = psutil, interval_s
        self.peaks: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = self._psutil.Process()
        while not self._stop.wait(self.interval_s):
            for p in [me, *me.children()]:
                try:
                    rss = p.memory_info().rss / 1024**2
                except self._psutil.Error:
                    continue
                self.peaks[p.pid] = max(self.peaks.get(p.pid, 0.0), rss)

    def stop(self) -> dict[int, float]:
        self._stop.set()
        self._thread.join()
        return self.peaks


def _record_worker_pid(pids: Any, worker_id: int) -> None:
    """``worker_init_fn``: publish the worker's pid in shared memory so the parent can read its peak RSS."""
    pids[worker_id] = os.getpid()


# ------------------------------------------------------------------------------ loader benchmark


@dataclass(frozen=True)
class LoaderConfig:
    backend: str | None  # None: the library's default (used with cache_video_frames)
    cache: bool
    chunk: bool
    workers: int

    @property
    def mode(self) -> str:
        return "cache_video_frames" if self.cache else str(self.backend)

    @property
    def reference_key(self) -> str:
        return f"{'chunk' if self.chunk else 'plain'}/w{self.workers}"

    @property
    def label(self) -> str:
        return f"{self.mode} {self.reference_key}"


def loader_configs(backends: Sequence[str]) -> list[LoaderConfig]:
    modes = [(b, False) for b in backends] + [(None, True)]
    return [
        LoaderConfig(backend, cache, chunk, workers)
        for backend, cache in modes
        for chunk in (False, True)
        for workers in (0, 2)
    ]


def _one_loader_run(ds: Any, cfg: LoaderConfig, sizes: Sizes, seed: int) -> dict[str, Any]:
    """Warm up (fork workers, open decoders), then time ``sizes.epochs`` full shuffled epochs."""
    import torch
    from torch.utils.data import DataLoader

    gc.collect()
    reset_peak_rss()
    sampler = None
    if not Path("/proc/self/status").exists():
        try:
            sampler = _PsutilSampler()
        except ImportError:
            sampler = None
    pids = mp.Array(ctypes.c_int, max(cfg.workers, 1), lock=False)
    loader = DataLoader(
        ds,
        batch_size=BATCH_SIZE,
        shuffle=True,
        num_workers=cfg.workers,
        persistent_workers=cfg.workers > 0,
        generator=torch.Generator().manual_seed(seed),
        worker_init_fn=functools.partial(_record_worker_pid, pids) if cfg.workers else None,
    )
    load_avg = os.getloadavg()[0]
    t0 = time.perf_counter()
    it = iter(loader)
    warm_samples, t_first, shapes = 0, None, {}
    for i in range(sizes.warmup_batches):
        batch = next(it)
        warm_samples += len(batch["index"])
        if i == 0:
            t_first = time.perf_counter()
            shapes = {k: list(v.shape) for k, v in batch.items() if isinstance(v, torch.Tensor)}
    # A new iterator over persistent workers first drains the batches still in flight from the
    # warm-up, so that drain happens here, before the clock starts.
    it = iter(loader)
    t_start = time.perf_counter()
    samples, epoch_s = 0, []
    for epoch in range(sizes.epochs):
        if epoch:
            it = iter(loader)
        te = time.perf_counter()
        for batch in it:
            samples += len(batch["index"])
        epoch_s.append(round(time.perf_counter() - te, 4))
    t_end = time.perf_counter()
    main_pid = os.getpid()
    if sampler is not None:
        peaks = sampler.stop()
        main_peak = peaks.get(main_pid)
        worker_peaks = [round(v, 1) for p, v in peaks.items() if p != main_pid]
    else:
        main_peak = peak_rss_mb(main_pid)
        worker_peaks = [peak_rss_mb(pid) for pid in pids[: cfg.workers]]
    worker_now = [smaps_mb(pid) for pid in pids[: cfg.workers]] if sampler is None else []
    del it, loader  # shuts the persistent workers down
    timed_s = t_end - t_start
    return {
        "samples_per_s": round(samples / timed_s, 1),
        "samples_per_s_incl_startup": round((warm_samples + samples) / (t_end - t0), 1),
        "samples": samples,
        "timed_s": round(timed_s, 4),
        "epoch_s": epoch_s,
        "startup_s": round(t_first - t0, 4),
        "warmup_samples": warm_samples,
        "peak_rss_main_mb": main_peak,
        "peak_rss_workers_mb": worker_peaks,
        "workers_at_end_mb": worker_now,
        "loadavg_1min": round(load_avg, 2),
        "batch_shapes": shapes,
    }


def run_loader_config(cfg: LoaderConfig, root: Path, sizes: Sizes) -> dict[str, Any]:
    """All repeats of one configuration, in this process."""
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    baseline = current_rss_mb(os.getpid())  # torch + lerobot imported, nothing opened yet
    delta = {"action": [i / FPS for i in range(CHUNK)]} if cfg.chunk else None
    t0 = time.perf_counter()
    ds = LeRobotDataset(
        REPO_ID, root=root, delta_timestamps=delta, video_backend=cfg.backend, cache_video_frames=cfg.cache
    )
    open_s = time.perf_counter() - t0
    opened = current_rss_mb(os.getpid())
    runs = [_one_loader_run(ds, cfg, sizes, seed) for seed in range(sizes.repeats)]
    return {
        "config": asdict(cfg),
        "open_s": round(open_s, 4),
        "video_backend_used": ds.video_backend,
        "rss_after_imports_mb": baseline,
        "rss_after_open_mb": opened,
        "runs": runs,
    }


def _child_main(payload: str) -> None:
    """Entry point of a child process: run the given loader configurations, print JSON results."""
    spec = json.loads(payload)
    sizes = Sizes(**{**spec["sizes"], "record_points": tuple(spec["sizes"]["record_points"])})
    results = [run_loader_config(LoaderConfig(**c), Path(spec["root"]), sizes) for c in spec["configs"]]
    print("RESULT " + json.dumps(results), flush=True)


def _spec(configs: Sequence[LoaderConfig], root: Path, sizes: Sizes) -> str:
    return json.dumps({"root": str(root), "sizes": asdict(sizes), "configs": [asdict(c) for c in configs]})


def _our_command(configs: Sequence[LoaderConfig], root: Path, sizes: Sizes) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--_child", _spec(configs, root, sizes)]


def _run_child(
    command: list[str], configs: Sequence[LoaderConfig], env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run one measuring process; its ``RESULT <json>`` line holds one result per configuration."""
    proc = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"Loader benchmark child {Path(command[1]).name} failed (rc={proc.returncode}) for "
            f"{[c.label for c in configs]}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def run_loader_benchmarks(configs: list[LoaderConfig], root: Path, sizes: Sizes) -> list[dict[str, Any]]:
    """One child process per configuration (full mode) or one for all (quick mode)."""
    groups = [[c] for c in configs] if sizes.isolate else [configs]
    results: list[dict[str, Any]] = []
    for group in groups:
        print(f"  loader: {', '.join(c.label for c in group)} ...", flush=True)
        for res in _run_child(_our_command(group, root, sizes), group):
            summarize_loader(res)
            results.append(res)
            print(
                f"    {LoaderConfig(**res['config']).label:32s} {res['median_samples_per_s']:8.1f} samples/s "
                f"(runs {[r['samples_per_s'] for r in res['runs']]})",
                flush=True,
            )
    return results


def _spread(values: Sequence[float]) -> dict[str, float]:
    med = statistics.median(values)
    return {
        "median": round(med, 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "spread_pct": round(100 * (max(values) - min(values)) / med, 1) if med else 0.0,
    }


def summarize_loader(res: dict[str, Any]) -> None:
    """Add medians, spread and the ratio to the reference to one configuration's result."""
    cfg = LoaderConfig(**res["config"])
    sps = _spread([r["samples_per_s"] for r in res["runs"]])
    res["median_samples_per_s"] = sps["median"]
    res["samples_per_s_stats"] = sps
    res["median_samples_per_s_incl_startup"] = statistics.median(
        r["samples_per_s_incl_startup"] for r in res["runs"]
    )
    res["median_startup_s"] = statistics.median(r["startup_s"] for r in res["runs"])
    mains = [r["peak_rss_main_mb"] for r in res["runs"] if r["peak_rss_main_mb"] is not None]
    workers = [w for r in res["runs"] for w in r["peak_rss_workers_mb"] if w is not None]
    res["peak_rss_main_mb"] = max(mains) if mains else None
    res["peak_rss_worker_mb"] = max(workers) if workers else None
    private = [w["private_mb"] for r in res["runs"] for w in r["workers_at_end_mb"] if w]
    res["worker_private_mb"] = max(private) if private else None
    ref = REFERENCE["loader_samples_per_s"][cfg.reference_key]
    res["reference_samples_per_s"] = ref
    res["ratio_vs_reference"] = round(sps["median"] / ref, 2)
    res["meets_target"] = res["ratio_vs_reference"] >= TARGET_SPEEDUP


# ------------------------------------------------------------------------------ same-session reference


def _round_value(res: dict[str, Any]) -> float:
    """One process's figure: the median samples/s of its repeats."""
    return statistics.median(r["samples_per_s"] for r in res["runs"])


def summarize_same_session(rows: list[dict[str, Any]]) -> None:
    """Per row: each side's median (min-max) over rounds and the ratio of the medians."""
    for row in rows:
        ours = [_round_value(r) for r in row["ours_rounds"]]
        row["ours_samples_per_s"] = _spread(ours)
        if row["reference_rounds"]:
            ref = [_round_value(r) for r in row["reference_rounds"]]
            row["reference_samples_per_s"] = _spread(ref)
            row["ratio"] = round(statistics.median(ours) / statistics.median(ref), 2)
            row["ratio_per_round"] = [round(o / r, 2) for o, r in zip(ours, ref, strict=False)]


def same_session_table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| Benchmark | Ours: median (min–max) | LeRobot 0.6.1, same session | Ratio (per round) |",
        "|---|---|---|---|",
    ]
    for row in rows:
        cfg = LoaderConfig(**row["config"])
        sampling = f"{CHUNK}-step action chunk" if cfg.chunk else "plain"
        ref, ratio = "failed: see JSON", "n/a"
        if "ratio" in row:
            ref = _fmt_range(row["reference_samples_per_s"])
            ratio = (
                f"{row['ratio']:.1f}x ({min(row['ratio_per_round']):.1f}–{max(row['ratio_per_round']):.1f})"
            )
        lines.append(
            f"| DataLoader samples/s, {cfg.mode}, {sampling}, {cfg.workers} workers | "
            f"{_fmt_range(row['ours_samples_per_s'])} | {ref} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def run_same_session(
    configs: list[LoaderConfig],
    root: Path,
    sizes: Sizes,
    reference_python: str | None,
    rounds: int,
    result: dict[str, Any],
    out_path: Path,
) -> None:
    """Alternate ours and LeRobot 0.6.1 per row and round, each in a fresh process, on the same files.

    The machine's speed drifts within minutes, so figures of another day are no fair divisor; here
    both sides of a ratio are measured seconds apart. The JSON is rewritten after every round so an
    interrupted run keeps what it measured.
    """
    # The reference interpreter must import its own ``lerobot``, never ours through PYTHONPATH.
    reference_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    reference_script = str(BENCH_DIR / "reference_dataloader.py")
    rows = [
        {"config": asdict(c), "ours_rounds": [], "reference_rounds": [], "reference_errors": []}
        for c in configs
    ]
    result["same_session"] = rows
    for round_index in range(rounds):
        for cfg, row in zip(configs, rows, strict=True):
            row["ours_rounds"] += _run_child(_our_command([cfg], root, sizes), [cfg])
            line = f"  round {round_index + 1}/{rounds} {cfg.label:24s} ours {_round_value(row['ours_rounds'][-1]):7.0f}"
            if reference_python:
                command = [reference_python, reference_script, _spec([cfg], root, sizes)]
                try:
                    row["reference_rounds"] += _run_child(command, [cfg], reference_env)
                    line += f"  LeRobot 0.6.1 {_round_value(row['reference_rounds'][-1]):7.0f}"
                except RuntimeError as exc:  # one failing backend on their side must not end the run
                    row["reference_errors"].append(str(exc)[-2000:])
                    line += "  LeRobot 0.6.1 FAILED"
            print(line + " samples/s", flush=True)
        summarize_same_session(rows)
        result["rounds_done"] = round_index + 1
        result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        tmp = out_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(out_path)


# ------------------------------------------------------------------------------ recording benchmark


def _record_episode(ds: Any, frames: list[dict[str, np.ndarray]]) -> tuple[float, float]:
    """add_frame every frame (as fast as the writer accepts them), then save; returns both durations."""
    t0 = time.perf_counter()
    for frame in frames:
        ds.add_frame(frame, task=TASK)
    t1 = time.perf_counter()
    ds.save_episode()
    return t1 - t0, time.perf_counter() - t1


def run_recording(sizes: Sizes) -> dict[str, Any]:
    """Seconds per ``record_len``-frame episode when the dataset already holds N episodes.

    Between the measurement points the dataset is filled with short episodes (also timed, to show
    the per-save cost along the way). Frames are generated up front so only the writer is timed.
    """
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root = CACHE_DIR / "record-tmp"
    shutil.rmtree(root, ignore_errors=True)
    texture = make_texture(seed=1)
    long_eps = [episode_frames(10_000 + k, sizes.record_len, texture) for k in range(sizes.record_repeats)]
    fill = episode_frames(20_000, sizes.fill_len, texture)
    t_all = time.perf_counter()
    ds = LeRobotDataset.create(
        "bench/record",
        fps=FPS,
        features=FEATURES,
        root=root,
        robot_type="synthetic_6dof",
        video_encoder=_video_encoder(),
    )
    held, fill_runs, points = 0, [], []
    for point in sizes.record_points:
        while held < point:
            add_s, save_s = _record_episode(ds, fill)
            fill_runs.append(
                {"held": held, "add_frames_s": round(add_s, 4), "save_episode_s": round(save_s, 4)}
            )
            held += 1
        runs = []
        for k in range(sizes.record_repeats):
            load_avg = os.getloadavg()[0]
            add_s, save_s = _record_episode(ds, long_eps[k])
            total = add_s + save_s
            runs.append(
                {
                    "held": held,
                    "total_s": round(total, 4),
                    "add_frames_s": round(add_s, 4),
                    "save_episode_s": round(save_s, 4),
                    "frames_per_s": round(sizes.record_len / total, 1),
                    "loadavg_1min": round(load_avg, 2),
                }
            )
            held += 1
        total_stats = _spread([r["total_s"] for r in runs])
        ref = REFERENCE["record_s_per_400_frames"].get(str(point)) if sizes.record_len == 400 else None
        points.append(
            {
                "held": point,
                "s_per_episode": total_stats,
                "frames_per_s": round(sizes.record_len / total_stats["median"], 1),
                "median_save_episode_s": statistics.median(r["save_episode_s"] for r in runs),
                "reference_s_per_episode": ref,
                "speedup_vs_reference": round(ref / total_stats["median"], 2) if ref else None,
                "runs": runs,
            }
        )
        print(
            f"  record: {sizes.record_len} frames with {point} episodes held: "
            f"{total_stats['median']:.3f} s ({[r['total_s'] for r in runs]})",
            flush=True,
        )
    t0 = time.perf_counter()
    ds.finalize()
    finalize_s = time.perf_counter() - t0
    total_s = time.perf_counter() - t_all
    check = LeRobotDataset("bench/record", root=root)
    expected_frames = len(fill_runs) * sizes.fill_len + len(points) * sizes.record_repeats * sizes.record_len
    if check.num_episodes != held or check.num_frames != expected_frames:
        raise RuntimeError(
            f"Recorded dataset reads back {check.num_episodes} episodes / {check.num_frames} frames, "
            f"expected {held} / {expected_frames}."
        )
    shutil.rmtree(root, ignore_errors=True)
    return {
        "episode_len": sizes.record_len,
        "fill_episode_len": sizes.fill_len,
        "points": points,
        "fill_save_episode_s_by_held": _fill_bins(fill_runs),
        "fill_runs": fill_runs,
        "finalize_s": round(finalize_s, 3),
        "finalize_note": "merges every staged episode into the v3.0 files once, at the end",
        "episodes_total": held,
        "total_s": round(total_s, 2),
    }


def _fill_bins(fill_runs: list[dict[str, Any]], bins: int = 4) -> list[dict[str, Any]]:
    """Median save_episode time of the filler episodes in equal ranges of dataset size (flat = good)."""
    if not fill_runs:
        return []
    n = len(fill_runs)
    out = []
    for b in range(bins):
        part = fill_runs[b * n // bins : (b + 1) * n // bins]
        if part:
            out.append(
                {
                    "held_from": part[0]["held"],
                    "held_to": part[-1]["held"],
                    "median_save_episode_s": round(statistics.median(r["save_episode_s"] for r in part), 4),
                    "median_add_frames_s": round(statistics.median(r["add_frames_s"] for r in part), 4),
                }
            )
    return out


# ------------------------------------------------------------------------------ environment


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except Exception:  # a missing or broken optional package is reported, not fatal
        return None


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def machine_info() -> dict[str, Any]:
    cpu_model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_total = _status_kb_meminfo()
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model,
        "mem_total_mb": mem_total,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _status_kb_meminfo() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024)
    except (OSError, ValueError):
        return None
    return None


def software_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        name: _version(name) for name in ("lerobot", "torch", "av", "torchcodec", "numpy", "pyarrow")
    }
    try:
        import av

        info["ffmpeg_libavcodec_pyav"] = ".".join(map(str, av.library_versions["libavcodec"]))
    except Exception:  # informational only
        pass
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = _git("status", "--porcelain", "--untracked-files=no", "src")
    info["git_commit"] = commit
    info["git_src_dirty"] = bool(dirty) if dirty is not None else None
    return info


def available_backends() -> list[str]:
    """Backends that really decode here (torchcodec needs a matching system FFmpeg)."""
    from lerobot.datasets.video import get_safe_default_video_backend

    return ["torchcodec", "pyav"] if get_safe_default_video_backend() == "torchcodec" else ["pyav"]


# ------------------------------------------------------------------------------ report


def _fmt_range(stats: dict[str, float], digits: int = 0) -> str:
    return f"{stats['median']:.{digits}f} ({stats['min']:.{digits}f}–{stats['max']:.{digits}f})"


def summary_table(result: dict[str, Any]) -> str:
    """The compact table of the README: ours (median, min–max), the reference and the ratio."""
    lines = [
        "| Benchmark | Ours: median (min–max) | Reference | Ratio |",
        "|---|---|---|---|",
    ]
    for res in result["loader"]:
        cfg = LoaderConfig(**res["config"])
        mode = "`cache_video_frames=True`" if cfg.cache else cfg.mode
        sampling = f"{CHUNK}-step action chunk" if cfg.chunk else "plain"
        lines.append(
            f"| DataLoader samples/s, {mode}, {sampling}, {cfg.workers} workers | "
            f"{_fmt_range(res['samples_per_s_stats'])} | {res['reference_samples_per_s']:.0f} | "
            f"{res['ratio_vs_reference']:.1f}x{'' if res['meets_target'] else ' (below 2x target)'} |"
        )
    rec = result.get("recording")
    for p in rec["points"] if rec else []:
        ref = f"{p['reference_s_per_episode']:.1f}" if p["reference_s_per_episode"] else "n/a"
        ratio = f"{p['speedup_vs_reference']:.0f}x" if p["speedup_vs_reference"] else "n/a"
        lines.append(
            f"| Recording s per {rec['episode_len']}-frame episode, {p['held']} episodes already saved | "
            f"{_fmt_range(p['s_per_episode'], 2)} | {ref} | {ratio} |"
        )
    return "\n".join(lines) + "\n"


def markdown_tables(result: dict[str, Any]) -> str:
    """Full tables for ``results/dataloader.md``: spreads, start-up and memory next to the medians."""
    sizes, ds, m, sw = result["settings"], result["dataset"], result["machine"], result["software"]
    lines = [
        f"Command: `{result['command']}`; {result['date']}. Machine: {m['cpu_count']} CPUs "
        f"({m['cpu_model']}), {m['mem_total_mb']} MB RAM, {m['platform']}, Python {m['python']}, torch "
        f"{sw['torch']}, av {sw['av']}, torchcodec {sw['torchcodec']}. Load average at start / end: "
        f"{m['loadavg_at_start']} / {m.get('loadavg_at_end')} (the machine is shared: expect noise).",
        "",
        f"Reference: {REFERENCE_LABEL}: {REFERENCE['implementation']}.",
        "",
        "## Summary",
        "",
        summary_table(result),
        f"## DataLoader random access ({ds['episodes']} episodes x {ds['frames_per_episode']} frames, "
        f"{ds['camera']})",
        "",
        f"batch {BATCH_SIZE}, shuffle; {sizes['epochs']} epochs timed after {sizes['warmup_batches']} "
        f"warm-up batches (worker start-up excluded; 'incl. start-up' adds it back); median (min–max) of "
        f"{sizes['repeats']} runs, each configuration in a fresh process; chunk = `delta_timestamps` "
        f"action chunk of {CHUNK} steps. Memory: peak RSS (VmHWM); a worker's RSS includes pages shared "
        "copy-on-write with the main process, 'private' is what it adds. torch + lerobot imported "
        f"alone take {result['loader'][0]['rss_after_imports_mb']} MB.",
        "",
        "| Backend | Sampling | Workers | Ours, samples/s | incl. start-up | Reference | Ratio | "
        "Peak RSS main (MB) | Peak RSS per worker (private) (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in result["loader"]:
        cfg = LoaderConfig(**res["config"])
        worker = f"{res['peak_rss_worker_mb']} ({res['worker_private_mb']})" if cfg.workers else "-"
        below = "" if res["meets_target"] else f" (below {TARGET_SPEEDUP:g}x)"
        lines.append(
            f"| {cfg.mode} | {'chunk' if cfg.chunk else 'plain'} | {cfg.workers} | "
            f"{_fmt_range(res['samples_per_s_stats'])} | {res['median_samples_per_s_incl_startup']:.0f} | "
            f"{res['reference_samples_per_s']:.0f} | {res['ratio_vs_reference']:.2f}x{below} | "
            f"{res['peak_rss_main_mb']} | {worker} |"
        )
    cache_open = [r["open_s"] for r in result["loader"] if r["config"]["cache"]]
    if cache_open:
        lines += [
            "",
            "`cache_video_frames=True` decodes every frame once when the dataset is opened "
            f"({statistics.median(cache_open):.2f} s here, not included above) and is compared with the "
            "reference's torchcodec numbers (the reference has no such mode).",
        ]
    rec = result.get("recording")
    if rec:
        lines += [
            "",
            f"## Recording ({rec['episode_len']}-frame episodes, add_frame + save_episode incl. AV1 encoding)",
            "",
            f"Frames are pushed as fast as the writer takes them; median (min–max) of "
            f"{sizes['record_repeats']} consecutive episodes at each point, with "
            f"{rec['fill_episode_len']}-frame filler episodes recorded in between.",
            "",
            "| Episodes already saved | Ours, s per episode | frames/s | of which save_episode (s) | "
            "Reference (s) | Speed-up |",
            "|---|---|---|---|---|---|",
        ]
        for p in rec["points"]:
            ref = f"{p['reference_s_per_episode']}" if p["reference_s_per_episode"] else "n/a"
            ratio = f"{p['speedup_vs_reference']:.1f}x" if p["speedup_vs_reference"] else "n/a"
            lines.append(
                f"| {p['held']} | {_fmt_range(p['s_per_episode'], 3)} | {p['frames_per_s']:.0f} | "
                f"{p['median_save_episode_s']:.3f} | {ref} | {ratio} |"
            )
        if rec["fill_save_episode_s_by_held"]:
            bins = ", ".join(
                f"{b['held_from']}–{b['held_to']} saved: {b['median_save_episode_s'] * 1000:.0f} ms"
                for b in rec["fill_save_episode_s_by_held"]
            )
            lines += [
                "",
                f"Median save_episode of the {rec['fill_episode_len']}-frame filler episodes by dataset "
                f"size: {bins}.",
            ]
        lines += [
            "",
            f"`finalize()` of all {rec['episodes_total']} episodes ({rec['finalize_note']}): "
            f"{rec['finalize_s']:.2f} s.",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ profiling


def run_profiles(sizes: Sizes, out_dir: Path) -> None:
    """cProfile the single-process hot paths (one epoch, workers=0) and one recorded episode.

    Workers are left out because cProfile only sees the main process; with ``num_workers=0`` the
    same per-sample code runs in the main thread. The writer's encoder thread is not profiled
    either: its cost shows up as time spent blocked in ``add_frame`` / ``save_episode``.
    """
    import cProfile
    import io
    import pstats

    import torch
    from torch.utils.data import DataLoader

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    out_dir.mkdir(parents=True, exist_ok=True)
    root = dataset_root(sizes)

    def profile(name: str, fn: Callable[[], Any]) -> None:
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        fn()
        prof.disable()
        wall = time.perf_counter() - t0
        buf = io.StringIO()
        stats = pstats.Stats(prof, stream=buf)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)
        (out_dir / f"profile-{name}.txt").write_text(f"wall {wall:.3f} s\n" + buf.getvalue())
        print(f"--- {name}: {wall:.2f} s; top functions by own time:")
        total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
        top = sorted(stats.stats.items(), key=lambda kv: kv[1][2], reverse=True)[:10]  # type: ignore[attr-defined]
        for (file, line, func), (_, ncalls, tt, ct, _) in top:
            print(
                f"  {100 * tt / total:5.1f}%  {tt:7.3f} s own  {ct:7.3f} s cum  {ncalls:7d}x  {Path(file).name}:{line} {func}"
            )

    for backend, cache, chunk in (
        ("torchcodec", False, False),
        ("torchcodec", False, True),
        ("pyav", False, False),
        (None, True, True),
    ):
        if backend and backend not in available_backends():
            continue
        delta = {"action": [i / FPS for i in range(CHUNK)]} if chunk else None
        ds = LeRobotDataset(
            REPO_ID, root=root, delta_timestamps=delta, video_backend=backend, cache_video_frames=cache
        )
        loader = DataLoader(
            ds, batch_size=BATCH_SIZE, shuffle=True, generator=torch.Generator().manual_seed(0)
        )
        next(iter(loader))  # open the decoder outside the profile

        def epoch(loader: DataLoader = loader) -> None:
            for _ in loader:
                pass

        profile(f"loader-{'cache' if cache else backend}-{'chunk' if chunk else 'plain'}-w0", epoch)

    rec_root = CACHE_DIR / "profile-record-tmp"
    shutil.rmtree(rec_root, ignore_errors=True)
    ds = LeRobotDataset.create(
        "bench/profile", fps=FPS, features=FEATURES, root=rec_root, video_encoder=_video_encoder()
    )
    frames = episode_frames(0, sizes.record_len, make_texture(seed=1))
    _record_episode(ds, frames)
    profile("record-episode", lambda: _record_episode(ds, frames))
    ds.finalize()
    shutil.rmtree(rec_root, ignore_errors=True)


# ------------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, 1 repeat; results to results/tmp/")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the hot paths instead of benchmarking"
    )
    parser.add_argument("--skip-recording", action="store_true", help="only the DataLoader benchmark")
    parser.add_argument(
        "--render", type=Path, metavar="JSON", help="rewrite the .md tables from a results JSON and exit"
    )
    parser.add_argument(
        "--reference-python",
        metavar="PATH",
        help="interpreter with LeRobot 0.6.1 (see reference_dataloader.py): time it in the same session "
        "on the same files, alternating with ours; results to results/dataloader_lerobot.json",
    )
    parser.add_argument("--rounds", type=int, default=3, help="with --reference-python: rounds per row")
    parser.add_argument(
        "--configs",
        help="with --reference-python: comma-separated rows such as torchcodec/plain/w0,pyav/chunk/w2 "
        "(default: every backend, plain and chunk, 0 and 2 workers)",
    )
    parser.add_argument("--repeats", type=int, help="timed runs per process (default: 5, --quick: 1)")
    parser.add_argument("--_child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args._child:
        _child_main(args._child)
        return 0

    if args.render:
        result = json.loads(args.render.read_text())
        report = markdown_tables(result)
        args.render.with_suffix(".md").write_text("# DataLoader and recording benchmark\n\n" + report)
        print(report)
        return 0
    sizes = QUICK if args.quick else FULL
    if args.repeats:
        sizes = dataclasses.replace(sizes, repeats=args.repeats)
    t_start = time.perf_counter()
    dataset = ensure_dataset(sizes)
    if args.profile:
        run_profiles(sizes, TMP_RESULTS_DIR)
        return 0
    backends = available_backends()
    result: dict[str, Any] = {
        "benchmark": "dataloader",
        "mode": "quick" if args.quick else "full",
        "command": "python benchmarks/dataloader.py" + (" --quick" if args.quick else ""),
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "software": software_info(),
        "settings": {**asdict(sizes), "batch_size": BATCH_SIZE, "chunk": CHUNK, "fps": FPS},
        "backends_available": backends,
        "reference": REFERENCE,
        "target_speedup": TARGET_SPEEDUP,
        "dataset": dataset,
    }
    print(f"Backends: {backends}; dataset {dataset['root']} ({dataset['frames']} frames)", flush=True)
    out_dir = TMP_RESULTS_DIR if args.quick else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.reference_python or args.configs:
        configs = [c for c in loader_configs(backends) if not c.cache]  # the reference has no frame cache
        if args.configs:
            wanted = args.configs.split(",")
            by_key = {f"{c.mode}/{c.reference_key}": c for c in configs}
            unknown = [w for w in wanted if w not in by_key]
            if unknown:
                parser.error(f"--configs: unknown rows {unknown}; choose from {sorted(by_key)}")
            configs = [by_key[w] for w in wanted]
        result["command"] = "python benchmarks/dataloader.py " + " ".join(
            argv if argv is not None else sys.argv[1:]
        )
        result["reference"] = {
            "implementation": "Hugging Face LeRobot 0.6.1 (reference_dataloader.py), same files, same session",
            "python": args.reference_python,
        }
        result["rounds"] = args.rounds
        del result["target_speedup"]
        path = out_dir / ("dataloader_lerobot.quick.json" if args.quick else "dataloader_lerobot.json")
        run_same_session(
            configs, REPO_ROOT / dataset["root"], sizes, args.reference_python, args.rounds, result, path
        )
        print("\n" + same_session_table(result["same_session"]))
        print(f"Wrote {path} ({time.perf_counter() - t_start:.0f} s in all)")
        return 0
    result["loader"] = run_loader_benchmarks(loader_configs(backends), REPO_ROOT / dataset["root"], sizes)
    result["recording"] = None if args.skip_recording else run_recording(sizes)
    result["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["total_s"] = round(time.perf_counter() - t_start, 1)

    name = "dataloader.quick" if args.quick else "dataloader"
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    report = markdown_tables(result)
    (out_dir / f"{name}.md").write_text("# DataLoader and recording benchmark\n\n" + report)
    print("\n" + report)
    print(f"Wrote {out_dir / name}.json ({result['total_s']:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
