"""RLDS episodes from TFRecord files, read without TensorFlow.

TFDS stores each RLDS episode as one record holding a ``tf.train.Example`` (or a
``tf.train.SequenceExample``) whose keys are the flattened feature paths: ``steps/action``,
``steps/observation/<key>``, ``steps/is_first``, ``steps/is_last``, ``steps/is_terminal``,
``steps/reward``, ``steps/language_instruction``. A numeric ``steps/...`` list holds all steps
back to back; images are one encoded PNG/JPEG per step.

Two small pieces make that readable here:
  - TFRecord framing: ``uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)``,
    little endian; ``masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8 (mod 2**32)`` over CRC-32C
    (Castagnoli). Both CRCs are checked, so a truncated or corrupted file is reported, not misread.
  - The protobuf wire format of Example/SequenceExample/Feature (varints and length-delimited
    fields only; see ``tensorflow/core/example/{example,feature}.proto``).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

import google_crc32c
import numpy as np

from lerobot.datasets.convert.common import Episode, decode_image
from lerobot.datasets.utils import DatasetError

# ---------------------------------------------------------------------------------- CRC-32C

TASK_KEYS = (  # where RLDS datasets keep the instruction, in order of preference
    "steps/language_instruction",
    "steps/observation/natural_language_instruction",
    "episode_metadata/language_instruction",
)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), computed in C: a pure-Python loop checks only ~8 MB/s of records."""
    return google_crc32c.value(data)


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---------------------------------------------------------------------------------- TFRecord


def read_tfrecord(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while True:
            header = f.read(12)
            if not header:
                return
            if len(header) < 12:
                raise DatasetError(f"{path}: truncated TFRecord header; the file is cut short.")
            (length,) = struct.unpack("<Q", header[:8])
            (len_crc,) = struct.unpack("<I", header[8:])
            if masked_crc32c(header[:8]) != len_crc:
                raise DatasetError(
                    f"{path}: TFRecord length CRC mismatch; this is not a TFRecord file or it is corrupt."
                )
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise DatasetError(f"{path}: truncated TFRecord (record of {length} bytes cut short).")
            if masked_crc32c(data) != struct.unpack("<I", footer)[0]:
                raise DatasetError(f"{path}: TFRecord data CRC mismatch; the file is corrupt.")
            yield data


def write_tfrecord(path: Path, records: Iterable[bytes]) -> None:
    with open(path, "wb") as f:
        for data in records:
            length = struct.pack("<Q", len(data))
            f.write(
                length
                + struct.pack("<I", masked_crc32c(length))
                + data
                + struct.pack("<I", masked_crc32c(data))
            )


# ---------------------------------------------------------------------------------- protobuf


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise DatasetError("malformed protobuf: varint runs past the end of the record")
        b = buf[i]
        result |= (b & 0x7F) << shift
        i += 1
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) for each field of one message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i)
        num, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i)
        elif wire == 2:
            n, i = _varint(buf, i)
            value, i = buf[i : i + n], i + n
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        else:
            raise DatasetError(f"malformed protobuf: unsupported wire type {wire}")
        yield num, wire, value


def _feature(buf: bytes) -> list:
    """A ``tf.train.Feature``: a list of bytes, floats or ints."""
    for num, _, lst in _fields(buf):
        out: list = []
        for _, wire, v in _fields(lst):
            if num == 1:
                out.append(bytes(v))
            elif num == 2:
                out.extend(struct.unpack(f"<{len(v) // 4}f", v) if wire == 2 else struct.unpack("<f", v))
            elif num == 3:
                vals = [v] if wire == 0 else _packed_varints(v)
                out.extend(x - (1 << 64) if x >= 1 << 63 else x for x in vals)
        return out
    return []


def _packed_varints(buf: bytes) -> list[int]:
    out, i = [], 0
    while i < len(buf):
        v, i = _varint(buf, i)
        out.append(v)
    return out


def _map(buf: bytes, value_parser) -> dict:
    out = {}
    for _, _, entry in _fields(buf):
        key, value = "", b""
        for num, _, v in _fields(entry):
            if num == 1:
                key = bytes(v).decode()
            elif num == 2:
                value = v
        out[key] = value_parser(value)
    return out


def _feature_list(buf: bytes) -> list:
    """A ``tf.train.FeatureList`` (one Feature per step) flattened into one list."""
    return [x for _, _, f in _fields(buf) for x in _feature(f)]


