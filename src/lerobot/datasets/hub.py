"""Fetching dataset files from the Hugging Face Hub, only when a local copy is missing.

Everything else in the library reads local folders; this is the one place that touches the network,
and with ``HF_HUB_OFFLINE=1`` it never does.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from lerobot.datasets.utils import INFO_PATH, DatasetError

logger = logging.getLogger(__name__)


def hub_offline() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return True


def ensure_local_files(
    repo_id: str,
    root: Path,
    revision: str | None,
    allow_patterns: Sequence[str] | None = None,
    force: bool = False,
    required: Sequence[str] = (INFO_PATH,),
) -> None:
    """Make sure ``required`` files exist under ``root``, downloading ``allow_patterns`` if not.

    The local folder wins: a dataset already on disk is never re-fetched unless ``force``.
    """
    missing = [r for r in required if not (root / r).is_file()]
    if not missing and not force:
        return
    if hub_offline():
        raise DatasetError(
            f"Dataset {repo_id!r} is not on disk: looked for {root / missing[0]} and the Hub is offline "
            "(HF_HUB_OFFLINE=1). Pass root=<folder that holds meta/info.json>, or unset HF_HUB_OFFLINE "
            "to download it."
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    def fetch(rev: str | None) -> None:
        snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=rev,
            local_dir=root,
            allow_patterns=list(allow_patterns) if allow_patterns else None,
        )

    try:
        try:
            fetch(revision)
        except RevisionNotFoundError:
            logger.warning(
                "Revision %r not found for %s on the Hub; using the main branch.", revision, repo_id
            )
            fetch(None)
    except RepositoryNotFoundError as e:
        raise DatasetError(
            f"Dataset {repo_id!r} is neither on disk ({root / INFO_PATH}) nor on the Hub. Check the repo id, "
            "or pass root= to a local copy."
        ) from e
    except (HfHubHTTPError, OSError) as e:
        raise DatasetError(f"Downloading {repo_id!r} into {root} failed: {e}") from e
    still_missing = [r for r in required if not (root / r).is_file()]
    if still_missing:
        raise DatasetError(f"Downloaded {repo_id!r} into {root} but {still_missing} are missing on the Hub.")
