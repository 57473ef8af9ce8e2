"""A policy as one stateless tensor function: the thing ONNX, TorchScript, torch.export and int8 export.

``policy.export_graph()`` returns a :class:`PolicyGraph`, ``graph(*inputs) -> action chunk (B, T, A)``
in robot units, normalisation included, with no action queue, observation history or random state of
its own. Its inputs, in ``graph.inputs`` order (B = batch)::

    every input feature of the config, raw (robot units)     (B, *shape), or (B, S, *shape) with a history
        cameras: uint8 (B, H, W, C), the camera's own format  (camera_images=False: float (B, C, H, W) in [0, 1])
    a VLA's instruction as token ids + attention mask        int64 (B, L) each (tokenised outside the graph)
    then the random draws, standard normal                   e.g. Diffusion's initial noise (B, T, A)
        or uniform in [0, 1) (``uniform``)                    e.g. VQ-BeT's code draws (inverse CDF)

A deterministic policy (ACT at inference) has no random inputs. ``draws="inside"`` makes the graph draw
them itself (``torch.randn``), so that it acts like the eager policy; exports meant to be checked for
parity take them as inputs (``draws="input"``), so the same numbers can go to both.

The graph shares the policy's modules (no copy). It is built from stock modules and tensor ops only,
so ``torch.jit.trace``, ``torch.export`` and the ONNX exporter all see the same thing.
:class:`ScriptablePolicy` is what ``torch.jit.script(policy)`` returns (see
``PreTrainedPolicy.__prepare_scriptable__``): the traced graph behind a scripted ``dict -> dict`` call.

``torch.onnx.export(policy, {"observation.state": ..., ...}, "policy.onnx")`` -- a dict of inputs as
the model's one argument, as the TorchScript-based exporter took it and the user guide writes it --
stops inside torch's current (dynamo) exporter with ``KeyError: -1`` before it looks at the model.
:func:`accept_dict_inputs_in_onnx_export` (run when policies are imported) lets ``torch.onnx.export``
read such a dict as ``(inputs, {})``, the exporter's own spelling of "one dict argument, no keyword
arguments"; every other call goes to torch unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lerobot.configs.types import FeatureType, PolicyFeature

DRAWS = ("input", "inside")


@dataclasses.dataclass(frozen=True)
class GraphInput:
    """One positional input (or the output) of a graph: name, shape without the batch axis, dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    random: bool = False
    """A random draw (noise) rather than an observation."""
    uniform: bool = False
    """The draw is uniform in [0, 1) (an inverse-CDF pick), not standard normal."""
    high: int = 2
    """An integer input's values are in [0, high) (token ids: the vocabulary size; masks: 2)."""

    def to_dict(self) -> dict[str, Any]:
        out = {
            "name": self.name,
            "shape": ["batch", *self.shape],
            "dtype": str(self.dtype).removeprefix("torch."),
            "random": self.random,
        }
        if self.random:
            out["distribution"] = "uniform" if self.uniform else "normal"
        return out


