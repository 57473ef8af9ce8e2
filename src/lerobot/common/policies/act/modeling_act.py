"""Compatibility alias of :mod:`lerobot.policies.act.modeling_act`."""

from lerobot.policies.act.modeling_act import (
    ACT,
    ACTDecoder,
    ACTEncoder,
    ACTPolicy,
    ACTSinusoidalPositionEmbedding2d,
    ACTTemporalEnsembler,
)

__all__ = [
    "ACT",
    "ACTDecoder",
    "ACTEncoder",
    "ACTPolicy",
    "ACTSinusoidalPositionEmbedding2d",
    "ACTTemporalEnsembler",
]
