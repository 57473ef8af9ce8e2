"""The Hugging Face Hub side of datasets: fetching files only when a local copy is missing, and
pushing a finished dataset (with its dataset card and codebase-version tag).

Everything else in the library reads local folders; this is the one place (with ``streaming.py``)
that touches the network, and with ``HF_HUB_OFFLINE=1`` it never does.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lerobot.datasets.paths import resolve_inside
from lerobot.datasets.utils import CODEBASE_VERSION, INFO_PATH, PENDING_EPISODES_DIR, DatasetError, load_json

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


# --------------------------------------------------------------------------------------------- push

# Never pushed: temporary PNGs from recording, and hidden temporaries of atomic writes.
_PUSH_IGNORE = ("images/**", ".*", "**/.*")


def dataset_card(info: dict, license: str | None, tags: Sequence[str] | None, repo_id: str) -> str:
    """The Hub's README.md: YAML front matter the Hub indexes, then the schema for humans.

    ``configs`` points the Hub's dataset viewer (and ``datasets.load_dataset``) at the frame parquets,
    and the ``LeRobot`` tag is what makes the dataset show up among LeRobot datasets.
    """
    import yaml

    front: dict = {}
    if license:
        front["license"] = license
    front["task_categories"] = ["robotics"]
    front["tags"] = list(dict.fromkeys(["LeRobot", *(tags or [])]))
    front["configs"] = [{"config_name": "default", "data_files": "data/*/*.parquet"}]
    info_json = json.dumps(info, indent=4, ensure_ascii=False)
    return (
        f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n\n"
        f"# {repo_id}\n\n"
        "This dataset is a LeRobotDataset "
        f"({info.get('codebase_version', CODEBASE_VERSION)}): frames in `data/`, camera streams in "
        "`videos/`, metadata in `meta/`.\n\n"
        f"- Robot type: {info.get('robot_type')}\n"
        f"- Episodes: {info.get('total_episodes')}, frames: {info.get('total_frames')}, fps: {info.get('fps')}\n\n"
        f"## Dataset structure\n\n[meta/info.json](meta/info.json):\n\n```json\n{info_json}\n```\n"
    )


def push_to_hub(
    dataset: Any,
    repo_id: str | None = None,
    *,
    branch: str | None = None,
    tags: Sequence[str] | None = None,
    license: str | None = "apache-2.0",
    tag_version: bool = True,
    push_videos: bool = True,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str | None = None,
) -> str:
    """Upload a finished dataset (a ``LeRobotDataset`` or its root folder) to a Hub dataset repo.

    One commit holds every file plus the generated dataset card, so a reader never sees half a
    dataset. Then the codebase-version tag (``v3.0``) is moved to that commit: readers pin to the tag
    by default, so later pushes to ``main`` in a newer layout never break them. Returns the commit URL.
    """
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError, RevisionNotFoundError

    root = Path(dataset) if isinstance(dataset, (str, os.PathLike)) else Path(dataset.root)
    if getattr(dataset, "writer", None) is not None:
        raise DatasetError(
            f"{root} is still open for recording; call dataset.finalize() before push_to_hub so every "
            "parquet file is closed."
        )
    if any((root / PENDING_EPISODES_DIR).glob("episode-*.json")):
        raise DatasetError(
            f"{root} holds episodes of an unfinished recording that are not merged yet; merge them with "
            "dataset.recover() (or lerobot.datasets.dataset_writer.recover(root)) before push_to_hub."
        )
    repo_id = repo_id or getattr(dataset, "repo_id", None)
    if not repo_id:
        raise DatasetError("push_to_hub needs a repo_id ('ORG/NAME') when given a folder.")
    info = load_json(root / INFO_PATH)
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise DatasetError(
            f"{root} is a {info.get('codebase_version')} dataset; convert it to {CODEBASE_VERSION} with "
            "`lerobot-convert-dataset --root=...` before pushing."
        )
    if hub_offline():
        raise DatasetError("Cannot push with HF_HUB_OFFLINE=1; unset it to upload.")
    ignore = [*_PUSH_IGNORE, "README.md"] + ([] if push_videos else ["videos/**"])
    files = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and not any(fnmatch.fnmatch(p.relative_to(root).as_posix(), pat) for pat in ignore)
    )
    # A link in the folder must not upload a file from elsewhere on this machine.
    operations = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=resolve_inside(root, f)) for f in files]
    card = dataset_card(info, license, tags, repo_id).encode()
    operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=card))

    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        if branch:
            api.create_branch(repo_id, branch=branch, repo_type="dataset", exist_ok=True)
        commit = api.create_commit(
            repo_id,
            operations,
            commit_message=commit_message or f"Upload LeRobotDataset ({len(files)} files)",
            repo_type="dataset",
            revision=branch,
        )
        if tag_version:
            with contextlib.suppress(RevisionNotFoundError):
                api.delete_tag(repo_id, tag=CODEBASE_VERSION, repo_type="dataset")
            api.create_tag(repo_id, tag=CODEBASE_VERSION, revision=commit.oid, repo_type="dataset")
    except HfHubHTTPError as e:
        raise DatasetError(f"Pushing {root} to the Hub dataset repo {repo_id!r} failed: {e}") from e
    logger.info("Pushed %d files of %s to %s", len(files), root, commit.commit_url)
    return commit.commit_url
