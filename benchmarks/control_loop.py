"""Recording at 30 Hz on so100_sim with one and two simulated 128x128 cameras (realtime, threaded cameras).

Reports the share of cycles on time and mean / p99 cycle time (``RateLoop.stats``), and frames encoded
per second: camera frames handed to the background encoders divided by the wall time from the first
frame until ``save_episode`` returned (the encoders have drained). Writes
``benchmarks/results/control_loop.json`` and prints a markdown table. Usage:
``python benchmarks/control_loop.py [seconds_per_run]``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYNPUT_BACKEND", "dummy")

from lerobot.cameras import SimCameraConfig  # noqa: E402
from lerobot.datasets.feature_utils import hw_to_dataset_features  # noqa: E402
from lerobot.datasets.lerobot_dataset import LeRobotDataset  # noqa: E402
from lerobot.robots.sim import SO100Sim  # noqa: E402
from lerobot.scripts.record import record_loop  # noqa: E402
from lerobot.teleoperators.sim_leader import SimLeader  # noqa: E402
from lerobot.utils.control_loop import KeyboardEvents  # noqa: E402

FPS = 30


def run(views: list[str], seconds: float, root: Path) -> dict:
    cams = {v: SimCameraConfig(width=128, height=128, fps=FPS) for v in views}
    robot, teleop = SO100Sim(cameras=cams, fps=FPS), SimLeader(fps=FPS)
    features = hw_to_dataset_features(robot.observation_features, robot.action_features)
    ds = LeRobotDataset.create("bench/loop", fps=FPS, features=features, root=root, robot_type=robot.name)
    with robot, teleop:
        teleop.bind(robot)
        start = time.perf_counter()
        loop = record_loop(robot, teleop.get_action, FPS, seconds, KeyboardEvents(), ds, "bench", True)
        ds.save_episode()
        elapsed = time.perf_counter() - start
    ds.finalize()
    stats = loop.stats()
    return {"cameras": len(views), **stats, "frames_encoded_per_s": stats["cycles"] * len(views) / elapsed,
            "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0]}  # fmt: skip


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10.0
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, views in enumerate((["front"], ["front", "top"])):
            results.append(run(views, seconds, Path(tmp) / str(i)))
    out = Path(__file__).parent / "results" / "control_loop.json"
    out.write_text(json.dumps({"fps": FPS, "seconds_per_run": seconds, "runs": results}, indent=2))
    print("| cameras | cycles | on time | mean ms | p99 ms | frames encoded/s | load avg |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['cameras']} | {r['cycles']} | {100 * r['on_time_share']:.1f}% | {r['mean_ms']:.1f} | "
              f"{r['p99_ms']:.1f} | {r['frames_encoded_per_s']:.1f} | {r['load_avg_1min']:.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
