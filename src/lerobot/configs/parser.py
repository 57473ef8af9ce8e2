"""Command-line flags -> nested config dataclasses, for every ``lerobot-*`` tool.

``--robot.type=so100_follower --robot.port=/dev/ttyUSB0 --dataset.num_episodes=5`` sets nested
fields; a ``type`` key picks a registered subclass (the base class names its registry in a
``choices`` class attribute); ``--config_path=run.json`` (or .yaml) loads a whole config that later
flags override. Dashes and underscores are interchangeable in names (``--repo-id`` is
``--repo_id``), and each tool passes an alias table so the user guide's spellings
(``--robot-type``, ``--training.num_steps``) land on the same fields as LeRobot's. Values are
coerced from the field annotations; lists and dicts are JSON/YAML (``--policy.down_dims='[256, 512]'``).
An unknown flag is one error with the closest valid spelling.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import json
import sys
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar, Union

T = TypeVar("T")


class ConfigError(ValueError):
    """A flag or config file that does not fit the config dataclasses."""


def parse_args(argv: Sequence[str] | None, aliases: dict[str, str] | None = None) -> dict[str, Any]:
    """``["--a.b=1", "--flag", "--c", "x"]`` -> ``{"a": {"b": "1"}, "flag": "true", "c": "x"}`` (strings)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    aliases = {_norm(k): _norm(v) for k, v in (aliases or {}).items()}
    out: dict[str, Any] = {}
    i = 0
    while i < len(argv):
        tok = argv[i]
        if not tok.startswith("--"):
            raise ConfigError(f"Unexpected argument {tok!r}: flags look like --name=value.")
        key, eq, value = tok[2:].partition("=")
        if not eq:
            if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
                value = argv[i + 1]
                i += 1
            else:
                value = "true"
        key = _norm(key)
        key = aliases.get(key, key)
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--{key} conflicts with an earlier flag that set {p!r} to a value.")
        node[leaf] = value
        i += 1
    return out


def _norm(name: str) -> str:
    return name.replace("-", "_")


def load_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config_path={path}: no such file.")
    text = path.read_text()
    if path.suffix in (".yaml", ".yml"):
        import yaml

        return yaml.safe_load(text) or {}
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--config_path={path} is not valid JSON: {e}") from e


