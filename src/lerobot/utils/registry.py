"""Name -> class registries for config choice types (``--robot.type=so100_follower``, ``--env.type=...``).

A registry is a dict plus a decorator that refuses duplicates (the torchvision model-registry
pattern); unknown names get one error listing what exists, with the closest match suggested.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Registered choices of one kind ("robot", "camera", "env", "policy", ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}
        self._lazy: dict[str, tuple[str, str]] = {}  # name -> (module that registers it, install hint)
        self._aliases: dict[str, str] = {}  # another spelling -> the registered name

    def register(self, name: str) -> Callable[[T], T]:
        """Class decorator: ``@ROBOTS.register("so100_follower")``; also sets ``cls.type = name``."""

        def decorator(obj: T) -> T:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} type {name!r} is already registered by {self._items[name]!r}.")
            self._items[name] = obj
            if isinstance(obj, type) and "type" not in obj.__dict__:
                obj.type = name  # type: ignore[attr-defined]
            return obj

        return decorator

    def register_lazy(self, name: str, module: str, install_hint: str = "") -> None:
        """Name a choice whose module (which registers it on import) loads only when it is asked for.

        For choices with heavy optional dependencies (the MuJoCo twins): listing and parsing stay
        cheap, and a missing dependency surfaces as one error at :meth:`get`, with ``install_hint``.
        """
        self._lazy[name] = (module, install_hint)

    def register_alias(self, alias: str, name: str) -> None:
        """Accept ``alias`` wherever ``name`` is (the user guide's ``so100`` for ``so100_follower``)."""
        if alias in self._items or alias in self._lazy:
            raise ValueError(f"{self.kind} alias {alias!r} would hide the registered type of that name.")
        self._aliases[alias] = name

    def get(self, name: str) -> T:
        name = self._aliases.get(name, name)
        if name not in self._items and name in self._lazy:
            module, hint = self._lazy[name]
            try:
                importlib.import_module(module)
            except ImportError as e:
                raise ImportError(
                    f"{self.kind} type {name!r} needs {e.name or e}: {hint}".rstrip(": ")
                ) from e
        if name not in self._items:
            raise ValueError(unknown_choice_message(self.kind, name, self.names()))
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items.keys() | self._lazy.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def unknown_choice_message(kind: str, name: str, known: list[str]) -> str:
    """``Unknown robot type 'so100_folower'. Did you mean 'so100_follower'? Known: ...``."""
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown {kind} type {name!r}.{hint} Known {kind} types: {', '.join(known) or '(none)'}."
