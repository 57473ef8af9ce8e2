"""The last ``n_obs_steps`` observations of a policy that conditions on a history (Diffusion, VQ-BeT).

A chunking policy predicts once every ``n_action_steps`` control steps, so most frames it sees are
never encoded before they are needed, and each is needed ``n_obs_steps`` times while it stays in the
history. :class:`EncodedHistory` therefore keeps each frame raw until a prediction asks for it,
encodes every new frame in one batched call, and reuses the result for as long as the frame stays.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from lerobot.configs.types import PolicyFeature


@dataclasses.dataclass
class _Frame:
    """One normalised observation and, once a prediction needed it, its encoding."""

    obs: dict[str, Tensor]
    encoding: Tensor | None = None


class EncodedHistory:
    """A fixed-length history of observation frames, each encoded at most once."""

    def __init__(self, length: int):
        self._frames: deque[_Frame] = deque(maxlen=length)

    def push(self, obs: Mapping[str, Tensor], features: Mapping[str, PolicyFeature]) -> None:
        """Append one normalised frame (the keys of ``features``; each ``(B, ...)``).

        The first frame after a reset fills the whole history: the robot was standing still.
        """
        frame = _Frame({key: obs[key] for key in features})
        if self._frames:
            self._frames.append(frame)
        else:
            self._frames.extend([frame] * self._frames.maxlen)

    def encodings(self, encode: Callable[[dict[str, Tensor]], Tensor]) -> list[Tensor]:
        """Each frame's encoding, oldest first.

        ``encode`` maps the not-yet-encoded frames stacked on a time axis, ``{key: (B, k, ...)}``, to
        ``(B, k, ...)``; it runs once per call at most, on only those frames.
        """
        new = list({id(f): f for f in self._frames if f.encoding is None}.values())
        if new:
            stacked = {key: torch.stack([f.obs[key] for f in new], dim=1) for key in new[0].obs}
            encoded = encode(stacked)
            for i, frame in enumerate(new):
                frame.encoding, frame.obs = encoded[:, i], {}
        return [f.encoding for f in self._frames]  # type: ignore[misc]


def is_full_history(obs: Mapping[str, Tensor], features: Mapping[str, PolicyFeature]) -> bool:
    """Whether ``obs`` holds a whole history per feature, ``(B, S, *shape)``, rather than one frame."""
    return all(obs[k].dim() == len(f.shape) + 2 for k, f in features.items() if k in obs)