def merge_trees(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = merge_trees(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def parse_config(
    cls: type[T],
    argv: Sequence[str] | None = None,
    aliases: dict[str, str] | None = None,
    section_files: dict[str, str] | None = None,
) -> T:
    """Build ``cls`` from command-line flags (see the module docstring).

    ``section_files`` maps a flag to the section its file fills (the guide's
    ``--robot-config=robot.json`` is ``{"robot_config": "robot"}``); flags still override the file.
    """
    tree, _ = merge_config_file(parse_args(argv, aliases))
    for flag, section in (section_files or {}).items():
        path = tree.pop(_norm(flag), None)
        if path is not None:
            tree[section] = merge_trees(load_config_file(path), tree.get(section, {}))
    return build(cls, tree)


def merge_config_file(tree: dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """Pop ``config_path`` from the flags and lay the flags over that file; returns (tree, the path)."""
    tree = dict(tree)
    config_path = tree.pop("config_path", None)
    if config_path is None:
        return tree, None
    return merge_trees(load_config_file(config_path), tree), Path(config_path)


def choice_registry(cls: type) -> Any:
    for klass in cls.__mro__:
        if "choices" in klass.__dict__:
            return klass.__dict__["choices"]
    return None


def build(cls: type[T], values: dict[str, Any], prefix: str = "") -> T:
    """Instantiate dataclass ``cls`` from a nested dict of strings / JSON values."""
    registry = choice_registry(cls)
    if registry is not None and "type" in values:
        values = dict(values)
        name = values.pop("type")
        try:
            cls = registry.get(name)
        except ValueError as e:
            raise ConfigError(f"--{prefix}type: {e}") from e
    elif registry is not None and (cls.__dict__.get("choices") is not None or getattr(cls, "type", "") == ""):
        raise ConfigError(
            f"--{prefix}type is required: choose one of {', '.join(registry.names())} (e.g. --{prefix}type=...)."
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in values if k not in fields]
    if unknown:
        k = unknown[0]
        close = difflib.get_close_matches(k, list(fields), n=1)
        hint = f" Did you mean --{prefix}{close[0]}?" if close else ""
        raise ConfigError(
            f"Unknown flag --{prefix}{k} for {cls.__name__}.{hint} Valid: "
            + ", ".join(f"--{prefix}{f}" for f in fields)
        )
    kwargs = {}
    for name, raw in values.items():
        kwargs[name] = _coerce(hints[name], raw, f"{prefix}{name}")
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"{cls.__name__}: {e}") from e


def _coerce(tp: Any, raw: Any, flag: str) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if isinstance(raw, str) and raw.lower() in ("none", "null") or raw is None:
            return None
        errors = []
        for a in args:
            try:
                return _coerce(a, raw, flag)
            except (ConfigError, ValueError) as e:
                errors.append(str(e))
        raise ConfigError(f"--{flag}={raw!r} fits none of {args}: {'; '.join(errors)}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(raw, dict):
            raw = _structured(raw, flag)
        return build(tp, raw, prefix=f"{flag}.")
    if tp is Any:
        return raw
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        low = str(raw).lower()
        if low in ("true", "1", "yes", "on"):
            return True
        if low in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"--{flag} expects true or false, got {raw!r}.")
    if tp in (int, float):
        try:
            return tp(raw) if tp is float or not isinstance(raw, str) else int(raw, 0)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"--{flag} expects {tp.__name__}, got {raw!r}.") from e
    if tp in (str, Path):
        return tp(raw)
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        try:
            return tp(raw)
        except ValueError as e:
            raise ConfigError(f"--{flag} expects one of {[m.value for m in tp]}, got {raw!r}.") from e
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        items = _structured(raw, flag) if isinstance(raw, str) else raw
        if not isinstance(items, (list, tuple)):
            raise ConfigError(f"--{flag} expects a list like '[1, 2]', got {raw!r}.")
        args = typing.get_args(tp)
        item_tp = args[0] if args and (origin is not tuple or len(args) == 2 and args[1] is Ellipsis) else Any
        if origin is tuple and args and args[-1] is not Ellipsis:
            return tuple(_coerce(a, v, flag) for a, v in zip(args, items))
        coerced = [_coerce(item_tp, v, flag) for v in items]
        return tuple(coerced) if origin is tuple or tp is tuple else coerced
    if origin is dict or tp is dict:
        items = _structured(raw, flag) if isinstance(raw, str) else raw
        if not isinstance(items, dict):
            raise ConfigError(f"--{flag} expects a mapping like '{{\"a\": 1}}', got {raw!r}.")
        args = typing.get_args(tp)
        val_tp = args[1] if args else Any
        return {k: _coerce(val_tp, v, f"{flag}.{k}") for k, v in items.items()}
    return raw


def _structured(raw: Any, flag: str) -> Any:
    """JSON first, then YAML (which also reads ``[256, 512]`` and ``{a: 1}``)."""
    if not isinstance(raw, str):
        return raw
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    try:
        import yaml

        return yaml.safe_load(raw)
    except Exception as e:  # yaml.YAMLError and friends: report as a flag error
        raise ConfigError(f"--{flag}: cannot parse {raw!r} as JSON or YAML ({e}).") from e


def print_help_if_asked(argv: Sequence[str], doc: str | None, cls: type) -> bool:
    """``--help`` / ``-h`` anywhere: print the tool's docstring and every flag of ``cls``; True if it did."""
    if "--help" not in argv and "-h" not in argv:
        return False
    print((doc or "").rstrip() + "\n\n" + "\n".join(config_help(cls)))
    return True


def config_help(cls: type, prefix: str = "") -> list[str]:
    """One line per flag (name, type, default) for ``--help``."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            lines += config_help(tp, f"{prefix}{f.name}.")
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = "(required)"
        doc = f.metadata.get("help", "")
        lines.append(
            f"  --{prefix}{f.name}  [{getattr(tp, '__name__', str(tp))}] default={default!r}  {doc}".rstrip()
        )
    return lines