def parse_example(buf: bytes) -> dict[str, list]:
    """``tf.train.Example`` or ``SequenceExample`` -> {key: flat list}; sequence steps are concatenated.

    Field 1 is ``Features`` in both (``features`` / ``context``), field 2 the ``FeatureLists`` of a
    SequenceExample; both are maps, i.e. repeated {key = 1, value = 2} entries.
    """
    out: dict[str, list] = {}
    for num, _, v in _fields(buf):
        if num == 1:
            out.update(_map(v, _feature))
        elif num == 2:
            out.update(_map(v, _feature_list))
    return out


def _encode_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _len_field(num: int, payload: bytes) -> bytes:
    return _encode_varint(num << 3 | 2) + _encode_varint(len(payload)) + payload


def encode_example(features: dict[str, list | np.ndarray]) -> bytes:
    """A ``tf.train.Example``: bytes lists from bytes, float lists from floats, int64 lists from ints."""
    entries = b""
    for key, values in features.items():
        arr = values if isinstance(values, list) else np.asarray(values).reshape(-1).tolist()
        if arr and isinstance(arr[0], bytes):
            inner = _len_field(1, b"".join(_len_field(1, v) for v in arr))
        elif arr and isinstance(arr[0], float):
            inner = _len_field(2, _len_field(1, struct.pack(f"<{len(arr)}f", *arr)))
        else:
            inner = _len_field(3, _len_field(1, b"".join(_encode_varint(int(v) & (2**64 - 1)) for v in arr)))
        entries += _len_field(1, _len_field(1, key.encode()) + _len_field(2, inner))
    return _len_field(1, entries)


# ---------------------------------------------------------------------------------- RLDS -> Episode


def _steps(example: dict[str, list], key: str, n: int, path: Path) -> np.ndarray:
    values = example[key]
    if len(values) % n:
        raise DatasetError(f"{path}: '{key}' holds {len(values)} values, not a multiple of the {n} steps.")
    return np.asarray(values).reshape(n, -1)


def _episode(example: dict[str, list], path: Path) -> Episode:
    if (
        "steps/is_first" not in example
        or "steps/action" not in example
        and not any(k.startswith("steps/action/") for k in example)
    ):
        raise DatasetError(
            f"{path}: a record lacks 'steps/is_first' or 'steps/action'; is this an RLDS dataset written by TFDS? "
            f"(found keys {sorted(example)[:10]})"
        )
    n = len(example["steps/is_first"])
    if n == 0 or not example["steps/is_first"][0]:
        raise DatasetError(f"{path}: an episode does not start with is_first=True.")
    action_keys = sorted(k for k in example if k == "steps/action" or k.startswith("steps/action/"))
    action = np.concatenate([_steps(example, k, n, path).astype(np.float32) for k in action_keys], axis=1)
    images, state_parts, names = {}, [], []
    # Text observations (Open X-Embodiment's natural_language_instruction) are the task, read below.
    observation_keys = [k for k in example if k.startswith("steps/observation/") and k not in TASK_KEYS]
    for key in sorted(observation_keys):
        name = key.removeprefix("steps/observation/").replace("/", ".")
        values = example[key]
        if values and isinstance(values[0], bytes):
            if len(values) != n:
                raise DatasetError(f"{path}: camera '{key}' has {len(values)} images for {n} steps.")
            images[name] = np.stack([decode_image(v) for v in values])
        else:
            part = _steps(example, key, n, path).astype(np.float32)
            state_parts.append(part)
            names += [f"{name}_{i}" for i in range(part.shape[1])] if part.shape[1] > 1 else [name]
    task = None
    for key in TASK_KEYS:
        if example.get(key) and isinstance(example[key][0], bytes):
            task = example[key][0].decode()
            break
    done = example.get("steps/is_terminal")
    reward = example.get("steps/reward")
    return Episode(
        action=action,
        state=np.concatenate(state_parts, axis=1) if state_parts else None,
        state_names=names or None,
        images=images,
        reward=np.asarray(reward, np.float32) if reward is not None else None,
        done=np.asarray(done, bool) if done is not None else None,
        task=task,
    )


def read_rlds(path: Path) -> Iterator[Episode]:
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*.tfrecord*") if p.is_file())
    if not files:
        raise DatasetError(f"{path}: no TFRecord files (*.tfrecord*) found.")
    for file in files:
        for record in read_tfrecord(file):
            yield _episode(parse_example(record), file)
