"""Run an exported policy: :class:`ExportedModel` (one call, arrays in and out) and :class:`ExportedPolicy`
(what ``lerobot-deploy`` and the policy server drive, like a policy object).

An export folder holds the artefact and ``metadata.json`` (see :mod:`lerobot.export.exporter`). Each
format has its runtime::

    onnx, int8     onnxruntime       model.onnx    (pip install 'lerobot[export]')
    torchscript    torch.jit.load    model.pt
    torch_export   torch.export.load model.pt2

``ExportedModel(folder)(inputs)`` takes ``{input name: array}`` with the shapes and dtypes of
``metadata["inputs"]`` (a batch axis first) and returns the action chunk (B, T, A) in robot units.
A vision-language-action export (SmolVLA, π0, π0.5) takes its instruction as token ids and an
attention mask; given ``"task"`` (a string, or one per sample) instead, the model tokenises it with the
tokenizer saved beside it as ``metadata["instruction"]`` says (:func:`instruction_inputs`; needs
``transformers``, the ``vla`` extra).
``ExportedPolicy`` adds what the eager policy does around that call: a batch axis, cameras converted
to uint8 (H, W, C), the observation history (Diffusion, VQ-BeT), the random draws (standard normal, or uniform
where the metadata says so, from its own seeded generator) and the action queue (each action repeated
``n_action_repeats`` times where the config has them: TD-MPC).
"""

from __future__ import annotations

import copy
import json
import os
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lerobot.configs.types import FeatureType
from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.pretrained import PolicyAction

METADATA_NAME = "metadata.json"
RUNTIMES = {
    "onnx": "onnxruntime",
    "int8": "onnxruntime",
    "torchscript": "torchscript",
    "torch_export": "torch_export",
}
BACKENDS = ("onnxruntime", "torchscript", "torch_export")


