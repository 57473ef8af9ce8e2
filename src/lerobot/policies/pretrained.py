"""``PreTrainedPolicy``: what every policy shares -- normalisation, the action type, save and load.

The contract (shapes for a batch of B; ``A`` = action dim, ``T`` = chunk length)::

    out = policy(batch)                    # training: {"loss": scalar tensor, <float metrics>...}
    out["loss"].backward()
    out = policy.eval()(batch)             # eval mode: also {"action": (B, T, A)}; the loss only when
                                           # the batch carries the "action" target
    out = policy.select_action(obs)        # {"action": (B, A)} in robot units, one step at a time
    chunk = policy.predict_action_chunk(obs)   # (B, T, A) in robot units
    policy.reset()                         # at every episode start (clears action queues)

Observations and batches are raw (dataset units): the policy normalises them itself with the
dataset statistics it was built with (``ACTPolicy(config, dataset_stats=ds.meta.stats)``) and
un-normalises what it predicts. ``select_action`` returns a :class:`PolicyAction`, a dict whose
``"action"`` entry is the tensor; it also answers tensor attributes (``out.shape``, ``out.cpu()``,
``out[0]``) so code written for LeRobot's tensor return keeps working.

A checkpoint folder holds ``config.json``, ``model.safetensors`` (weights only) and the normaliser
statistics as LeRobot 0.6 processor files (see :mod:`lerobot.policies.normalize`), so either library
loads the other's checkpoints. ``from_pretrained`` also reads the older layout whose statistics are
buffers inside ``model.safetensors`` (``normalize_inputs.buffer_observation_state.mean`` ...).
Nothing is ever pickled.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import functools
import logging
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from lerobot.configs.types import OBS_STATE, FeatureType, PolicyFeature
from lerobot.datasets.hub import hub_offline
from lerobot.datasets.paths import is_repo_id, resolve_inside
from lerobot.policies import peft_adapters
from lerobot.policies.backbones import skip_pretrained_backbone_weights
from lerobot.policies.config import CONFIG_NAME, CheckpointError, PreTrainedConfig
from lerobot.policies.ema import EMA
from lerobot.policies.export_graph import PolicyGraph, ScriptablePolicy, accept_dict_inputs_in_onnx_export
from lerobot.policies.normalize import (
    NORMALIZER_PREFIXES,
    Normalize,
    Unnormalize,
    load_processor_stats,
    load_rename_map,
    save_processor_files,
    split_flat_stats,
)
from lerobot.utils.memory import available_memory_bytes

__all__ = [
    "PreTrainedConfig",
    "PreTrainedPolicy",
    "PolicyAction",
    "WeightsMismatchError",
    "resolve_checkpoint_dir",
]

WEIGHTS_NAME = "model.safetensors"
logger = logging.getLogger(__name__)
_LOADING_FROM: ContextVar[Path | None] = ContextVar("lerobot_loading_checkpoint", default=None)


def loading_checkpoint_dir() -> Path | None:
    """The checkpoint folder ``from_pretrained`` is loading while it builds the policy, else None.

    A policy whose config names files relative to its checkpoint (a VLA's backbone config and
    tokenizer folder) resolves them against this folder, and never outside it.
    """
    return _LOADING_FROM.get()


@contextlib.contextmanager
def _loading_from(folder: Path) -> Iterator[None]:
    token = _LOADING_FROM.set(folder)
    try:
        yield
    finally:
        _LOADING_FROM.reset(token)


accept_dict_inputs_in_onnx_export()


class WeightsMismatchError(RuntimeError, ValueError):
    """``model.safetensors`` does not fit the policy its ``config.json`` describes.

    A RuntimeError like torch's own ``load_state_dict`` failures, and a ValueError: it is bad input.
    """


class PolicyAction(dict):
    """``{"action": Tensor (B, action_dim)}``; attribute access and integer indexing go to the tensor."""

    @property
    def action(self) -> Tensor:
        return dict.__getitem__(self, "action")

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or "action" not in self:
            raise AttributeError(name)
        return getattr(dict.__getitem__(self, "action"), name)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        return dict.__getitem__(self, "action")[key]

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = self.action.detach().cpu().numpy()
        return array.astype(dtype) if dtype is not None else array


_module_registrations = 0
"""How many submodules have been registered in this process (any module, anywhere): a policy's list of
its submodules (:meth:`PreTrainedPolicy._submodules`) is rebuilt only when this has moved since."""


def _count_registration(module: nn.Module, name: str, submodule: nn.Module | None) -> None:
    global _module_registrations
    _module_registrations += 1


torch.nn.modules.module.register_module_module_registration_hook(_count_registration)


def inference_step(method: Callable[..., Any]) -> Callable[..., Any]:
    """Decorate a policy's ``select_action`` / ``predict_action_chunk``: eval mode, no autograd,
    and the EMA-averaged weights when the policy keeps an EMA (``policy.ema``).

    ``torch.inference_mode`` rather than ``no_grad`` skips autograd's version and view bookkeeping
    on every op. ``eval()`` runs before it, outside inference mode, so that nothing the mode switch
    touches becomes an inference tensor that training could not use. What is returned is copied
    out of inference mode, so callers may modify it in place (a safety layer clamping an action)
    or use it in autograd; the state kept between calls (action queues, encoded history) is only
    read back under the same mode.
    """

    @functools.wraps(method)
    def wrapper(self: PreTrainedPolicy, *args: Any, **kwargs: Any) -> Any:
        # Reading every module's flag is far cheaper than setting them all again, which was a large
        # share of a small policy's batch-1 action (TD-MPC): switch only when something is training.
        if any(m.training for m in self._submodules()):
            self.eval()
        with torch.inference_mode(), self.inference_weights():
            out = method(self, *args, **kwargs)
        if isinstance(out, PolicyAction):
            return PolicyAction({k: v.clone() if isinstance(v, Tensor) else v for k, v in out.items()})
        return out.clone()

    return wrapper


def _warn_unnormalised_inputs(config: PreTrainedConfig, stats: Mapping[str, Mapping[str, Any]]) -> None:
    """Say when a low-dimensional input reaches the model raw, far from [-1, 1], for want of a mapping.

    Feature types missing from ``normalization_mapping`` fall back to IDENTITY (as in LeRobot): fine
    for a cube pose in metres, but raw keypoints in pixels (PushT's environment state, ~400) made a
    Diffusion Policy plateau far above the loss it reaches normalised.
    """
    mapped = {str(getattr(k, "value", k)) for k in config.normalization_mapping}
    for name, ft in config.input_features.items():
        kind = ft.type.value
        if kind in mapped or kind == "VISUAL" or name not in stats:
            continue
        extremes = [
            np.abs(np.asarray(stats[name][k], dtype=np.float64)).max()
            for k in ("min", "max")
            if k in stats[name]
        ]
        if extremes and max(extremes) > 10:
            warnings.warn(
                f"{name} ({kind}) is not normalised (normalization_mapping has no {kind!r} entry) and its values "
                f'reach {max(extremes):.4g}: add one, e.g. --policy.normalization_mapping=\'{{..., "{kind}": '
                '"MIN_MAX"}\'.',
                UserWarning,
                stacklevel=4,
            )


def parameter_bytes(policy_cls: type[PreTrainedPolicy], config: PreTrainedConfig) -> tuple[int, str]:
    """Bytes of the parameters and buffers ``policy_cls(config)`` would allocate, and its largest tensor.

    The policy is built on PyTorch's ``meta`` device: every module and shape is real, no memory is.
    Its ``__init__`` must therefore not change ``config`` (it runs twice).
    """
    with (
        torch.device("meta"),
        skip_pretrained_backbone_weights(),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        model = policy_cls(config)
    tensors = [*model.named_parameters(), *model.named_buffers()]
    name, largest = max(tensors, key=lambda nt: nt[1].numel(), default=("-", torch.empty(0, device="meta")))
    total = sum(t.numel() * t.element_size() for _, t in tensors)
    return total, f"{name} {tuple(largest.shape)}"


def check_fits_in_memory(policy_cls: type[PreTrainedPolicy], config: PreTrainedConfig) -> None:
    """Refuse to build a policy whose parameters alone exceed the memory available, before allocating.

    A config from a file (or a typo like ``dim_feedforward=2000000000``) could otherwise ask for
    terabytes and take the machine down while allocating. Does nothing inside the meta-device build.
    """
    if torch.get_default_device().type == "meta":
        return
    try:
        needed, largest = parameter_bytes(policy_cls, config)
    except Exception as e:  # a build the meta device cannot run: the real build says why
        logger.debug("No memory estimate for %s: its meta-device build failed (%s).", policy_cls.__name__, e)
        return
    available = available_memory_bytes()
    if available is not None and needed > available:
        raise MemoryError(
            f"{policy_cls.__name__} with this config needs {needed / 2**30:.2f} GiB for its parameters alone "
            f"but {available / 2**30:.2f} GiB of memory is available (largest tensor: {largest}). Check the "
            "config's sizes (dim_model, dim_feedforward, n_layers, down_dims, ...)."
        )


class PreTrainedPolicy(nn.Module, abc.ABC):
    """Base of every policy; subclasses set ``config_class`` and ``name`` and build ``self.model``."""

    config_class: ClassVar[type[PreTrainedConfig] | None] = None
    name: ClassVar[str] = ""
    takes_instruction: ClassVar[bool] = False
    """Whether the policy reads a language instruction (``"task"``): the VLAs do."""
    optional_weight_keys: ClassVar[frozenset[str]] = frozenset()
    """State-dict keys this library saves that a checkpoint may lack (LeRobot's do): loading keeps the
    module's own value then."""
    ddp_find_unused_parameters: ClassVar[bool] = False
    """Whether some training steps leave parameters without a gradient (VQ-BeT's tokenizer phase leaves
    its GPT unused): DistributedDataParallel must then look for them each step."""
    ema: EMA | None = None
    """An exponential moving average of the weights, set by a policy whose config asks for one: the
    training loop folds each optimiser step into it (:meth:`update`), inference (``@inference_step``)
    and :meth:`save_pretrained` use the averaged weights, training keeps the live ones, and training
    checkpoints carry its state."""

    def __init__(
        self, config: PreTrainedConfig, dataset_stats: Mapping[str, Mapping[str, Any]] | None = None
    ):
        super().__init__()
        if self.config_class is not None and not isinstance(config, self.config_class):
            raise TypeError(
                f"{type(self).__name__} needs a {self.config_class.__name__}, got {type(config).__name__}."
            )
        config.validate_features()
        check_fits_in_memory(type(self), config)
        self.config = config
        # {name in the data/robot: name the policy knows}, e.g. {"observation.images.front":
        # "observation.images.camera1"}: applied to observations and batches, saved with the checkpoint.
        self.rename_map: dict[str, str] = {}
        norm_map = config.normalization_mapping
        if dataset_stats is not None:  # a policy about to be trained (checkpoints load their stats later)
            _warn_unnormalised_inputs(config, dataset_stats)
        self.normalize_inputs = Normalize(config.input_features, norm_map, dataset_stats)
        self.normalize_targets = Normalize(config.output_features, norm_map, dataset_stats)
        self.unnormalize_outputs = Unnormalize(config.output_features, norm_map, dataset_stats)
        if dataset_stats is not None:
            self._check_normalizers()

    # ---- what each policy implements ------------------------------------------------------------
    @abc.abstractmethod
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Training step on a raw batch -> ``{"loss": scalar tensor, ...float metrics}``."""

    @abc.abstractmethod
    def predict_action_chunk(self, observation: dict[str, Any]) -> Tensor:
        """Raw observation -> (B, T, action_dim) actions in robot units."""

    @abc.abstractmethod
    def select_action(self, observation: dict[str, Any]) -> PolicyAction:
        """Raw observation -> ``{"action": (B, action_dim)}`` for this control step."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget queued actions; call when an episode starts."""

    def get_optim_params(self) -> Any:
        return [p for p in self.parameters() if p.requires_grad]

    @classmethod
    def supports_rtc(cls) -> bool:
        """Whether ``predict_action_chunk`` takes ``inference_delay`` and ``prev_chunk_left_over``
        (real-time chunking, :mod:`lerobot.policies.rtc`; switched on by the config's ``rtc_config``)."""
        return False

    def extra_preprocessor_steps(self) -> list[dict[str, Any]]:
        """Steps this policy adds to ``policy_preprocessor.json`` after batching (a VLA's tokenizer)."""
        return []

    def update(self) -> None:
        """After each optimiser step (the ``PolicyWithUpdate`` protocol): fold the weights into the EMA."""
        if self.ema is not None:
            self.ema.update()

    def _submodules(self) -> tuple[nn.Module, ...]:
        """``tuple(self.modules())``, listed again only after a module was registered somewhere (a LoRA
        adapter, a swapped layer): walking the tree on every action was a visible share of a small policy's
        batch-1 step (``benchmarks/policies.py``, TD-MPC's prior)."""
        registrations, modules = self.__dict__.get("_submodule_list", (-1, ()))
        if registrations != _module_registrations:
            registrations, modules = _module_registrations, tuple(self.modules())
            self.__dict__["_submodule_list"] = (registrations, modules)
        return modules

    def inference_weights(self) -> contextlib.AbstractContextManager:
        """The weights to act and save with: the EMA average when there is one, else the live ones."""
        return self.ema.averaged() if self.ema is not None else contextlib.nullcontext()

    def __call__(self, batch: dict[str, Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """``forward`` in training mode; in eval mode the predicted action chunk as well.

        ``policy.eval(); policy(batch)["action"]`` is how the user guide inspects a model's output:
        in eval mode the result holds ``"action"`` (B, chunk, A) in robot units, from
        :meth:`predict_action_chunk`, plus ``forward``'s loss and metrics when the batch carries the
        ``"action"`` target. A validation loop that wants only the loss calls ``forward``.
        """
        if self.training:
            return super().__call__(batch, *args, **kwargs)
        if torch.compiler.is_exporting() or torch.jit.is_tracing():
            return {"action": self._traced_call(batch)}
        out = dict(super().__call__(batch, *args, **kwargs)) if "action" in batch else {}
        out["action"] = self.predict_action_chunk(batch)
        return out

    def predict(
        self,
        images: Mapping[str, Any] | None = None,
        states: Any = None,
        instruction: str | None = None,
        gripper: float | None = None,
        rename_map: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """The user guide's call: one robot observation in, one action out, in robot units.

        ``images`` maps camera names (``obs["cameras"]``: ``{"front": H x W x 3 uint8}``) to images;
        a camera ``name`` is the policy's ``observation.images.<name>`` unless ``rename_map`` (or the
        policy's own, from its checkpoint) maps it (``{"front": "camera1"}``, either spelling).
        ``states`` is the arm's joint vector (``obs["joint_positions"]``); when the policy's state
        has one more value, that is the gripper (``gripper=obs["gripper"]``). ``instruction`` is the
        task, for the policies that take one. Returns ``{"joint_positions": (n,), "gripper": float}``
        (no ``"gripper"`` when the action has no extra value), which ``robot.send_action`` accepts.
        """
        if instruction is not None and not self.takes_instruction:
            raise ValueError(
                f"{type(self).__name__} takes no language instruction; drop instruction=... or use a "
                "vision-language-action policy (smolvla, pi0, pi05)."
            )
        if self.takes_instruction and not instruction:
            raise ValueError(f"{type(self).__name__} needs instruction='...' (the task in words).")
        observation: dict[str, Any] = {}
        known = set(self.config.image_features)
        renames = {
            **self.rename_map,
            **{_as_image_key(k): _as_image_key(v) for k, v in (rename_map or {}).items()},
        }
        for name, image in (images or {}).items():
            key = _as_image_key(name)
            observation[renames.get(key, key)] = image
        unknown, matched = observation.keys() - known, observation.keys() & known
        if unknown or (known and not matched):
            raise ValueError(
                f"{type(self).__name__}: the cameras {sorted(observation)} do not match the policy's "
                f"{sorted(known)}. Map them with rename_map={{'<your camera>': '<policy camera>'}}."
            )
        state_ft = self.config.robot_state_feature
        if state_ft is not None:
            state = (
                np.asarray(states, dtype=np.float32).reshape(-1)
                if states is not None
                else np.zeros(0, np.float32)
            )
            need = state_ft.shape[0]
            if len(state) == need - 1 and gripper is not None:
                state = np.append(state, np.float32(gripper))
            if len(state) != need:
                hint = " (add gripper=obs['gripper'])" if len(state) == need - 1 else ""
                raise ValueError(
                    f"{type(self).__name__}: states has {len(state)} values; the policy's state has {need}{hint}."
                )
            observation[OBS_STATE] = state
        if instruction:
            observation["task"] = instruction
        action = np.asarray(self.select_action(observation)["action"].detach().cpu()).reshape(-1)
        n = len(np.asarray(states).reshape(-1)) if states is not None else len(action)
        if len(action) == n + 1:
            return {"joint_positions": action[:n], "gripper": float(action[n])}
        if len(action) == n:
            return {"joint_positions": action}
        raise ValueError(
            f"{type(self).__name__}: the action has {len(action)} values for {n} joints; expected {n} or {n + 1} "
            "(joints, then the gripper)."
        )

    # ---- export ---------------------------------------------------------------------------------
    def export_graph(
        self, *, camera_images: bool = True, draws: str = "input", history: bool = True
    ) -> PolicyGraph:
        """This policy as one stateless tensor function (see :mod:`lerobot.policies.export_graph`).

        Puts the policy in eval mode; the graph shares its modules. ``camera_images``: cameras as
        uint8 (B, H, W, C) rather than float (B, C, H, W) in [0, 1]; ``draws``: random draws as
        inputs (``"input"``) or drawn by the graph (``"inside"``); ``history``: a policy with an
        observation history takes (B, S, ...) per feature, or (``False``) the current frame only,
        standing for the whole history as right after ``reset()``.
        """
        if self.ema is not None and self.ema.shadow is not None:
            raise ValueError(
                f"This {type(self).__name__} is training an EMA of its weights: save_pretrained() (which "
                "saves the averaged weights) and export the saved checkpoint."
            )
        self.eval()
        self._check_normalizers()
        return self._export_graph(camera_images, draws, history).eval()

    def _export_graph(self, camera_images: bool, draws: str, history: bool) -> PolicyGraph:
        """Each policy builds its graph here (after ``export_graph`` put it in eval mode)."""
        raise NotImplementedError(
            f"{type(self).__name__} ({self.name!r}) has no export graph yet, so it exports to no format; "
            "lerobot.export.exportable_policies() lists the policies that do."
        )

    def inference_graph(self) -> PolicyGraph:
        """The graph ``policy.eval()(obs)`` amounts to: float cameras, the current frame, draws inside."""
        return self.export_graph(camera_images=False, draws="inside", history=False)

    def _traced_call(self, batch: Mapping[str, Any]) -> Tensor:
        """``policy.eval()(obs)["action"]`` while ``torch.export`` / ``torch.onnx.export`` / ``torch.jit.trace``
        records it: the stateless graph, so the recording holds stock tensor ops only (no action queue,
        no cached tables, no private kernels), and draws its noise itself as the eager policy does."""
        graph = self.inference_graph()
        obs = self.prepare_observation(batch)
        self.check_features(obs, self.config.input_features, time_steps=graph.history)
        sizes = {x.shape[0] for x in obs.values() if isinstance(x, Tensor)}
        if torch.compiler.is_exporting() and sizes == {1}:  # a symbolic batch size is no int
            warnings.warn(
                "torch.export specialises an example batch of 1: this export takes batch 1 only, whatever "
                "dynamic_axes say. Export with a batch of 2 for a dynamic batch axis (lerobot-export does).",
                stacklevel=3,
            )
        return graph(*[obs[spec.name] for spec in graph.inputs])

    def __prepare_scriptable__(self) -> nn.Module:
        """What ``torch.jit.script(policy)`` compiles: :class:`ScriptablePolicy` over this policy's graph."""
        return ScriptablePolicy(self.inference_graph())

    # ---- shared helpers -------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        for tensor in self.parameters():
            return tensor.device
        return torch.device(self.config.device or "cpu")

    def rename_observation(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        """``observation`` with the keys of ``rename_map`` renamed (others unchanged)."""
        if not self.rename_map:
            return dict(observation)
        return {self.rename_map.get(k, k): v for k, v in observation.items()}

    def prepare_observation(self, observation: Mapping[str, Any]) -> dict[str, Any]:
        """Arrays -> float tensors on the policy's device with a batch axis; uint8 HWC images -> CHW in [0, 1].

        Keys are renamed first (``rename_map``).
        """
        out = self.rename_observation(observation)
        device = self.device  # looked up once: it walks the modules to the first parameter
        for name, ft in self.config.input_features.items():
            if name not in out:
                continue
            x = torch.as_tensor(out[name])
            if ft.type is FeatureType.VISUAL:
                channels = ft.shape[0]
                if x.dtype == torch.uint8:
                    x = x.float() / 255.0
                if x.shape[-1] == channels and x.shape[-3] != channels:
                    x = x.movedim(-1, -3)
            x = x.to(device, torch.float32)
            if x.dim() == len(ft.shape):
                x = x.unsqueeze(0)
            out[name] = x
        return out

    def single_action_as_chunk(self, batch: dict[str, Any], chunk_size: int) -> dict[str, Any]:
        """A batch of one action per sample ``(B, A)`` as a chunk ``(B, chunk_size, A)`` of which only
        the first step counts (the rest is marked in ``action_is_pad``); other batches unchanged.

        That is what a ``LeRobotDataset`` opened without ``delta_timestamps`` gives, as in the
        guide's own training loop. Training on it supervises the first step of each chunk only,
        so it is said once, with the fix.
        """
        action, ft = batch.get("action"), self.config.output_features.get("action")
        if not isinstance(action, Tensor) or ft is None or tuple(action.shape[1:]) != tuple(ft.shape):
            return batch
        if not getattr(self, "_warned_single_action", False):
            self._warned_single_action = True
            warnings.warn(
                f"{type(self).__name__}: batch['action'] holds one action per sample {tuple(action.shape)}, "
                f"but the policy predicts chunks of {chunk_size}: only the first step of each chunk is "
                f"trained. Open the dataset with delta_timestamps={{'action': [i / fps for i in "
                f"range({chunk_size})]}} (lerobot-train does) to train whole chunks.",
                stacklevel=3,
            )
        steps = torch.arange(chunk_size, device=action.device)
        return {
            **batch,
            "action": action.unsqueeze(1).expand(-1, chunk_size, *action.shape[1:]),
            "action_is_pad": (steps > 0).expand(action.shape[0], chunk_size),
        }

    def check_features(
        self, batch: Mapping[str, Any], features: Mapping[str, PolicyFeature], time_steps: int | None = None
    ) -> None:
        """One clear error for a feature the config declares that is missing or has another shape.

        Each tensor must be ``(B, *feature.shape)``, or ``(B, time_steps, *feature.shape)`` when
        ``time_steps`` is given (observation history, action chunk).
        """
        for name, ft in features.items():
            lead = "B" if time_steps is None else f"B, {time_steps}"
            expected = ((time_steps,) if time_steps is not None else ()) + tuple(ft.shape)
            if name not in batch:
                raise ValueError(
                    f"{type(self).__name__}: {name!r} is missing; the config expects it with shape "
                    f"({lead}, {', '.join(map(str, ft.shape))}). Got keys {sorted(batch)}. Check that the "
                    "dataset/environment features match the policy's input_features."
                )
            shape = tuple(getattr(batch[name], "shape", ()))
            if shape[1:] != expected:
                raise ValueError(
                    f"{type(self).__name__}: {name!r} has shape {shape}; the config expects "
                    f"({lead}, {', '.join(map(str, ft.shape))}). Check that the dataset/environment "
                    "features match the policy's input_features/output_features."
                )

    def set_normalization_stats(self, stats: Mapping[str, Mapping[str, Any]], strict: bool = True) -> None:
        """Replace the normalisation statistics (``{feature: {"mean": ..., "std": ...}}``).

        ``strict=False`` sets what ``stats`` has and leaves the other features' for later (an online run
        knows the action range at once and the observations' only after its first env steps).
        """
        for module in (self.normalize_inputs, self.normalize_targets, self.unnormalize_outputs):
            module.load_stats(stats, strict=strict)
        if strict:
            self._check_normalizers()

    def unset_input_stats(self) -> list[str]:
        """Input features the config normalises whose statistics have not been set."""
        have = {name.rsplit(".", 1)[0] for name in self.normalize_inputs.flat_stats()}
        return [
            n for n in self.config.input_features if self.normalize_inputs.feature_stats(n) and n not in have
        ]

    def _check_normalizers(self) -> None:
        """Settle now which statistics are set: that check reads the buffers' values, which an export that
        starts on a freshly loaded policy (``torch.onnx.export(policy, ...)``) cannot do inside its trace."""
        for module in (self.normalize_inputs, self.normalize_targets, self.unnormalize_outputs):
            module._check_ready()

    def _weight_keys(self) -> set[str]:
        return {k for k in self.state_dict() if not k.startswith(NORMALIZER_PREFIXES)}

    # ---- save -----------------------------------------------------------------------------------
    def save_pretrained(
        self,
        save_directory: str | Path,
        *,
        normalizer_layout: str = "processors",
        weights: Mapping[str, Tensor] | None = None,
        adapter_only: bool = False,
    ) -> Path:
        """Write ``config.json``, ``model.safetensors`` and the normaliser statistics.

        ``normalizer_layout="processors"`` (default) writes the statistics as LeRobot 0.6 processor
        files; ``"in_model"`` keeps them as ``normalize_inputs.buffer_*`` tensors inside
        ``model.safetensors`` (the pre-0.4 LeRobot layout) and writes no processor files. With an EMA
        the averaged weights are the ones saved. ``weights``: a state dict gathered beforehand (from
        FSDP shards) to save instead of this module's own.

        A policy with LoRA adapters (:mod:`lerobot.policies.peft_adapters`) also writes peft's adapter
        files. ``adapter_only=True`` writes those instead of ``model.safetensors``, as LeRobot 0.6.1
        saves a PEFT run: a few MB in place of the whole model, loadable on top of the base checkpoint
        that ``adapter_config.json`` names.
        """
        if normalizer_layout not in ("processors", "in_model"):
            raise ValueError(
                f"normalizer_layout must be 'processors' or 'in_model', got {normalizer_layout!r}."
            )
        wrapped = peft_adapters.is_wrapped(self)
        if adapter_only and (not wrapped or normalizer_layout != "processors"):
            raise ValueError(
                "adapter_only=True saves LoRA adapters: the policy has none (add them with --peft.* or "
                "peft_adapters.wrap_with_peft)"
                if not wrapped
                else "adapter_only=True keeps the statistics in processor files: use normalizer_layout='processors'."
            )
        if adapter_only and not peft_adapters.base_model_of(self):
            raise ValueError(
                "adapter_only=True: the policy names no base checkpoint for its adapters (config.pretrained_path "
                "is empty); set it to the checkpoint the adapters were added to, or save the whole model."
            )
        save_directory = Path(save_directory)
        save_directory.mkdir(parents=True, exist_ok=True)
        # LeRobot reads use_peft=true as "adapters only, on the base in pretrained_path".
        written = self.config.use_peft, self.config.pretrained_path
        self.config.use_peft = adapter_only
        if adapter_only:
            self.config.pretrained_path = peft_adapters.base_model_of(self)
        try:
            self.config.save_pretrained(save_directory)
        finally:
            self.config.use_peft, self.config.pretrained_path = written
        if not adapter_only:
            self._save_weights(save_directory, normalizer_layout, weights)
        if wrapped:  # the live adapters, from which a resumed run continues exactly
            peft_adapters.save_adapter(self, save_directory)
        if normalizer_layout == "processors":
            stats = {
                **self.normalize_inputs.flat_stats(),
                **self.normalize_targets.flat_stats(),
                **self.unnormalize_outputs.flat_stats(),
            }
            save_processor_files(
                save_directory,
                self.config.input_features,
                self.config.output_features,
                self.config.normalization_mapping,
                stats,
                str(self.config.device),
                extra_steps=self.extra_preprocessor_steps(),
                rename_map=self.rename_map,
            )
        return save_directory

    def _save_weights(
        self, save_directory: Path, normalizer_layout: str, weights: Mapping[str, Tensor] | None
    ) -> None:
        if weights is None:
            with self.inference_weights():
                wrapped = peft_adapters.is_wrapped(self)
                weights = peft_adapters.merged_state_dict(self) if wrapped else self.state_dict()
        state, seen = {}, set()
        for key, tensor in weights.items():
            if normalizer_layout == "processors" and key.startswith(NORMALIZER_PREFIXES):
                continue
            tensor = tensor.detach().cpu().contiguous()
            if tensor.data_ptr() in seen:  # safetensors refuses shared storage
                tensor = tensor.clone()
            seen.add(tensor.data_ptr())
            state[key] = tensor
        save_file(state, str(save_directory / WEIGHTS_NAME), metadata={"format": "pt"})

    # ---- load -----------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls,
        pretrained_name_or_path: str | Path,
        *,
        config: PreTrainedConfig | None = None,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        force_download: bool = False,
        token: str | bool | None = None,
        local_files_only: bool | None = None,
        strict: bool = True,
        dataset_stats: Mapping[str, Mapping[str, Any]] | None = None,
        base_model: str | Path | None = None,
        **config_overrides: Any,
    ) -> PreTrainedPolicy:
        """Load a checkpoint folder or Hub repo id (ours, LeRobot 0.6, or the older in-model-stats layout).

        ``config_overrides`` replace config fields (``device="cpu"``, ``n_action_steps=10``...).
        With ``strict`` (default) weights that do not match the model exactly raise
        :class:`WeightsMismatchError` naming the missing and unexpected keys.

        A LoRA checkpoint that holds only adapters (``adapter_config.json`` + ``adapter_model.safetensors``,
        no ``model.safetensors``: what LeRobot 0.6.1's PEFT runs write) loads as its base checkpoint with
        the adapters added (:func:`lerobot.policies.peft_adapters.apply_adapter`); its config, processor
        statistics and rename map are the adapter folder's. The base is the one ``adapter_config.json``
        names (``base_model_name_or_path``, else ``config.json``'s ``pretrained_path``): a folder inside
        the checkpoint, a Hub id, or -- for a checkpoint on this machine, not one from the Hub -- a local
        path, as LeRobot writes the ``--policy.path`` its run started from. ``base_model`` (a folder or
        Hub id) names the base instead; given with a folder that also holds ``model.safetensors`` (ours),
        the adapters are added to that base rather than loading the folded weights.
        """
        local = Path(pretrained_name_or_path).expanduser().is_dir()
        hub = {"cache_dir": cache_dir, "force_download": force_download, "token": token}
        folder = resolve_checkpoint_dir(
            pretrained_name_or_path, revision=revision, local_files_only=local_files_only, **hub
        )
        if config is None:
            config = (cls.config_class or PreTrainedConfig).from_pretrained(folder, **config_overrides)
        elif config_overrides:
            config = dataclasses.replace(config, **config_overrides)
        policy_cls = cls
        if cls.config_class is None or not isinstance(config, cls.config_class):
            from lerobot.policies.factory import get_policy_class

            policy_cls = get_policy_class(config.type)
        adapters = peft_adapters.holds_adapter(folder) and (
            base_model is not None or not (folder / WEIGHTS_NAME).is_file()
        )
        if base_model is not None and not adapters:
            raise ValueError(
                f"base_model={str(base_model)!r} is the base of a LoRA adapter checkpoint, but {folder} holds no "
                f"{peft_adapters.ADAPTER_CONFIG_NAME}: load it without base_model."
            )
        base, base_name = folder, None
        if adapters:
            base, base_name = _adapter_base(folder, local, base_model, local_files_only, hub)
        # Relative backbone/tokenizer names resolve where the weights come from: the base for adapters.
        with skip_pretrained_backbone_weights(), _loading_from(base):
            policy = policy_cls(config)
        policy._load_checkpoint(base, strict=strict, stats_folder=folder)
        if adapters:
            peft_adapters.apply_adapter(policy, folder, base_name)
        policy._loaded_from = str(folder) if local else str(pretrained_name_or_path)
        if dataset_stats is not None:
            policy.set_normalization_stats(dataset_stats)
        with (
            warnings.catch_warnings()
        ):  # _load_checkpoint has said which statistics are missing, with the fix
            warnings.simplefilter("ignore")
            policy._check_normalizers()
        policy.to(config.device)
        policy.eval()
        return policy

    def _load_checkpoint(self, folder: Path, strict: bool = True, stats_folder: Path | None = None) -> None:
        """Weights from ``folder``; statistics and rename map from ``stats_folder`` (default ``folder``)."""
        weights_path = folder / WEIGHTS_NAME
        if not weights_path.is_file():
            raise FileNotFoundError(f"No {WEIGHTS_NAME} in {folder}: not a policy checkpoint folder.")
        state = load_file(str(weights_path))
        weights = {k: v for k, v in state.items() if not k.startswith(NORMALIZER_PREFIXES)}
        in_model_stats = {k: v for k, v in state.items() if k.startswith(NORMALIZER_PREFIXES)}

        expected = self._weight_keys()
        missing = sorted(expected - weights.keys() - self.optional_weight_keys)
        unexpected = sorted(weights.keys() - expected)
        if missing or unexpected:
            message = (
                f"{weights_path} does not match {type(self).__name__}({self.config.type!r} config): "
                f"{len(missing)} missing keys {_preview(missing)}, {len(unexpected)} unexpected keys "
                f"{_preview(unexpected)}. Check that config.json belongs to these weights."
            )
            if strict:
                raise WeightsMismatchError(message)
            warnings.warn(message, UserWarning, stacklevel=3)
        own = self.state_dict()
        bad_shapes = [
            f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
            for k, v in weights.items()
            if k in own and own[k].shape != v.shape
        ]
        if bad_shapes:
            raise WeightsMismatchError(f"{weights_path}: tensors of the wrong shape: {_preview(bad_shapes)}.")
        self.load_state_dict(weights, strict=False)
        stats_folder = folder if stats_folder is None else stats_folder
        self._load_normalization(stats_folder, in_model_stats)
        self.rename_map = load_rename_map(stats_folder)

    def _load_normalization(self, folder: Path, in_model_stats: dict[str, Tensor]) -> None:
        processors = load_processor_stats(folder)
        if processors is not None:
            pre, post = processors
            ins, outs = list(self.config.input_features), list(self.config.output_features)
            missing = self.normalize_inputs.load_stats(split_flat_stats(pre, ins), strict=False)
            missing += self.normalize_targets.load_stats(split_flat_stats(pre, outs), strict=False)
            missing += self.unnormalize_outputs.load_stats(split_flat_stats(post, outs), strict=False)
        else:
            wanted = {k for k in self.state_dict() if k.startswith(NORMALIZER_PREFIXES)}
            self.load_state_dict({k: v for k, v in in_model_stats.items() if k in wanted}, strict=False)
            missing = sorted(wanted - in_model_stats.keys())
            ignored = sorted(in_model_stats.keys() - wanted)
            if ignored:
                warnings.warn(
                    f"Ignoring normaliser tensors this config does not use: {_preview(ignored)}.",
                    stacklevel=4,
                )
            for module in (self.normalize_inputs, self.normalize_targets, self.unnormalize_outputs):
                module._ready = False
        if missing:
            warnings.warn(
                f"{folder} has no normalisation statistics for {_preview(sorted(set(missing)))}; pass "
                "dataset_stats=... to from_pretrained (or call set_normalization_stats) before using the policy.",
                UserWarning,
                stacklevel=4,
            )


def _as_image_key(name: str) -> str:
    """A camera name (``front``) as its feature key (``observation.images.front``); keys stay as they are."""
    return name if name.startswith("observation.") else f"observation.images.{name}"


def _preview(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return f"[{shown}{', ...' if len(items) > limit else ''}]"


def _adapter_base(
    folder: Path,
    local: bool,
    base_model: str | Path | None,
    local_files_only: bool | None,
    hub: dict[str, Any],
) -> tuple[Path, str]:
    """(base checkpoint folder, its name to record) for the LoRA adapter checkpoint ``folder``.

    The user's ``base_model`` is any folder or Hub id. A name from the checkpoint's own files is a
    folder inside it, a Hub id, or an absolute local path when the checkpoint itself is a local folder
    (a downloaded checkpoint must not make us read the machine's other files).
    """
    if base_model is not None:
        return resolve_checkpoint_dir(base_model, local_files_only=local_files_only, **hub), str(base_model)
    name = peft_adapters.base_model_name(folder)
    fix = (
        f"put the base checkpoint (config.json, model.safetensors) in a folder inside {folder} and name that "
        f"folder in {peft_adapters.ADAPTER_CONFIG_NAME}'s base_model_name_or_path, or pass base_model=<folder or "
        "Hub id> to from_pretrained"
    )
    if not name:
        raise CheckpointError(
            f"{folder} holds LoRA adapters only ({peft_adapters.ADAPTER_CONFIG_NAME}, no {WEIGHTS_NAME}) and "
            f"names no base checkpoint: {fix}."
        )
    path = Path(name).expanduser()
    if path.is_absolute():
        if not local:
            raise CheckpointError(
                f"{folder} (downloaded) names its base checkpoint by the local path {name!r}, which is not "
                f"followed: a downloaded checkpoint may name a Hub id or a folder inside itself. Instead, {fix}."
            )
        if not (path / CONFIG_NAME).is_file():
            raise FileNotFoundError(
                f"{folder} holds LoRA adapters for the base checkpoint {name!r}, which is not there (no "
                f"{CONFIG_NAME}). Put that checkpoint back at {path}, or {fix}."
            )
        return path, str(path)
    try:
        inside = resolve_inside(folder, name, what="checkpoint", error=CheckpointError)
    except CheckpointError as e:
        raise CheckpointError(
            f"{folder} names its base checkpoint {name!r}, which is not followed ({e}). {fix}."
        ) from None
    if inside.is_dir():
        return inside, str(inside.resolve())
    if not is_repo_id(name):
        raise FileNotFoundError(
            f"{folder} names its base checkpoint {name!r}: not a folder inside it, nor a Hub id. Instead, {fix}."
        )
    try:
        return resolve_checkpoint_dir(name, local_files_only=local_files_only, **hub), name
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{folder} holds LoRA adapters for the base checkpoint {name!r}, which is not available ({e}). "
            f"Download it once while online (`hf download {name}`), or {fix}."
        ) from e


def resolve_checkpoint_dir(
    pretrained_name_or_path: str | Path,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    force_download: bool = False,
    token: str | bool | None = None,
    local_files_only: bool | None = None,
) -> Path:
    """A local folder as is; otherwise a Hub repo id, from the local cache or downloaded.

    A training run's output folder (``lerobot-train --output_dir=./models/run``, as the guide then
    passes it to ``--policy.path``) stands for its last checkpoint,
    ``checkpoints/last/pretrained_model``. Offline (``HF_HUB_OFFLINE=1`` or
    ``local_files_only=True``) only the Hub cache is read; a repo that is not cached gets one error
    that says so.
    """
    path = Path(pretrained_name_or_path).expanduser()
    if path.is_dir():
        last = path / "checkpoints" / "last" / "pretrained_model"
        if not (path / CONFIG_NAME).is_file() and (last / CONFIG_NAME).is_file():
            return last
        return path
    name = str(pretrained_name_or_path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise FileNotFoundError(f"{name!r} is not a checkpoint folder (no such directory).")
    offline = hub_offline() if local_files_only is None else local_files_only
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id=name,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force_download,
            token=token,
            local_files_only=offline,
            allow_patterns=["*.json", "*.safetensors", "*.md"],
        )
    except Exception as e:  # huggingface_hub raises several kinds: not found, offline, HTTP, invalid id
        where = "in the local Hugging Face cache (offline mode)" if offline else "on the Hugging Face Hub"
        raise FileNotFoundError(
            f"{name!r} is neither a local folder nor a policy found {where}: {type(e).__name__}: {e}"
        ) from e
    if not (Path(folder) / CONFIG_NAME).is_file():
        raise FileNotFoundError(f"Hub repo {name!r} has no {CONFIG_NAME}: not a policy checkpoint.")
    return Path(folder)
