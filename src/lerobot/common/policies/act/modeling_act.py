"""Compatibility alias of :mod:`lerobot.policies.act.modeling_act`."""

from lerobot.policies.act.modeling_act import ACTPolicy, ACTTemporalEnsembler
from lerobot.policies.act.network import ACT, ACTDecoder, ACTEncoder, ACTSinusoidalPositionEmbedding2d

__all__ = [
    "ACT",
    "ACTDecoder",
    "ACTEncoder",
    "ACTPolicy",
    "ACTSinusoidalPositionEmbedding2d",
    "ACTTemporalEnsembler",
]