def import_onnxruntime() -> Any:
    """``onnxruntime``, or one error naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(
            "ONNX Runtime is not installed: pip install 'lerobot[export]' (onnx, onnxruntime, onnxscript)."
        ) from e
    return onnxruntime


def read_metadata(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / METADATA_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{folder} is not an exported policy (no {METADATA_NAME}): export one with "
            "lerobot-export --policy.path=<checkpoint> --format=onnx --output=<folder>."
        )
    return json.loads(path.read_text())


def is_export_folder(path: str | Path) -> bool:
    return (Path(path) / METADATA_NAME).is_file()


class ExportedModel:
    """An exported graph loaded with its runtime: ``model({name: array}) -> np.ndarray (B, T, A)``."""

    def __init__(self, folder: str | Path, backend: str | None = None, threads: int | None = None):
        """``threads``: ONNX Runtime's intra-op threads (default: its own choice, one per core). With
        ``OMP_WAIT_POLICY=PASSIVE`` in the environment its threads do not spin while waiting for work."""
        self.folder = Path(folder)
        self.metadata = read_metadata(folder)
        fmt = self.metadata["format"]
        self.backend = backend or RUNTIMES[fmt]
        if self.backend != RUNTIMES[fmt]:
            raise ValueError(
                f"{folder} holds a {fmt!r} export, which runs on {RUNTIMES[fmt]}, not {self.backend}: "
                f"use --policy.backend={RUNTIMES[fmt]} (or export to the format {self.backend} runs)."
            )
        name = Path(self.metadata["file"]).name  # a plain file name inside the folder, never a path
        artefact = self.folder / name
        if not artefact.is_file():
            raise FileNotFoundError(f"{folder}: {METADATA_NAME} names {name}, which is missing.")
        self.inputs = self.metadata["inputs"]
        self._tokenizer: Any = None
        if self.backend == "onnxruntime":
            ort = import_onnxruntime()
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            if threads:
                options.intra_op_num_threads = threads
            if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE":
                # The process asked torch's threads to sleep rather than spin between parallel regions
                # (cores shared with a control loop, cameras, other jobs): ONNX Runtime's pool likewise,
                # or its spinning worker takes the core the calling thread needs.
                options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            self._session = ort.InferenceSession(str(artefact), options, providers=["CPUExecutionProvider"])
        elif self.backend == "torchscript":
            self._module = torch.jit.load(str(artefact), map_location="cpu").eval()
        else:
            self._module = torch.export.load(str(artefact)).module()

    @property
    def input_names(self) -> list[str]:
        return [spec["name"] for spec in self.inputs]

    @property
    def tokenizer(self) -> Any:
        """The instruction's tokenizer, from the export folder (loaded on first use)."""
        if self._tokenizer is None:
            from lerobot.policies.vla_common import load_tokenizer

            self._tokenizer = load_tokenizer(self.metadata["instruction"]["tokenizer"], self.folder)
        return self._tokenizer

    def tokenize(self, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """``inputs`` with ``"task"`` replaced by the instruction's token ids and mask (VLA exports)."""
        instruction = self.metadata.get("instruction")
        if instruction is None or "task" not in inputs:
            return dict(inputs)
        out = {k: v for k, v in inputs.items() if k != "task"}
        sizes = {np.shape(v)[0] for v in out.values() if np.ndim(v)}
        task = inputs["task"]
        tasks = [task] if isinstance(task, str) else [str(t) for t in np.asarray(task).reshape(-1)]
        if len(tasks) == 1 and sizes and max(sizes) > 1:
            tasks = tasks * max(sizes)
        out.update(instruction_inputs(instruction, self.tokenizer, tasks))
        return out

    def check_inputs(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Arrays of the declared names, dtypes and shapes (batch first), or one error naming the key."""
        inputs = self.tokenize(inputs)
        out = {}
        for spec in self.inputs:
            name = spec["name"]
            if name not in inputs:
                hint = (
                    "Give the instruction as 'task' (a string, or one per sample): the model tokenises it."
                    if name in (self.metadata.get("instruction") or {}).get("inputs", ())
                    else "Check that the robot's observation features match the policy's."
                )
                raise KeyError(
                    f"The exported model needs input {name!r} {_shape_text(spec)}; got {sorted(inputs)}. {hint}"
                )
            x = np.asarray(inputs[name])
            if x.dtype != np.dtype(spec["dtype"]) or list(x.shape[1:]) != spec["shape"][1:]:
                raise ValueError(
                    f"Input {name!r} is {x.dtype} {tuple(x.shape)}; the exported model takes {_shape_text(spec)}."
                )
            out[name] = np.ascontiguousarray(x)
        unknown = sorted(set(inputs) - {spec["name"] for spec in self.inputs})
        if unknown:
            raise KeyError(
                f"The exported model has no inputs {unknown}; it takes {[s['name'] for s in self.inputs]}."
            )
        return out

    def __call__(self, inputs: Mapping[str, Any]) -> np.ndarray:
        arrays = self.check_inputs(inputs)
        if self.backend == "onnxruntime":
            return self._session.run(None, arrays)[0]
        with torch.inference_mode():
            out = self._module(*[torch.from_numpy(arrays[spec["name"]]) for spec in self.inputs])
        return out.numpy()


def instruction_inputs(
    instruction: Mapping[str, Any], tokenizer: Any, tasks: list[str]
) -> dict[str, np.ndarray]:
    """Token ids and attention mask, int64 (B, max_length) each, of ``tasks`` as a VLA export takes them.

    ``instruction`` is ``metadata["instruction"]``: the text around each task (``prompt``), how the task is
    cleaned (``task_cleanup``), and the tokenizer's settings (``max_length``, padding to it on the
    right, truncation), as the policy tokenises in PyTorch.
    """
    from lerobot.policies.vla_common import instruction_text

    texts = [instruction_text(instruction["prompt"], instruction["task_cleanup"], t) for t in tasks]
    out = tokenizer(
        texts,
        max_length=instruction["max_length"],
        padding=instruction["padding"],
        truncation=True,
        padding_side=instruction["padding_side"],
        return_tensors="np",
    )
    tokens, mask = instruction["inputs"]
    return {tokens: out["input_ids"].astype(np.int64), mask: out["attention_mask"].astype(np.int64)}


def _shape_text(spec: Mapping[str, Any]) -> str:
    return f"{spec['dtype']} ({', '.join(map(str, spec['shape']))})"


class ExportedPolicy:
    """An exported model with the eager policy's interface: ``select_action``, ``predict_action_chunk``, ``reset``.

    ``config`` is the policy's config (from ``metadata.json``), so the deploy loop checks features as
    for any policy. Deep copies (one per policy-server session) share the loaded model and keep their
    own history, queue and generator.
    """

    def __init__(self, folder: str | Path, backend: str | None = None, seed: int | None = None):
        self.model = ExportedModel(folder, backend)
        meta = self.model.metadata
        self.config = PreTrainedConfig.from_dict(meta["policy"]["config"])
        self.name = self.config.type
        self.history = meta["history"]
        self.n_action_steps = meta["n_action_steps"]
        self.repeats = int(getattr(self.config, "n_action_repeats", 1))
        self._rng = np.random.default_rng(seed)
        self.reset()

    def __deepcopy__(self, memo: dict[int, Any]) -> ExportedPolicy:
        clone = copy.copy(self)
        clone._rng = copy.deepcopy(self._rng, memo)
        clone.reset()
        return clone

    def eval(self) -> ExportedPolicy:
        return self

    def to(self, *_: Any, **__: Any) -> ExportedPolicy:
        return self

    def reset(self) -> None:
        self._frames: deque[dict[str, np.ndarray]] = deque(maxlen=self.history or 1)
        self._queue: deque[np.ndarray] = deque()

    def _frame(self, observation: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
        """Raw observation -> {feature: array with a batch axis} as the model takes it; and whether batched."""
        frame, batched = {}, True
        for name, ft in self.config.input_features.items():
            if name not in self.model.input_names:  # a VLA's padding camera slot: the model fills it
                continue
            if name not in observation:
                raise KeyError(
                    f"The observation has no {name!r}, which the exported policy reads "
                    f"(it reads {list(self.config.input_features)})."
                )
            x = observation[name]
            x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
            if ft.type is FeatureType.VISUAL:
                c = ft.shape[0]
                if x.dtype != np.uint8:  # float in [0, 1] -> the camera's bytes
                    x = np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)
                if x.shape[-3] == c and x.shape[-1] != c:
                    x = np.moveaxis(x, -3, -1)
                rank = 3
            else:
                x = x.astype(np.float32)
                rank = len(ft.shape)
            if x.ndim == rank:
                x, batched = x[None], False
            frame[name] = x
        if self.model.metadata.get("instruction"):
            task = observation.get("task")
            if task is None:
                raise KeyError(
                    f"The observation has no 'task': this exported {self.name} policy acts on an instruction "
                    "(observation['task'] = 'pick up the cube'; lerobot-deploy --task=...)."
                )
            frame["task"] = task
        return frame, batched

    def _inputs(self, frame: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.history:
            if not self._frames:
                self._frames.extend([frame] * self.history)
            else:
                self._frames.append(frame)
            inputs = {k: np.stack([f[k] for f in self._frames], axis=1) for k in frame}
        else:
            inputs = dict(frame)
        batch = next(v for v in inputs.values() if isinstance(v, np.ndarray)).shape[0]
        for spec in self.model.inputs:
            if spec["random"]:
                shape = (batch, *spec["shape"][1:])
                if spec.get("distribution") == "uniform":
                    inputs[spec["name"]] = self._rng.random(shape, dtype=np.float32)
                else:
                    inputs[spec["name"]] = self._rng.standard_normal(shape, dtype=np.float32)
        return inputs

    def predict_action_chunk(self, observation: Mapping[str, Any]) -> torch.Tensor:
        """Raw observation -> (B, T, A) actions in robot units (the frame joins the history)."""
        frame, _ = self._frame(observation)
        return torch.from_numpy(self.model(self._inputs(frame)))

    def select_action(self, observation: Mapping[str, Any]) -> PolicyAction:
        """Raw observation -> ``{"action": (B, A)}`` for this step, from a queue of ``n_action_steps``."""
        frame, _ = self._frame(observation)
        if self.history and self._queue:
            self._frames.append(frame)
        if not self._queue:
            chunk = self.model(self._inputs(frame))[:, : self.n_action_steps]
            for action in np.swapaxes(chunk, 0, 1):
                self._queue.extend([action] * self.repeats)
        return PolicyAction(action=torch.from_numpy(np.array(self._queue.popleft())))


def load_exported(folder: str | Path, backend: str | None = None) -> ExportedPolicy:
    """An export folder -> :class:`ExportedPolicy` on its runtime (``backend`` must match when given)."""
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}; exported models run on {list(BACKENDS)}.")
    return ExportedPolicy(folder, backend)
