"""``lerobot-demo``: the README's main job on an embedded default (no hardware, network or GPU).

Until the simulation and policy parts land, the main job is the data path every later part relies
on: a scripted 2-D reaching agent with a rendered top camera is recorded into a LeRobotDataset v3.0
(AV1 video, parquet, stats), read back through ``LeRobotDataset`` and a ``DataLoader`` with an
action chunk, and every recorded value is checked against what was written.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lerobot.datasets.lerobot_dataset import LeRobotDataset

IMAGE_SIZE = 96


def render(position: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Top view of the scene: grey table, green goal square, red agent disc (uint8 HxWx3)."""
    img = np.full((IMAGE_SIZE, IMAGE_SIZE, 3), 200, dtype=np.uint8)
    ys, xs = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
    gx, gy = ((goal + 1) / 2 * (IMAGE_SIZE - 1)).astype(int)
    img[max(gy - 6, 0) : gy + 6, max(gx - 6, 0) : gx + 6] = (40, 180, 60)
    px, py = (position + 1) / 2 * (IMAGE_SIZE - 1)
    img[(xs - px) ** 2 + (ys - py) ** 2 <= 25] = (220, 40, 40)
    return img


def scripted_episode(rng: np.random.Generator, length: int) -> list[dict]:
    """A proportional controller driving the agent to a random goal, with a little noise."""
    position = rng.uniform(-0.9, 0.9, size=2).astype(np.float32)
    goal = rng.uniform(-0.9, 0.9, size=2).astype(np.float32)
    frames = []
    for _ in range(length):
        action = np.clip(0.25 * (goal - position) + rng.normal(0, 0.01, 2), -0.2, 0.2).astype(np.float32)
        frames.append(
            {
                "observation.state": position.copy(),
                "observation.environment_state": goal.copy(),
                "action": action,
                "observation.images.top": render(position, goal),
            }
        )
        position = np.clip(position + action, -1, 1).astype(np.float32)
    return frames


FEATURES = {
    "observation.state": {"dtype": "float32", "shape": (2,), "names": ["x", "y"]},
    "observation.environment_state": {"dtype": "float32", "shape": (2,), "names": ["goal_x", "goal_y"]},
    "action": {"dtype": "float32", "shape": (2,), "names": ["dx", "dy"]},
    "observation.images.top": {
        "dtype": "video",
        "shape": (IMAGE_SIZE, IMAGE_SIZE, 3),
        "names": ["height", "width", "channels"],
    },
}


def run(root: Path, num_episodes: int, episode_length: int, fps: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    ds = LeRobotDataset.create(
        "local/demo_reach", fps=fps, features=FEATURES, robot_type="sim_point2d", root=root
    )
    written = []
    for _ in range(num_episodes):
        frames = scripted_episode(rng, episode_length)
        written.append(frames)
        ds.add_episode(frames, task="reach the green square")
    ds.finalize()
    t_record = time.perf_counter() - t0

    t0 = time.perf_counter()
    ds = LeRobotDataset(
        "local/demo_reach", root=root, delta_timestamps={"action": [i / fps for i in range(10)]}
    )
    max_err_state, max_err_pixel = 0.0, 0.0
    for ep, frames in enumerate(written):
        episode = ds.get_episode(ep)
        for j in (0, len(frames) // 2, len(frames) - 1):
            item = episode[j]
            max_err_state = max(
                max_err_state,
                float(np.abs(item["observation.state"].numpy() - frames[j]["observation.state"]).max()),
            )
            pixels = item["observation.images.top"].permute(1, 2, 0).numpy() * 255
            max_err_pixel = max(
                max_err_pixel, float(np.abs(pixels - frames[j]["observation.images.top"]).mean())
            )
    loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True, num_workers=2)
    n_samples, shapes = 0, {}
    for batch in loader:
        n_samples += len(batch["index"])
        shapes = (
            shapes
            if n_samples > len(batch["index"])
            else {k: tuple(v.shape) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        )
    t_read = time.perf_counter() - t0
    return {
        "dataset": ds,
        "record_s": t_record,
        "read_s": t_read,
        "samples": n_samples,
        "batch_shapes": shapes,
        "max_state_error": max_err_state,
        "mean_pixel_error": max_err_pixel,
    }


def summarize(result: dict) -> str:
    ds: LeRobotDataset = result["dataset"]
    files = sorted(p for p in ds.root.rglob("*") if p.is_file())
    lines = [
        f"Recorded {ds.num_episodes} episodes / {ds.num_frames} frames at {ds.fps} fps in {result['record_s']:.1f} s",
        f"  root: {ds.root}",
        *(f"    {p.relative_to(ds.root)}  ({p.stat().st_size / 1024:.1f} KiB)" for p in files),
        "  features: " + ", ".join(f"{k} {ft['dtype']}{list(ft['shape'])}" for k, ft in ds.features.items()),
        f"  tasks: {list(ds.meta.tasks.index)}",
        f"  stats action mean={np.round(ds.meta.stats['action']['mean'], 4).tolist()} "
        f"std={np.round(ds.meta.stats['action']['std'], 4).tolist()}",
        f"Read back {result['samples']} samples through a DataLoader (2 workers, 10-step action chunk) "
        f"in {result['read_s']:.1f} s",
        *(f"    {k}: {s}" for k, s in result["batch_shapes"].items()),
        f"  round trip: max state error {result['max_state_error']:.2g}, "
        f"mean pixel error {result['mean_pixel_error']:.2f}/255 (AV1, lossy)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", type=Path, default=None, help="where to write the dataset (default: a temp dir)"
    )
    parser.add_argument("--num-episodes", type=int, default=10)
    parser.add_argument("--episode-length", type=int, default=40)
    parser.add_argument("--fps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    tmp = None
    root = args.root
    if root is None:
        tmp = Path(tempfile.mkdtemp(prefix="lerobot_demo_"))
        root = tmp / "demo_reach"
    try:
        result = run(root, args.num_episodes, args.episode_length, args.fps, args.seed)
        print(summarize(result))
        ok = result["max_state_error"] == 0.0 and result["mean_pixel_error"] < 3.0
        print("DEMO OK" if ok else "DEMO FAILED: values read back differ from values written")
        return 0 if ok else 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
