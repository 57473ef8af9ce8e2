"""Strings in dataset samples (``item["task"]``) that survive the loop idiom ``{k: v.to(device)}``.

A batch from a plain ``DataLoader`` holds tensors and, for ``task``, a list of strings, so the
guide's (and many users') ``batch = {k: v.to("cuda") for k, v in batch.items()}`` would fail on
that list. Samples carry :class:`Text` (a ``str``) instead, which ``default_collate`` gathers into a
:class:`TextBatch` (a ``list``); both answer ``.to(...)`` with themselves, as strings have no device.
Everything that expects a ``str`` or a ``list`` of them is unaffected.
"""

from __future__ import annotations

from typing import Any

from torch.utils.data._utils.collate import default_collate_fn_map


class Text(str):
    """A string sample value; ``.to(device)`` is a no-op."""

    __slots__ = ()

    def to(self, *args: Any, **kwargs: Any) -> Text:
        return self


class TextBatch(list):
    """The strings of a batch; ``.to(device)`` is a no-op."""

    def to(self, *args: Any, **kwargs: Any) -> TextBatch:
        return self


def _collate_text(batch: list[Text], *, collate_fn_map: Any = None) -> TextBatch:
    return TextBatch(batch)


# torch's documented extension point for default_collate, keyed by exact type: only Text is affected.
default_collate_fn_map[Text] = _collate_text
