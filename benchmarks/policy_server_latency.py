"""Round-trip latency of the policy server on loopback: one observation out, one action chunk back.

A trivial policy (a (50, 6) chunk from the state) isolates the transport: handshake excluded, the
median, p99 and lowest median of 5 consecutive blocks of ``RemotePredictor.predict_chunk`` over ``n``
calls after 20 warm-up calls, for a state-only observation and for state + one 480x640 RGB frame. Uses only the API that every version of
the server has, so the same script measures the code before and after a change:

    PYTHONPATH=<old checkout>/src python benchmarks/policy_server_latency.py before [n]
    PYTHONPATH=src python benchmarks/policy_server_latency.py after [n]

Results are merged by label into ``benchmarks/results/policy_server_latency.json``. Setting
``LEROBOT_POLICY_SERVER_TOKEN`` measures the authenticated path (versions with token support).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from lerobot.async_inference.policy_server import PolicyServer
from lerobot.async_inference.robot_client import RemotePredictor

RESULTS = Path(__file__).parent / "results" / "policy_server_latency.json"


class ChunkPolicy:
    config = SimpleNamespace(type="bench", input_features={"observation.state": None})

    def predict_action_chunk(self, obs):
        return torch.as_tensor(obs["observation.state"]).reshape(1, 1, 6).repeat(1, 50, 1)


def measure(predictor: RemotePredictor, observation: dict, n: int) -> dict:
    for _ in range(20):
        predictor.predict_chunk(observation)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        predictor.predict_chunk(observation)
        times.append(1e3 * (time.perf_counter() - start))
    blocks = np.array_split(np.array(times), 5)  # on a shared machine the quietest block is the cleanest
    return {
        "median_ms": round(float(np.median(times)), 4),
        "best_block_median_ms": round(float(min(np.median(b) for b in blocks)), 4),
        "p99_ms": round(float(np.percentile(times, 99)), 4),
    }


def main(label: str, n: int) -> dict:
    state = {"observation.state": np.arange(6, dtype=np.float32)}
    frame = {**state, "observation.images.front": np.zeros((480, 640, 3), dtype=np.uint8)}
    server = PolicyServer(ChunkPolicy(), port=0).start()
    try:
        predictor = RemotePredictor(f"127.0.0.1:{server.port}")
        result = {
            "state_only": measure(predictor, state, n),
            "state_and_480x640_frame": measure(predictor, frame, n),
        }
        predictor.close()
    finally:
        server.stop()
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[label] = {**result, "n": n, "python": platform.python_version(), "cpu": platform.processor()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(RESULTS)
    return result


if __name__ == "__main__":
    print(
        json.dumps(
            main(
                sys.argv[1] if len(sys.argv) > 1 else "current",
                int(sys.argv[2]) if len(sys.argv) > 2 else 300,
            )
        )
    )
