"""Where a dataset's files may be: the one gate between names that come from data and the disk.

A dataset from a stranger names its own files: ``meta/info.json`` holds the ``data_path`` and
``video_path`` templates, its features name the video folders, and a repo id picks the folder under
``HF_LEROBOT_HOME``. Every reader, writer and tool turns those names into paths through this module,
so none of them can be steered outside the dataset's folder:

* a template is parsed (never handed to ``str.format`` unchecked) and may hold only the documented
  fields -- ``{chunk_index}`` / ``{file_index}`` (v3.0) or ``{episode_chunk}`` / ``{episode_index}``
  (v2.1) as integers (``:0Nd``, N <= 9), and ``{video_key}`` -- around literal text that is a relative
  path without ``..``;
* ``{video_key}`` must be a declared video feature, whose name is one plain path component;
* every path is checked inside the dataset root after symlinks are resolved (a Hugging Face cache
  snapshot may point into its repo's ``blobs/``, nowhere else);
* a repo id has the Hub's syntax (``name`` or ``org/name``), so ``hf_lerobot_home() / repo_id`` stays
  in that folder.

Anything else is one :class:`~lerobot.datasets.utils.DatasetError` naming the value and the rule.
Paths a user passes in (``root=``, ``output_dir=``, CLI flags) are the user's choice and not limited.
"""

from __future__ import annotations

import functools
import numbers
import re
import string
from collections.abc import Collection
from pathlib import Path, PurePosixPath

from lerobot.datasets.utils import INFO_PATH, DatasetError, check_video_key, hf_lerobot_home

# The fields each template may use, per codebase version; every field listed must appear (else two
# files, or two cameras, would share one path).
TEMPLATE_FIELDS = {
    ("v3.0", "data_path"): ("chunk_index", "file_index"),
    ("v3.0", "video_path"): ("video_key", "chunk_index", "file_index"),
    ("v2.1", "data_path"): ("episode_chunk", "episode_index"),
    ("v2.1", "video_path"): ("video_key", "episode_chunk", "episode_index"),
}
_INT_SPEC = re.compile(r"(0[1-9])?d?")  # "", "d", "03d", "06d": zero-padded to at most 9 digits
_REPO_PART = re.compile(r"[A-Za-z0-9_.-]+")
_MAX_REPO_ID = 96  # the Hub's limit


def _version(version: str) -> str:
    return "v2.1" if version == "v2.1" else "v3.0"


def check_template(template: str, kind: str, version: str = "v3.0") -> tuple[str, ...]:
    """Validate a ``data_path`` / ``video_path`` template; return the fields it uses.

    Raises DatasetError naming the template and what is wrong with it.
    """
    if not isinstance(template, str):
        raise DatasetError(f"meta/info.json: {kind} must be a string template, found {template!r}.")
    return _check_template(template, kind, _version(version))


@functools.lru_cache(maxsize=64)
def _check_template(template: str, kind: str, version: str) -> tuple[str, ...]:
    allowed = TEMPLATE_FIELDS[(version, kind)]
    expected = "'" + "/".join("{" + f + ("}" if f == "video_key" else ":03d}") for f in allowed) + "'"

    def bad(why: str) -> DatasetError:
        return DatasetError(
            f"meta/info.json: {kind} {template!r} {why}. A {version} {kind} is a relative path that uses "
            f"only the fields {list(allowed)}, like {expected}; restore the file's template or re-download "
            "the dataset."
        )

    if not template or len(template) > 512:
        raise bad("must be a non-empty string of at most 512 characters")
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise bad(f"is not a valid template ({e})") from e
    literal, used = [], []
    for text, field, spec, conversion in parsed:
        literal.append(text)
        if field is None:
            continue
        if field not in allowed:
            raise bad(
                f"uses the field {{{field}}}; only {list(allowed)} may appear, without attributes or indices"
            )
        if conversion is not None:
            raise bad(f"converts {{{field}}} with !{conversion}; conversions are not allowed")
        if field == "video_key" and spec:
            raise bad(f"formats {{video_key}} with ':{spec}'; it takes no format spec")
        if field != "video_key" and not _INT_SPEC.fullmatch(spec or ""):
            raise bad(f"formats {{{field}}} with ':{spec}'; integers take ':0Nd' with N from 1 to 9")
        used.append(field)
        literal.append("x")  # a field is always a non-empty path piece
    missing = [f for f in allowed if f not in used]
    if missing:
        raise bad(f"lacks the fields {missing}, so different files would share one path")
    _check_relative("".join(literal), bad)
    return tuple(used)


