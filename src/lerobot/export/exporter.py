"""``export_policy(policy, format=..., output=...)``: one export call per format, with its parity check.

What is exported is the policy's graph (:mod:`lerobot.policies.export_graph`): a raw observation in
robot units (cameras as uint8 (H, W, C), the camera's own format) -> an action chunk in robot units,
normalisation included, every random draw an input. Formats::

    onnx          model.onnx   torch.onnx.export (dynamo), run with ONNX Runtime
    torchscript   model.pt     torch.jit.trace, run with torch.jit.load
    torch_export  model.pt2    torch.export.export + save, run with torch.export.load
    int8          model.onnx   the ONNX model with int8 weights (ONNX Runtime dynamic quantisation of every
                               MatMul, Gemm and Conv: activations quantised per call), run with ONNX Runtime

Every export is traced at a batch of 2 (torch.export specialises a batch of 1), with a dynamic batch axis.

Parity is part of the export: the original policy and the exported model run on the same observations
(recorded ones when given, see :mod:`lerobot.export.parity`) with the same draws, one observation at a
time (batch 1, as on a robot). The export is refused (:class:`ParityError`, nothing written) when

* float32 formats: ``|exported - original| > 1e-4 * max(1, |original|)`` for any action value
  (1e-4 absolute for actions within [-1, 1], relative beyond);
* int8: ``|exported - original| > int8_tolerance * range`` (default 5%) for any action value, with
  ``range`` each action dimension's range (max - min of the dataset statistics, else of the policy's
  statistics, else 4 standard deviations, else the spread of the original's actions).

The folder then holds the artefact and ``metadata.json``: the policy (type, source, config), the inputs
and output with names, shapes and dtypes, the random draws, the tolerance and the measured
difference. A vision-language-action policy (SmolVLA, π0, π0.5) also gets ``tokenizer/`` (its
tokenizer's files) and ``metadata["instruction"]`` (how a task becomes the token inputs), and its ONNX
weights are written beside the model (``model.onnx.data``), so that models above 2 GB export. Both are written under a temporary name and renamed into place (an older metadata.json is
removed first, the new one comes last), so a folder with a ``metadata.json`` holds a complete export.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lerobot.export.parity import ParityReport, compare_actions, run_original
from lerobot.export.runtime import METADATA_NAME, RUNTIMES, ExportedModel, import_onnxruntime
from lerobot.policies.export_graph import PolicyGraph
from lerobot.policies.pretrained import PreTrainedPolicy

logger = logging.getLogger(__name__)

FORMATS = ("onnx", "torchscript", "torch_export", "int8")
FILES = {"onnx": "model.onnx", "int8": "model.onnx", "torchscript": "model.pt", "torch_export": "model.pt2"}
FLOAT_TOLERANCE = 1e-4
INT8_TOLERANCE = 0.05
EXPORT_BATCH = 2


class ParityError(RuntimeError):
    """The exported model does not act like the original within the tolerance; nothing was written."""


def exportable_policies() -> list[str]:
    """Registered policy types that build an export graph (the others export to no format yet)."""
    from lerobot.policies.config import POLICY_CONFIGS
    from lerobot.policies.factory import get_policy_class

    found = []
    for name in sorted(POLICY_CONFIGS):
        try:
            policy_cls = get_policy_class(name)
        except Exception:  # a registered policy whose optional dependencies are missing
            continue
        if policy_cls._export_graph is not PreTrainedPolicy._export_graph:
            found.append(name)
    return found


def graph_for(policy: PreTrainedPolicy, fmt: str) -> PolicyGraph:
    """The policy's graph for ``fmt``, or one error saying why it cannot be exported and what can."""
    if fmt not in FORMATS:
        raise ValueError(f"Unknown export format {fmt!r}; choose one of {list(FORMATS)}.")
    try:
        graph = policy.export_graph(camera_images=True, draws="input", history=True)
    except NotImplementedError as e:
        raise ValueError(
            f"A {policy.name!r} policy cannot be exported to {fmt}: {e} Policies that export: "
            f"{', '.join(exportable_policies()) or 'none'}."
        ) from e
    if graph.formats is not None and fmt not in graph.formats:
        raise ValueError(
            f"A {policy.name!r} policy cannot be exported to {fmt}: {graph.format_notes}. It exports to "
            f"{', '.join(graph.formats)}: --format={graph.formats[0]}."
        )
    return graph


def _dynamic_batch(graph: PolicyGraph) -> tuple[tuple[dict[int, Any], ...]]:
    batch = torch.export.Dim("batch", min=1)
    return (tuple({0: batch} for _ in graph.inputs),)  # one entry: forward(*inputs) is one varargs parameter


