"""Exported policies: ONNX, TorchScript, torch.export and int8, each checked against the original.

    from lerobot.export import export_policy, load_exported
    export_policy(policy, format="onnx", output="exported/act_onnx")   # refuses when parity fails
    exported = load_exported("exported/act_onnx")                       # ONNX Runtime, no torch model
    exported.select_action(observation)["action"]

``lerobot-export --policy.path=P --format=onnx|torchscript|torch_export|int8 --output=DIR`` does the same
from the command line, checking parity on the policy's recorded training data. See
:mod:`lerobot.export.exporter` (formats, tolerances, metadata.json) and :mod:`lerobot.export.runtime`.
"""

from lerobot.export.exporter import FORMATS, ParityError, export_policy, exportable_policies
from lerobot.export.runtime import (
    ExportedModel,
    ExportedPolicy,
    is_export_folder,
    load_exported,
    read_metadata,
)

__all__ = [
    "FORMATS",
    "ExportedModel",
    "ExportedPolicy",
    "ParityError",
    "export_policy",
    "exportable_policies",
    "is_export_folder",
    "load_exported",
    "read_metadata",
]
