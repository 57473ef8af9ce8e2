"""Arrow columns -> numpy / torch, PNG bytes -> pixels: what every reader of data parquets shares.

The map-style reader, the streaming reader and the editing tools all turn a data parquet's table
into the same per-feature values; doing it here once keeps their frames identical by construction.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import torch
from PIL import Image


def column_to_numpy(column: pa.ChunkedArray | pa.Array, n: int) -> np.ndarray:
    """A numeric Arrow column (scalars, fixed/variable lists, nested lists) -> numpy (n, *shape)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    dims = []
    while (
        pa.types.is_list(arr.type)
        or pa.types.is_fixed_size_list(arr.type)
        or pa.types.is_large_list(arr.type)
    ):
        flat = arr.flatten()
        dims.append(len(flat) // max(len(arr), 1))
        arr = flat
    values = arr.to_numpy(zero_copy_only=False)
    return values.reshape(n, *dims) if dims else values


def decode_png(data: bytes) -> np.ndarray:
    """PNG bytes of an ``image`` feature -> HWC uint8 (a grey image keeps a channel axis of 1)."""
    with Image.open(io.BytesIO(data)) as img:
        arr = np.array(img.convert("RGB") if img.mode not in ("RGB", "L") else img)
    return arr[..., None] if arr.ndim == 2 else arr


def png_to_chw(data: bytes) -> torch.Tensor:
    """PNG bytes -> a uint8 (C, H, W) tensor, the layout every reader returns cameras in."""
    return torch.from_numpy(decode_png(data)).permute(2, 0, 1)


@dataclass
class TableColumns:
    """A data table's non-video features, split by how a frame reads them."""

    numeric: dict[str, torch.Tensor] = field(default_factory=dict)  # (n, *shape), writable, C-contiguous
    images: dict[str, pa.Array] = field(default_factory=dict)  # PNG bytes, decoded per frame
    strings: dict[str, list[str]] = field(default_factory=dict)


def table_columns(table: pa.Table, features: dict[str, dict], keys: list[str]) -> TableColumns:
    """The ``keys`` columns of ``table`` as numeric tensors, PNG byte arrays and string lists."""
    n = table.num_rows
    out = TableColumns()
    for key in keys:
        dtype = features[key]["dtype"]
        col = table.column(key)
        if dtype == "image":
            out.images[key] = col.combine_chunks().field("bytes")
        elif dtype in ("string", "language"):
            out.strings[key] = col.to_pylist()
        else:
            out.numeric[key] = torch.from_numpy(np.require(column_to_numpy(col, n), requirements=["C", "W"]))
    return out