class PolicyGraph(nn.Module):
    """Base of each policy's graph; subclasses set ``inputs`` (``observations`` first), ``cameras``, ``output``
    and ``random_draws`` and forward."""

    inputs: list[GraphInput]
    observations: list[GraphInput]
    """The observation inputs, first in ``inputs`` (:meth:`observation_batch` reads them)."""
    cameras: set[str]
    """The names of the camera inputs (:meth:`model_image` turns them into the network's images)."""
    output: GraphInput
    random_draws: str
    """What is random in the policy and how the graph handles it, in words (goes into metadata.json)."""
    history: int | None = None
    """Observation steps S each observation input carries ((B, S, ...)); None: one frame (B, ...)."""
    formats: tuple[str, ...] | None = None
    """The export formats this graph can take (None: every format); ``format_notes`` says why not the others."""
    format_notes: str = ""
    external_data: bool = False
    """ONNX weights in a file beside the model (``model.onnx.data``): needed above protobuf's 2 GB."""
    instruction: dict[str, Any] | None = None
    """A VLA's instruction inputs and how to tokenise a task for them (goes into metadata.json)."""

    def __init__(self, camera_images: bool, draws: str):
        super().__init__()
        if draws not in DRAWS:
            raise ValueError(f"draws must be one of {DRAWS}, got {draws!r}.")
        self.camera_images = camera_images
        self.draws = draws

    @property
    def instruction_names(self) -> tuple[str, ...]:
        """The token-id and mask inputs of a VLA's instruction (none for other policies)."""
        return tuple(self.instruction["inputs"]) if self.instruction else ()

    @property
    def observation_names(self) -> list[str]:
        """The inputs that are observation features (not the instruction, not the draws)."""
        return [s.name for s in self.inputs if not s.random and s.name not in self.instruction_names]

    def observation_input(self, name: str, feature: PolicyFeature, history: int | None = None) -> GraphInput:
        """The graph input of one config feature (cameras as uint8 HWC when ``camera_images``)."""
        lead = (history,) if history else ()
        if feature.type is FeatureType.VISUAL and self.camera_images:
            c, h, w = feature.shape
            return GraphInput(name, (*lead, h, w, c), torch.uint8)
        return GraphInput(name, (*lead, *feature.shape), torch.float32)

    def model_image(self, x: Tensor) -> Tensor:
        """A camera input as the network takes it: float (..., C, H, W) in [0, 1]."""
        if self.camera_images:
            return x.movedim(-1, -3).float() / 255.0
        return x

    def observation_batch(
        self, inputs: Sequence[Tensor], n_obs_steps: int | None = None
    ) -> dict[str, Tensor]:
        """The network's batch of the observation inputs (the first ``len(observations)`` of ``inputs``).

        Cameras become the network's images (:meth:`model_image`). A policy that conditions on a history
        names its length ``n_obs_steps``: a graph without a history input (``history`` None) repeats its
        one frame that many times, the history the eager policy holds right after ``reset()``.
        """
        repeat = n_obs_steps if self.history is None else None
        batch = {}
        for spec, x in zip(self.observations, inputs, strict=False):
            if spec.name in self.cameras:
                x = self.model_image(x)
            if repeat is not None:
                x = x.unsqueeze(1).expand(-1, repeat, *x.shape[1:])
            batch[spec.name] = x
        return batch

    def example_inputs(
        self, batch_size: int = 1, generator: torch.Generator | None = None
    ) -> tuple[Tensor, ...]:
        """Random inputs of the right shapes and dtypes (uint8 images, standard-normal floats)."""
        out = []
        for spec in self.inputs:
            shape = (batch_size, *spec.shape)
            if spec.dtype == torch.uint8:
                out.append(torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator))
            elif not spec.dtype.is_floating_point:
                out.append(torch.randint(0, spec.high, shape, dtype=spec.dtype, generator=generator))
            elif spec.uniform:
                out.append(torch.rand(shape, generator=generator))
            else:
                out.append(torch.randn(shape, generator=generator))
        return tuple(out)

    def draw_inputs(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        """The random inputs, drawn from ``generator`` in the order the eager policy draws them from the same
        generator (``predict_action_chunk(obs, generator=...)``), so that both see the same numbers."""
        return tuple(
            torch.randn((batch_size, *spec.shape), generator=generator) for spec in self.inputs if spec.random
        )

    def original_kwargs(self, draws: tuple[Tensor, ...], generator: torch.Generator) -> dict[str, Any]:
        """What ``predict_action_chunk`` takes to make the draws ``draws`` (drawn from a generator seeded like
        ``generator``): the generator itself, by default; a policy that takes its noise directly says so."""
        return {"generator": generator}

    def standard_normal(self, like: Tensor, shape: tuple[int, ...]) -> Tensor:
        """A draw made inside the graph (``draws="inside"``): (B, *shape), B taken from ``like``."""
        return torch.randn((like.shape[0], *shape), dtype=torch.float32, device=like.device)


class _DictGraph(nn.Module):
    """``graph`` called with a dict of its observation inputs (what ``torch.jit.trace`` records)."""

    def __init__(self, graph: PolicyGraph):
        super().__init__()
        self.graph = graph
        self.names = [spec.name for spec in graph.inputs]

    def forward(self, batch: dict[str, Tensor]) -> Tensor:
        return self.graph(*[batch[name] for name in self.names])


class ScriptablePolicy(nn.Module):
    """``torch.jit.script(policy)``: ``{feature: tensor} -> {"action": (B, T, A)}``, like ``policy.eval()(obs)``.

    Takes what the eager policy takes: raw observations with or without the batch axis, cameras as
    float (C, H, W) in [0, 1] or as the camera's uint8 (H, W, C). The network is the policy's graph
    traced at its configured input shapes (draws made inside, like the eager policy); this module's
    own code is scripted.
    """

    def __init__(self, graph: PolicyGraph):
        super().__init__()
        if graph.camera_images or any(spec.random for spec in graph.inputs):
            raise ValueError("ScriptablePolicy wraps a graph with float camera inputs and its draws inside.")
        self.names = [spec.name for spec in graph.inputs]
        self.ranks = [len(spec.shape) + 1 for spec in graph.inputs]
        self.cameras = [len(spec.shape) >= 3 for spec in graph.inputs]
        example = dict(zip(self.names, graph.example_inputs(1), strict=True))
        self.core = torch.jit.trace(_DictGraph(graph), (example,), check_trace=False)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        inputs: dict[str, Tensor] = {}
        for name, rank, camera in zip(self.names, self.ranks, self.cameras):
            if name not in batch:
                raise KeyError("the observation has no '" + name + "'")
            x = batch[name]
            if camera and x.dtype == torch.uint8:
                x = x.float() / 255.0
                if x.size(-1) == 3 and x.size(-3) != 3:
                    x = x.movedim(-1, -3)
            x = x.float()
            if x.dim() == rank - 1:
                x = x.unsqueeze(0)
            inputs[name] = x
        return {"action": self.core(inputs)}


def accept_dict_inputs_in_onnx_export() -> None:
    """Make ``torch.onnx.export(model, {name: tensor}, ...)`` mean one dict argument (see the module docstring)."""
    original = torch.onnx.export
    if getattr(original, "_accepts_dict_inputs", False):
        return

    @functools.wraps(original)
    def export(model: Any, args: Any = (), *more: Any, **kwargs: Any) -> Any:
        if isinstance(args, Mapping):
            args = (dict(args), {})
        return original(model, args, *more, **kwargs)

    export._accepts_dict_inputs = True  # type: ignore[attr-defined]
    torch.onnx.export = export
