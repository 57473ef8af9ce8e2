"""Policies: one folder each (``act/``, ``diffusion/``), plus the shared pieces.

``config.py`` (``PreTrainedConfig``, registry for ``--policy.type``), ``pretrained.py``
(``PreTrainedPolicy``: normalisation, save/load), ``normalize.py``, ``backbones.py``, ``factory.py``
(``make_policy``, ``get_policy_class``), ``policy_protocol.py``. Importing this package registers the
configs only; the torch models load on first use.
"""

from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.config import POLICY_CONFIGS, PreTrainedConfig
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.pi0.configuration_pi0 import PI0Config
from lerobot.policies.pi05.configuration_pi05 import PI05Config
from lerobot.policies.smolvla.configuration_smolvla import SmolVLAConfig  # noqa: F401
from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig
from lerobot.policies.vqbet.configuration_vqbet import VQBeTConfig

__all__ = [
    "ACTConfig",
    "ACTPolicy",
    "DiffusionConfig",
    "DiffusionPolicy",
    "PI0Config",
    "PI0Policy",
    "PI05Config",
    "PI05Policy",
    "POLICY_CONFIGS",
    "PolicyProtocol",
    "PreTrainedConfig",
    "PreTrainedPolicy",
    "TDMPCConfig",
    "TDMPCPolicy",
    "VQBeTConfig",
    "VQBeTPolicy",
    "get_policy_class",
    "make_policy",
]

_LAZY = {
    "ACTPolicy": "lerobot.policies.act.modeling_act",
    "DiffusionPolicy": "lerobot.policies.diffusion.modeling_diffusion",
    "PI0Policy": "lerobot.policies.pi0.modeling_pi0",
    "PI05Policy": "lerobot.policies.pi05.modeling_pi05",
    "PreTrainedPolicy": "lerobot.policies.pretrained",
    "TDMPCPolicy": "lerobot.policies.tdmpc.modeling_tdmpc",
    "VQBeTPolicy": "lerobot.policies.vqbet.modeling_vqbet",
    "PolicyProtocol": "lerobot.policies.policy_protocol",
    "get_policy_class": "lerobot.policies.factory",
    "make_policy": "lerobot.policies.factory",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lerobot.policies' has no attribute {name!r}")
