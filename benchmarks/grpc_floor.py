"""What gRPC alone costs per round trip on loopback, for the payload sizes of ``policy_server_latency.py``.

A unary gRPC call that echoes a fixed-size reply (generic handler, raw bytes, no policy, no
serialisation of our own) is the floor a gRPC policy server could reach. Compared with the socket
protocol's full round trip, it shows whether moving to gRPC would keep latency within 1 ms of today's.
Needs ``pip install grpcio`` (not a lerobot dependency). Usage: ``python benchmarks/grpc_floor.py [n]``;
merges the label ``grpc_unary_floor`` into ``benchmarks/results/policy_server_latency.json``.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent import futures
from pathlib import Path

import numpy as np

try:
    import grpc
except ImportError as e:
    raise SystemExit(f"This benchmark needs grpcio: pip install grpcio ({e})") from e

RESULTS = Path(__file__).parent / "results" / "policy_server_latency.json"
REPLY = bytes(50 * 6 * 4 + 200)  # a (50, 6) float32 chunk plus a header
REQUESTS = {"state_only": bytes(24 + 200), "state_and_480x640_frame": bytes(480 * 640 * 3 + 24 + 300)}


def main(n: int) -> dict:
    handler = grpc.method_handlers_generic_handler(
        "bench.Policy", {"Predict": grpc.unary_unary_rpc_method_handler(lambda request, context: REPLY)}
    )
    options = [("grpc.max_receive_message_length", 8 << 20), ("grpc.max_send_message_length", 8 << 20)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options)
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    result = {}
    with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as channel:
        call = channel.unary_unary("/bench.Policy/Predict")
        for name, request in REQUESTS.items():
            for _ in range(20):
                call(request)
            times = []
            for _ in range(n):
                start = time.perf_counter()
                call(request)
                times.append(1e3 * (time.perf_counter() - start))
            blocks = np.array_split(
                np.array(times), 5
            )  # on a shared machine the quietest block is the cleanest
            result[name] = {
                "median_ms": round(float(np.median(times)), 4),
                "best_block_median_ms": round(float(min(np.median(b) for b in blocks)), 4),
                "p99_ms": round(float(np.percentile(times, 99)), 4),
            }
    server.stop(None)
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results["grpc_unary_floor"] = {**result, "n": n, "grpcio": grpc.__version__}
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(RESULTS)
    return result


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300)))
