"""reuse_freed_memory keeps what a step frees in the heap, where the next step finds it without faults."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc only"
)

# Allocate 160 blocks of 1 MiB with malloc (as a training step allocates activations), free them all,
# then report how much the heap still holds and how many page faults a second identical round costs.
PROBE = """
import ctypes, json, resource, sys
from lerobot.utils.memory import reuse_freed_memory
applied = reuse_freed_memory() if sys.argv[1] == "tuned" else None
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
def step():
    blocks = [libc.malloc(1 << 20) for _ in range(160)]
    for b in blocks:
        ctypes.memset(b, 1, 1 << 20)  # touch every page, as tensors are written
    for b in blocks:
        libc.free(b)
step()
kept = libc.mallinfo2().arena
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
step()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "kept_mib": kept / 2**20, "faults": faults}))
"""


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_freed_blocks_stay_in_the_heap_and_the_next_round_does_not_fault():
    default, tuned = probe("default"), probe("tuned")
    assert tuned["applied"] is True
    assert tuned["kept_mib"] >= 160  # everything freed is still there for the next step
    assert tuned["faults"] < 200  # 160 MiB of 4 KiB pages would be ~41,000 faults
    assert default["faults"] > 10 * max(tuned["faults"], 100)  # glibc's defaults give the pages back


def test_leaves_malloc_alone_when_the_user_tuned_it(monkeypatch):
    code = "from lerobot.utils.memory import reuse_freed_memory as r; print(r(), r())"
    env = {"MALLOC_TRIM_THRESHOLD_": "131072", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.split() == ["False", "False"]
