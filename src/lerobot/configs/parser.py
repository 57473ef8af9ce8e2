"""Command-line flags -> nested config dataclasses, for every ``lerobot-*`` tool.

``--robot.type=so100_follower --robot.port=/dev/ttyUSB0 --dataset.num_episodes=5`` sets nested
fields; a ``type`` key picks a registered subclass (the base class names its registry in a
``choices`` class attribute); ``--config_path=run.json`` (or .yaml) loads a whole config that later
flags override. Dashes and underscores are interchangeable in names (``--repo-id`` is
``--repo_id``), and each tool passes an alias table so the user guide's spellings
(``--robot-type``, ``--training.num_steps``) land on the same fields as LeRobot's. Values are
coerced from the field annotations; lists and dicts are JSON/YAML (``--policy.down_dims='[256, 512]'``).
An unknown flag is one error with the closest valid spelling.

``--help`` lists every flag with its type, default and documentation, grouped by section (one per
nested config). The documentation is the field's docstring, the string literal written right after
the field in the dataclass, read from the class source (see :func:`field_docs`).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import enum
import functools
import inspect
import json
import sys
import textwrap
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
        if len(args) == 1:  # ``X | None``: X's own error is the clear one
            return _coerce(args[0], raw, flag)
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


HELP_FLAGS = ("--help", "-h")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``formatter_class`` of the argparse tools: each flag with its type, its text and its default.

    The same information as the dataclass tools' ``--help``: the type is the metavar
    (``--steps int``), and a default the text does not already explain is appended.
    """

    def _get_default_metavar_for_optional(self, action: argparse.Action) -> str:
        return getattr(action.type, "__name__", "str").strip("_")

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.required:
            return f"{text} (required)".strip()
        if "(default" in text or action.default in (None, argparse.SUPPRESS):
            return text  # the text says what happens by default, or there is nothing to show
        return super()._get_help_string(action) or ""


_DOC_INDENT = " " * 8


def print_help_if_asked(
    argv: Sequence[str], doc: str | None, cls: type, aliases: dict[str, str] | None = None
) -> bool:
    """``--help`` / ``-h`` anywhere: print the tool's docstring and every flag of ``cls``; True if it did.

    The other flags pick the choice sections to detail: ``--policy.type=act --help`` lists ACT's
    own fields, where plain ``--help`` lists the policy types and the fields every policy has.
    """
    if not any(a in HELP_FLAGS for a in argv):
        return False
    try:
        tree = parse_args([a for a in argv if a not in HELP_FLAGS], aliases)
    except ConfigError:
        tree = {}
    intro = (
        "Flags are --name=value (or --name value); dashes and underscores are interchangeable; "
        "lists and dicts are JSON or YAML; --config_path=<file.json|yaml> loads a whole config "
        "that later flags override."
    )
    print((doc or "").rstrip() + "\n\n" + textwrap.fill(intro, 100) + "\n")
    print("\n".join(config_help(cls, tree=tree, aliases=aliases)))
    return True


def config_help(
    cls: type, prefix: str = "", tree: dict[str, Any] | None = None, aliases: dict[str, str] | None = None
) -> list[str]:
    """``--help`` lines for dataclass ``cls``: its own flags, then one section per nested config.

    Each flag reads ``--name TYPE  default=VALUE`` with the field's docstring below it. ``tree`` (the
    flags given so far) picks the chosen type of a choice section; ``aliases`` adds the other
    spellings of a flag (``--steps ... (also --training.num_steps)``).
    """
    also: dict[str, list[str]] = {}
    for alias, target in (aliases or {}).items():
        also.setdefault(_norm(target), []).append(alias)
    lines: list[str] = []
    sections: list[list[str]] = []
    _describe(cls, prefix, tree or {}, also, lines, sections)
    for section in sections:
        lines += ["", *section]
    return lines


def _describe(
    cls: type,
    prefix: str,
    tree: dict[str, Any],
    also: dict[str, list[str]],
    lines: list[str],
    sections: list[list[str]],
) -> None:
    """Append ``cls``'s flags to ``lines`` and each nested config to ``sections`` as its own section."""
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        name, tp, doc = f"{prefix}{f.name}", hints[f.name], docs.get(f.name, "")
        sub = _section_class(tp)
        if sub is None:
            lines += _flag_lines(name, _type_name(tp), _default_text(f), doc, also)
            continue
        section = [f"{name} options (--{name}.*):"]
        section += _wrapped(doc or _summary(sub), "    ")
        sub_tree = tree.get(f.name)
        sub_tree = {"type": sub_tree} if isinstance(sub_tree, str) else sub_tree or {}
        registry = choice_registry(sub)
        if registry is not None:
            unset = "None" if f.default is None else "required"  # an optional section may stay unset
            sub = _choice_section(sub, registry, name, sub_tree, unset, also, section)
        sections.append(section)
        _describe(sub, f"{name}.", sub_tree, also, section, sections)


