"""The policy-side half of the observation mapping: numpy env observations -> batched torch tensors."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def _is_image(value: np.ndarray) -> bool:
    return value.dtype == np.uint8 and value.ndim in (3, 4) and value.shape[-1] in (1, 3)


def preprocess_observation(observation: dict[str, Any]) -> dict[str, torch.Tensor]:
    """Dataset-keyed numpy observations (one env or a vector of envs) -> torch with a batch dim.

    Images (H x W x C uint8, or N x H x W x C) become float32 N x C x H x W in [0, 1]; everything else
    becomes float32 with a leading batch dim (added when the input has none).
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in observation.items():
        arr = np.asarray(value)
        if _is_image(arr):
            img = torch.from_numpy(np.ascontiguousarray(arr))
            if img.ndim == 3:
                img = img.unsqueeze(0)
            out[key] = img.permute(0, 3, 1, 2).to(torch.float32).div_(255.0)
        elif arr.dtype.kind in "fiub":
            t = torch.from_numpy(np.ascontiguousarray(arr)).to(torch.float32)
            out[key] = t.unsqueeze(0) if t.ndim <= 1 else t
        else:
            raise TypeError(
                f"Observation {key!r} has unsupported dtype {arr.dtype}; expected numbers or uint8 images."
            )
    return out