def _check_relative(path: str, bad) -> None:
    if any(c in path for c in "\\:\0"):
        raise bad("holds a backslash, colon or NUL character")
    if path.startswith(("/", "~")):
        raise bad("is absolute")
    if any(p in ("", ".", "..") for p in path.split("/")):
        raise bad("has an empty, '.' or '..' path component")


def format_template(
    template: str, kind: str, version: str = "v3.0", video_keys: Collection[str] = (), **fields: int | str
) -> PurePosixPath:
    """The relative path ``template`` names for ``fields``, after checking the template and the values.

    ``video_key`` must be one of ``video_keys`` (the dataset's declared video features); the integer
    fields must be non-negative integers.
    """
    for name in check_template(template, kind, version):
        value = fields.get(name)
        if name == "video_key":
            if value not in video_keys:
                raise DatasetError(
                    f"{value!r} is not a video feature of this dataset (declared: {sorted(video_keys)})."
                )
            check_video_key(value)
        elif isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
            raise DatasetError(f"{kind} field {name} must be a non-negative integer, got {value!r}.")
    return PurePosixPath(template.format(**fields))


def _allowed_roots(root: Path) -> tuple[Path, ...]:
    """The resolved root, plus ``<repo>/blobs`` when the root is a Hugging Face cache snapshot.

    The Hub cache stores ``<repo>/snapshots/<revision>/<file>`` as symlinks to ``<repo>/blobs/<hash>``;
    following those is reading the same download, not leaving it.
    """
    resolved = root.resolve()
    if resolved.parent.name == "snapshots" and (resolved.parent.parent / "blobs").is_dir():
        return resolved, resolved.parent.parent / "blobs"
    return (resolved,)


def resolve_inside(
    root: str | Path,
    relative: str | PurePosixPath,
    what: str = "dataset",
    error: type[Exception] = DatasetError,
) -> Path:
    """``root / relative``, refused (``error``) unless it stays inside ``root`` once symlinks are resolved.

    Returns the unresolved ``root / relative`` (so error messages and caches keep the user's spelling).
    """
    root = Path(root)
    rel = PurePosixPath(relative)
    if rel.is_absolute() or ".." in rel.parts or str(rel).startswith("~") or "\\" in str(rel):
        raise error(f"{str(relative)!r} is not a path inside the {what} at {root} (absolute, '~' or '..').")
    path = root / rel
    resolved = path.resolve()
    if not any(resolved.is_relative_to(r) for r in _allowed_roots(root)):
        raise error(
            f"{path} resolves to {resolved}, outside the {what} at {root} (through a symbolic link). "
            f"Files of a {what} must live inside its folder; replace the link by the file."
        )
    return path


def is_repo_id(name: str) -> bool:
    """Whether ``name`` has the Hub's repo id syntax: ``name`` or ``org/name``.

    Each part holds letters, digits, ``_``, ``-`` and ``.``, neither starts nor ends with ``-`` or
    ``.``, and ``--`` / ``..`` do not occur; at most 96 characters.
    """
    if not isinstance(name, str) or len(name) > _MAX_REPO_ID or "--" in name or ".." in name:
        return False
    parts = name.split("/")
    return len(parts) <= 2 and all(
        _REPO_PART.fullmatch(p) and p[0] not in "-." and p[-1] not in "-." for p in parts
    )


def validate_repo_id(repo_id: str) -> str:
    """``repo_id`` unchanged if it has the Hub's syntax (see :func:`is_repo_id`), else DatasetError."""
    if not is_repo_id(repo_id):
        raise DatasetError(
            f"{repo_id!r} is not a valid repo id: use 'name' or 'org/name' made of letters, digits, '_', '-' "
            "and '.' (no '..', no leading '/' or '-', at most 96 characters). To use a folder elsewhere, "
            "pass root=<folder>."
        )
    return repo_id


def dataset_root(repo_id: str, root: str | Path | None = None) -> Path:
    """Where a dataset lives: ``root`` if given; ``repo_id`` itself when it names a local dataset folder
    (one holding ``meta/info.json``: the guide passes folders where LeRobot takes Hub ids; a path the
    user passes is trusted); else ``$HF_LEROBOT_HOME/<repo_id>`` for a valid Hub-style id.
    """
    if root is not None:
        return Path(root)
    local = Path(repo_id).expanduser()
    if (local / INFO_PATH).is_file():
        return local
    return hf_lerobot_home() / validate_repo_id(repo_id)
