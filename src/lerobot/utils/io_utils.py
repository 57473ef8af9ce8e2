"""File-system helpers every layer may use: the library's home folder and crash-safe file writes.

They live at the bottom (``lerobot.utils``) so logging, calibration and datasets share them without
importing one another; ``lerobot.datasets.utils`` re-exports both under their historical names.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def hf_lerobot_home() -> Path:
    """``$HF_LEROBOT_HOME``, else ``$HF_HOME/lerobot``, else ``~/.cache/huggingface/lerobot``.

    Read at call time (not import time) so tests and users can redirect it with an env var.
    """
    if "LEROBOT_HOME" in os.environ:
        raise ValueError(
            "The LEROBOT_HOME environment variable is no longer used; "
            "set HF_LEROBOT_HOME instead (and unset LEROBOT_HOME)."
        )
    if "HF_LEROBOT_HOME" in os.environ:
        return Path(os.environ["HF_LEROBOT_HOME"]).expanduser()
    hf_home = Path(os.environ.get("HF_HOME", "~/.cache/huggingface")).expanduser()
    return hf_home / "lerobot"


@contextmanager
def atomic_path(path: Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; rename it over ``path`` only if the block succeeds.

    A crash at any moment leaves either the old file or the new one, never a torn file. The
    temporary keeps the target's suffix so libraries that dispatch on extension still work.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.",
        suffix=f".tmp{suffix if suffix is not None else path.suffix}",
        dir=path.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()