def _choice_section(
    base: type,
    registry: Any,
    name: str,
    tree: dict[str, Any],
    unset: str,
    also: dict[str, list[str]],
    section: list[str],
) -> type:
    """The ``--X.type`` line of a choice section; returns the class whose fields the section lists."""
    own = getattr(base, "type", "")  # a field typed as one registered config defaults to that type
    chosen = tree.get("type", own)
    names = registry.names()
    choices = "{" + ", ".join(names) + "}"
    if chosen in names:
        try:
            cls = registry.get(chosen)
        except (ImportError, ValueError) as e:  # a type whose optional dependency is missing
            section += _flag_lines(f"{name}.type", choices, unset, f"{chosen}: {e}", also)
            return base
        doc = _summary(cls) or f"The {chosen} type."
        shown = chosen if chosen == own and "type" not in tree else f"{chosen} (chosen)"
        section += _flag_lines(f"{name}.type", choices, shown, doc, also)
        return cls
    doc = (
        f"Which {getattr(registry, 'kind', name)} to use. The flags below are those every type has; "
        f"add --{name}.type=NAME --help to list the chosen type's own flags too."
    )
    section += _flag_lines(f"{name}.type", choices, unset, doc, also)
    return base


def _flag_lines(name: str, type_text: str, default: str, doc: str, also: dict[str, list[str]]) -> list[str]:
    head = f"  --{name} {type_text}  " + ("(required)" if default == "required" else f"default={default}")
    others = also.get(name)
    if others:
        head += "  (also " + ", ".join(f"--{a}" for a in sorted(others)) + ")"
    return [head, *_wrapped(doc, _DOC_INDENT)] if doc else [head]


def _wrapped(text: str, indent: str) -> list[str]:
    out: list[str] = []
    for paragraph in text.split("\n\n"):
        out += textwrap.wrap(
            " ".join(paragraph.split()), 110, initial_indent=indent, subsequent_indent=indent
        )
    return out


def _summary(cls: type) -> str:
    """The first paragraph of a class's own docstring (not the dataclass-generated signature)."""
    doc = cls.__dict__.get("__doc__") or ""
    if doc.startswith(f"{cls.__name__}("):
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0]


def _section_class(tp: Any) -> type | None:
    """The config dataclass a field holds (``X`` or ``X | None``), or None for a plain value."""
    args = typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else (tp,)
    classes = [a for a in args if a is not type(None)]
    if len(classes) == 1 and dataclasses.is_dataclass(classes[0]) and isinstance(classes[0], type):
        return classes[0]
    return None


def _type_name(tp: Any) -> str:
    """``int``, ``Path | None``, ``list[int]``, ``{a, b}`` (enums): what the flag's value must be."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "None"
    if origin is typing.Literal:
        return "{" + ", ".join(str(a) for a in typing.get_args(tp)) + "}"
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return "{" + ", ".join(str(m.value) for m in tp) + "}"
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else _type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


def _default_text(f: dataclasses.Field) -> str:
    """A field's default as one would type it after ``--name=`` (``required`` when there is none)."""
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "required"
    return format_value(value)


def format_value(value: Any) -> str:
    """Scalars as typed on the command line (``true``, ``None``, ``'text'``); containers as JSON."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple, dict)):
        try:
            return json.dumps(_jsonable(value))
        except (TypeError, ValueError):
            return repr(value)
    return repr(value)


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (enum.Enum, Path)):
        return format_value(value)
    return value


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its docstring: the string literal right after the field in ``cls`` or a base.

    Read from the class sources with :mod:`ast` (Python keeps no such literal at run time), base
    classes first so a subclass's docstring for a field it redeclares wins. A field may instead
    set ``metadata={"help": ...}``. Classes without source (built at run time) document nothing.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is not object:
            docs.update(_own_field_docs(klass))
    if dataclasses.is_dataclass(cls):
        docs.update({f.name: f.metadata["help"] for f in dataclasses.fields(cls) if "help" in f.metadata})
    return docs


def _own_field_docs(klass: type) -> dict[str, str]:
    try:
        module = ast.parse(textwrap.dedent(inspect.getsource(klass)))
    except (OSError, TypeError, SyntaxError):
        return {}
    node = module.body[0] if module.body else None
    if not isinstance(node, ast.ClassDef):
        return {}
    docs = {}
    for stmt, after in zip(node.body, node.body[1:]):
        if (
            isinstance(stmt, (ast.AnnAssign, ast.Assign))
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            targets = [stmt.target] if isinstance(stmt, ast.AnnAssign) else stmt.targets
            for target in targets:
                if isinstance(target, ast.Name):
                    docs[target.id] = inspect.cleandoc(after.value.value)
    return docs