def _write_artefact(graph: PolicyGraph, fmt: str, path: Path) -> None:
    example = graph.example_inputs(EXPORT_BATCH, torch.Generator().manual_seed(0))
    names = [spec.name for spec in graph.inputs]
    if fmt in ("onnx", "int8"):
        target = path if fmt == "onnx" else path.with_name(path.name + ".fp32")
        torch.onnx.export(
            graph,
            example,
            str(target),
            input_names=names,
            output_names=[graph.output.name],
            dynamic_shapes=_dynamic_batch(graph),
            external_data=graph.external_data,
            verbose=False,
        )
        if fmt == "int8":
            import_onnxruntime()
            from onnxruntime.quantization import QuantType, quantize_dynamic

            # uint8 weights: int8 x uint8 products saturate on x86 CPUs without VNNI (ONNX Runtime's docs)
            quantize_dynamic(
                str(target),
                str(path),
                weight_type=QuantType.QUInt8,
                op_types_to_quantize=["MatMul", "Gemm", "Conv"],
                use_external_data_format=graph.external_data,
            )
            target.unlink()
            target.with_name(target.name + ".data").unlink(missing_ok=True)
    elif fmt == "torchscript":
        traced = torch.jit.trace(graph, example, check_trace=False)
        torch.jit.save(traced, str(path))
    else:
        program = torch.export.export(graph, example, dynamic_shapes=_dynamic_batch(graph))
        torch.export.save(program, str(path))


def export_policy(
    policy: PreTrainedPolicy,
    format: str = "onnx",  # noqa: A002 -- the CLI's and the issue's spelling
    output: str | Path | None = None,
    observations: Sequence[dict[str, np.ndarray]] | None = None,
    observations_source: str = "",
    int8_tolerance: float = INT8_TOLERANCE,
    action_stats: dict[str, Any] | None = None,
    policy_source: str = "",
    seed: int = 0,
) -> dict[str, Any]:
    """Export ``policy`` to ``format`` in the folder ``output`` after checking parity; return the metadata.

    ``observations``: raw single observations ``{feature: array without a batch axis}`` (cameras uint8
    (H, W, C); with a history, (S, ...) per feature) to check parity on; default 8 synthetic ones drawn
    from the policy's statistics (said in the metadata). ``action_stats``: the dataset's action
    statistics (``min``/``max``), whose range scales the int8 tolerance. Raises :class:`ParityError` (nothing written) when the export does not act
    like the policy, ``ValueError`` for a format the policy cannot take.
    """
    graph = graph_for(policy, format)
    output = Path(output if output is not None else f"exported_{policy.name}_{format}")
    output.mkdir(parents=True, exist_ok=True)
    if observations is None:
        from lerobot.export.parity import synthetic_observations

        observations = synthetic_observations(graph, policy, 8, seed)
        observations_source = observations_source or "synthetic: 8 observations from the policy's statistics"
    file_name = FILES[format]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(dir=output, prefix=".export-") as scratch:
        scratch = Path(scratch)
        _write_artefact(graph, format, scratch / file_name)
        if graph.instruction is not None:  # a VLA: the runtime tokenises with the policy's own tokenizer
            policy.tokenizer.save_pretrained(str(scratch / graph.instruction["tokenizer"]))
        export_s = time.perf_counter() - started
        metadata = _metadata(policy, graph, format, file_name, policy_source)
        metadata["files"] = sorted(p.name for p in scratch.iterdir() if p.name != METADATA_NAME)
        (scratch / METADATA_NAME).write_text(json.dumps(metadata, indent=2))
        exported = ExportedModel(scratch)
        original, draws = run_original(policy, graph, observations, seed)
        got = np.stack(
            [
                exported({**{k: np.asarray(v)[None] for k, v in obs.items()}, **d})[0]
                for obs, d in zip(observations, draws, strict=True)
            ]
        )
        tolerance = int8_tolerance if format == "int8" else FLOAT_TOLERANCE
        report: ParityReport = compare_actions(original, got, format, policy, tolerance, stats=action_stats)
        metadata["parity"] = report.to_dict(len(observations), observations_source)
        metadata["export_seconds"] = round(export_s, 2)
        metadata["file_bytes"] = sum(
            (scratch / name).stat().st_size for name in metadata["files"] if (scratch / name).is_file()
        )
        if not report.passed:
            raise ParityError(
                f"Refused: the {format} export of this {policy.name} policy does not act like it. {report.summary()} "
                f"over {len(observations)} observations ({observations_source}). Nothing was written to {output}."
            )
        (scratch / METADATA_NAME).write_text(json.dumps(metadata, indent=2))
        # metadata.json marks a complete export: an older one goes first, the new one comes last
        (output / METADATA_NAME).unlink(missing_ok=True)
        for name in metadata["files"]:
            if (output / name).is_dir():  # an older export's tokenizer folder
                shutil.rmtree(output / name)
            os.replace(scratch / name, output / name)
        os.replace(scratch / METADATA_NAME, output / METADATA_NAME)
    logger.info("Exported %s to %s (%s). %s", policy.name, output / file_name, format, report.summary())
    return metadata


def _metadata(
    policy: PreTrainedPolicy, graph: PolicyGraph, fmt: str, file_name: str, source: str
) -> dict[str, Any]:
    cfg = policy.config
    return {
        "format": fmt,
        "file": file_name,
        "runtime": RUNTIMES[fmt],
        "torch_version": torch.__version__,
        "policy": {"type": policy.name, "source": source, "config": cfg.to_dict()},
        "inputs": [spec.to_dict() for spec in graph.inputs],
        "outputs": [graph.output.to_dict()],
        "random_draws": graph.random_draws,
        "instruction": graph.instruction,
        "history": graph.history,
        "n_action_steps": int(
            min(getattr(cfg, "n_action_steps", graph.output.shape[0]), graph.output.shape[0])
        ),
        "units": "observations raw (robot units), cameras uint8 (H, W, C); actions in robot units",
    }
