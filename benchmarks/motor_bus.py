"""Sync read + sync write round trips per second for a 6-motor arm at 1 Mbps, on the emulator.

Why: a 30 Hz control loop reads every joint and writes every goal once per step, so one read+write
cycle must stay well below 33 ms (target: < 5 ms). On the emulator there is no wire delay, so the
number measures our own packet code (encode, serial I/O, parse); the wire-time column says what a
real 1 Mbps bus allows for the same bytes (10 bits per byte on the wire: start + 8 data + stop).

The emulator runs in a child process (as with ``lerobot-emulate-arm``), so it does not share the GIL
with the bus being measured. Writes ``benchmarks/results/motor_bus.json``.

Usage::

    .venv/bin/python benchmarks/motor_bus.py [--cycles 2000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import time
from pathlib import Path

from lerobot.motors import DynamixelMotorsBus, FeetechMotorsBus, Motor, MotorNormMode, MotorsBus
from lerobot.motors.emulator import ARMS, start_emulated_arm
from lerobot.motors.protocol import BROADCAST_ID, SYNC_READ, SYNC_WRITE, Packet

RESULTS = Path(__file__).parent / "results" / "motor_bus.json"
BAUDRATE = 1_000_000
CASES = {
    "feetech_sts3215": ("so100_follower", FeetechMotorsBus),
    "dynamixel_x": ("koch_follower", DynamixelMotorsBus),
}


def serve(robot_type: str, conn) -> None:
    with start_emulated_arm(robot_type) as emulator:
        conn.send(emulator.port)
        conn.recv()  # until the parent is done


def bytes_per_cycle(bus: MotorsBus) -> int:
    """Sync read instruction + one status per motor + sync write instruction, as sent on the wire."""
    protocol = bus.protocol
    names = list(bus.motors)
    addr, size = bus._register(names, "Present_Position")
    ids = [m.id for m in bus.motors.values()]
    read = protocol.encode_instruction(
        Packet(BROADCAST_ID, SYNC_READ, protocol.sync_read_params(addr, size, ids))
    )
    status = sum(len(protocol.encode_status(Packet(i, 0, b"\0" * size))) for i in ids)
    goal_addr, goal_size = bus._register(names, "Goal_Position")
    data = {i: b"\0" * goal_size for i in ids}
    write = protocol.encode_instruction(
        Packet(BROADCAST_ID, SYNC_WRITE, protocol.sync_write_params(goal_addr, goal_size, data))
    )
    return len(read) + status + len(write)


def measure(robot_type: str, bus_cls: type[MotorsBus], cycles: int) -> dict:
    parent, child = mp.Pipe()
    server = mp.get_context("spawn").Process(target=serve, args=(robot_type, child), daemon=True)
    server.start()
    port = parent.recv()
    models = ARMS[robot_type][1]
    motors = {f"m{i}": Motor(i, model, MotorNormMode.DEGREES) for i, model in enumerate(models, start=1)}
    bus = bus_cls(port, motors, baudrate=BAUDRATE)
    bus.connect()
    bus.enable_torque()
    times = []
    for k in range(cycles + 50):
        start = time.perf_counter()
        positions = bus.sync_read("Present_Position", normalize=False)
        bus.sync_write("Goal_Position", positions, normalize=False)
        if k >= 50:  # warm-up excluded
            times.append(time.perf_counter() - start)
    bus.disconnect()
    parent.send("stop")
    server.join(5)
    n_bytes = bytes_per_cycle(bus)
    wire_s = n_bytes * 10 / BAUDRATE
    mean = statistics.fmean(times)
    return {
        "robot_type": robot_type,
        "motors": len(motors),
        "cycles": cycles,
        "cycle_ms_mean": round(mean * 1e3, 4),
        "cycle_ms_p50": round(statistics.median(times) * 1e3, 4),
        "cycle_ms_p99": round(sorted(times)[int(0.99 * len(times))] * 1e3, 4),
        "cycles_per_s": round(1 / mean, 1),
        "bytes_per_cycle": n_bytes,
        "wire_ms_per_cycle_at_1mbps": round(wire_s * 1e3, 4),
        "wire_max_cycles_per_s_at_1mbps": round(1 / wire_s, 1),
        "target_ms": 5.0,
        "meets_target": mean * 1e3 < 5.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000)
    args = parser.parse_args()
    results = {
        "benchmark": "motor_bus sync read + sync write, 6 motors, 1 Mbps, emulator in a child process",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cases": {name: measure(robot_type, cls, args.cycles) for name, (robot_type, cls) in CASES.items()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=4))
    print(json.dumps(results, indent=4))


if __name__ == "__main__":
    main()
