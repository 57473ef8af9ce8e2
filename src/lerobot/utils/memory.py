"""Let a training loop reuse the host memory its previous step freed instead of faulting it in again.

Why: every training step allocates and frees the same few hundred megabytes of activations and
gradients. glibc's malloc serves blocks above a (self-adjusting) threshold with fresh ``mmap``
pages and hands freed memory at the top of its heap back to the kernel, so each step page-faults
and zero-fills memory it just released: thousands of faults per step on a CPU training run
(``benchmarks/policies.py`` counts them). Raising both thresholds keeps that memory in the heap.
Resident memory then stays at the run's peak instead of breathing with each step, which is what a
long run's RSS settles at anyway; it is still flat over time (``benchmarks/train_memory.py``).

Only glibc is tuned (other C libraries, or jemalloc/tcmalloc in ``LD_PRELOAD``, are left as they
are), and nothing is changed when the user tunes malloc through the environment already.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import platform
from pathlib import Path

logger = logging.getLogger(__name__)

# mallopt() parameter numbers from glibc's <malloc.h>.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20
"""Blocks below this come from the heap (glibc's largest accepted value on 64-bit)."""
TRIM_THRESHOLD = 1 << 30
"""Free memory at the heap's top kept for reuse before any is returned to the kernel."""
TOP_PAD = 64 << 20
"""Extra heap grown per request, so steady state needs no ``brk`` calls at all."""
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")
_applied: bool | None = None


def reuse_freed_memory() -> bool:
    """Tune glibc malloc for a loop that allocates the same large blocks every iteration.

    Process-wide and idempotent; returns whether the settings are in effect. Processes forked
    afterwards inherit them, so ``lerobot-train`` calls it once its DataLoader workers run, and
    only for CPU training (on CUDA the host heap holds little that a step frees).
    """
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name in os.environ for name in _USER_SETTINGS) or "malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        logger.debug("malloc is tuned through the environment; leaving it as it is.")
        return False
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    settings = (
        (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
        (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
        (_M_TOP_PAD, TOP_PAD),
    )
    _applied = all(libc.mallopt(param, value) == 1 for param, value in settings)
    return _applied


def available_memory_bytes() -> int | None:
    """Memory a new allocation can get without swapping: MemAvailable, capped by a cgroup v2 limit."""
    found = []
    with contextlib.suppress(OSError, ValueError):
        meminfo = Path("/proc/meminfo").read_text()
        found += [
            int(line.split()[1]) * 1024 for line in meminfo.splitlines() if line.startswith("MemAvailable:")
        ]
    if not found:  # not Linux: free physical pages
        with contextlib.suppress(OSError, ValueError, AttributeError):
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    with contextlib.suppress(OSError, ValueError):  # a container's limit, which /proc/meminfo does not show
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit != "max":
            found.append(int(limit) - int(Path("/sys/fs/cgroup/memory.current").read_text()))
    return min(found) if found else None
