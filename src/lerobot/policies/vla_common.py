"""Pieces every vision-language-action policy (SmolVLA, π0, π0.5) shares.

* Where a backbone or tokenizer comes from: :func:`resolve_pretrained_source` turns a config's
  ``vlm_model_name`` / ``tokenizer_name`` into a local folder or a Hub id, :func:`load_tokenizer`,
  :func:`load_processor` and :func:`load_backbone_config` load them with ``transformers`` (never
  with remote code). A relative name inside a checkpoint's config resolves against the checkpoint
  folder and never outside it; offline without the files, one error says what is missing and where
  to put it.
* Inputs: :func:`resize_with_pad` (aspect-preserving resize, then zero padding to the model's size;
  SmolVLA pads left/top, π0 on both sides), :func:`scale_to_symmetric` ([0, 1] -> [-1, 1]),
  :func:`pad_vector` (state and action zero-padded to ``max_state_dim`` / ``max_action_dim``),
  :func:`tokenize_tasks` (the task string with a newline appended, padded, with its attention mask).
* Flow matching (Lipman et al. 2023; π0, Black et al. 2024): the noisy sample at time ``t`` is
  ``x_t = t * noise + (1 - t) * action`` and the network regresses the velocity
  ``u = noise - action`` (:func:`flow_matching_target`); acting integrates ``dx/dt = v(x, t)`` from
  pure noise at ``t = 1`` down to ``t = 0`` with Euler steps (:func:`euler_sample`). Training times
  come from ``Beta(1.5, 1)`` scaled into ``[0.001, 1]`` (:func:`sample_flow_time`), which puts more
  weight on the noisy end, and the network sees ``t`` through :func:`sinusoidal_time_embedding`.
* Attention: a prefix-LM mask from per-token "starts a new block" flags (:func:`block_attention_mask`).
* Export (:class:`VLAGraph`): raw observation + instruction token ids/mask + the flow's initial noise
  -> the action chunk in robot units; the prefix runs once, then ``num_steps`` Euler steps, unrolled.
  Tokenisation stays outside the graph; :func:`instruction_text` is the text each task becomes.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from lerobot.configs.types import ACTION, FeatureType, is_empty_camera_slot
from lerobot.datasets.hub import hub_offline
from lerobot.datasets.paths import is_repo_id, resolve_inside
from lerobot.policies.config import CheckpointError, PreTrainedConfig
from lerobot.policies.export_graph import GraphInput, PolicyGraph
from lerobot.policies.pretrained import loading_checkpoint_dir
from lerobot.policies.rtc.modeling_rtc import RTCGuide, flow_sample, make_guide, outside_inference_mode

LANG_TOKENS = "observation.language.tokens"
LANG_MASK = "observation.language.attention_mask"

__all__ = [
    "LANG_MASK",
    "LANG_TOKENS",
    "MissingPretrainedFilesError",
    "VLAGraph",
    "block_attention_mask",
    "checkpoint_dir_of",
    "euler_sample",
    "flow_matching_target",
    "flow_sample_with_guide",
    "instruction_text",
    "load_backbone_config",
    "load_pretrained_model",
    "load_processor",
    "load_tokenizer",
    "pad_vector",
    "resize_with_pad",
    "resolve_pretrained_source",
    "sample_flow_time",
    "scale_to_symmetric",
    "sinusoidal_time_embedding",
    "tokenize_tasks",
    "vla_rtc_guide",
]


class MissingPretrainedFilesError(FileNotFoundError):
    """A backbone, processor or tokenizer could not be found locally and could not be downloaded."""


# ---- where backbones and tokenizers come from --------------------------------------------------------
def resolve_pretrained_source(name: str | os.PathLike, checkpoint_dir: str | Path | None = None) -> str:
    """A local folder (as a string) or a Hub id for a backbone/tokenizer ``name`` taken from a config.

    With ``checkpoint_dir`` (the name came from that checkpoint's files) a relative name that exists
    inside the checkpoint is that folder; absolute names, ``~``, ``..`` and links leading out are
    refused, since a downloaded checkpoint must not make us read arbitrary files. A name that is not
    a folder there is a Hub id (``HuggingFaceTB/SmolVLM2-500M-Video-Instruct``). Without
    ``checkpoint_dir`` (the user typed the name) an existing local folder is used as is.
    """
    text = os.fspath(name)
    if not text:
        raise ValueError("An empty backbone/tokenizer name was given; name a local folder or a Hub id.")
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        try:
            inside = resolve_inside(checkpoint_dir, text, what="checkpoint", error=CheckpointError)
        except CheckpointError as e:
            raise CheckpointError(
                f"{checkpoint_dir}: the checkpoint names the backbone/tokenizer {text!r}, which is not a folder "
                "inside it nor a Hub id, and is not followed. Put the folder inside the checkpoint, or pass the "
                f"name yourself (e.g. --policy.vlm_model_name=<folder or Hub id>). ({e})"
            ) from None
        if inside.is_dir():
            return str(inside)
    else:
        local = Path(text).expanduser()
        if local.is_dir():
            return str(local)
    if not is_repo_id(text):
        where = f" inside {checkpoint_dir}" if checkpoint_dir is not None else ""
        raise MissingPretrainedFilesError(
            f"{text!r} is neither a folder{where} nor a Hugging Face Hub id ('org/name'). Name a folder that holds "
            "the backbone's config.json and tokenizer files, or a Hub id."
        )
    return text


def checkpoint_dir_of(config: PreTrainedConfig) -> Path | None:
    """The checkpoint folder relative names in ``config`` resolve against, or None (the user's names).

    That is the folder ``from_pretrained`` is loading, else ``config.pretrained_path`` when it is a
    local folder (``lerobot-train --policy.path=<folder>``).
    """
    folder = loading_checkpoint_dir()
    if folder is not None:
        return folder
    if config.pretrained_path and Path(config.pretrained_path).expanduser().is_dir():
        from lerobot.policies.pretrained import resolve_checkpoint_dir

        return resolve_checkpoint_dir(config.pretrained_path)
    return None


def _from_pretrained(loader: Callable[..., Any], what: str, name: str, checkpoint_dir: Path | None) -> Any:
    """Call ``loader(source)`` with no remote code, turning "not found" into one clear error."""
    source = resolve_pretrained_source(name, checkpoint_dir)
    local = Path(source).is_dir()
    offline = hub_offline()
    try:
        return loader(source, trust_remote_code=False, local_files_only=offline and not local)
    except (OSError, ValueError) as e:
        if local:
            raise MissingPretrainedFilesError(
                f"The {what} could not be loaded from the folder {source}: {e}. The folder needs the files "
                "transformers' save_pretrained writes (config.json; tokenizer.json and tokenizer_config.json for "
                "a tokenizer; processor_config.json for a processor)."
            ) from e
        hint = (
            "The Hub is offline (HF_HUB_OFFLINE=1) and it is not in the local cache: download it once with "
            f"`hf download {source}` while online, or "
            if offline
            else "It could not be downloaded: "
        )
        raise MissingPretrainedFilesError(
            f"The {what} {source!r} is not available. {hint}put its files (config.json, tokenizer.json, "
            "tokenizer_config.json, processor_config.json) in a folder and pass that folder instead "
            f"(inside a checkpoint, a folder name relative to it). ({type(e).__name__}: {e})"
        ) from e


def load_tokenizer(name: str | os.PathLike, checkpoint_dir: str | Path | None = None) -> Any:
    """A ``transformers`` tokenizer from a folder or Hub id (see :func:`resolve_pretrained_source`)."""
    from transformers import AutoTokenizer

    return _from_pretrained(
        AutoTokenizer.from_pretrained, "tokenizer", os.fspath(name), _as_path(checkpoint_dir)
    )


def load_processor(name: str | os.PathLike, checkpoint_dir: str | Path | None = None) -> Any:
    """A ``transformers`` multimodal processor (image processor + tokenizer) from a folder or Hub id."""
    from transformers import AutoProcessor

    return _from_pretrained(
        AutoProcessor.from_pretrained, "processor", os.fspath(name), _as_path(checkpoint_dir)
    )


def load_backbone_config(name: str | os.PathLike, checkpoint_dir: str | Path | None = None) -> Any:
    """A ``transformers`` model config (``config.json``) from a folder or Hub id; no weights are read."""
    from transformers import AutoConfig

    return _from_pretrained(
        AutoConfig.from_pretrained, "backbone config", os.fspath(name), _as_path(checkpoint_dir)
    )


def load_pretrained_model(
    model_cls: Any, name: str | os.PathLike, checkpoint_dir: str | Path | None = None, **kwargs: Any
) -> Any:
    """``model_cls.from_pretrained`` (a ``transformers`` class) from a folder or Hub id, with its weights."""
    return _from_pretrained(
        lambda source, **kw: model_cls.from_pretrained(source, **kw, **kwargs),
        f"{model_cls.__name__} weights",
        os.fspath(name),
        _as_path(checkpoint_dir),
    )


def _as_path(folder: str | Path | None) -> Path | None:
    return None if folder is None else Path(folder)


# ---- inputs --------------------------------------------------------------------------------------------
def resize_with_pad(
    images: Tensor,
    height: int,
    width: int,
    pad: Literal["left_top", "center"] = "left_top",
    pad_value: float = 0.0,
) -> Tensor:
    """``(B, C, H, W)`` images resized (bilinear) to fit ``height x width`` keeping their aspect, then padded.

    The larger of the two ratios fixes the scale, so one side fills the target and the other is
    padded with ``pad_value``: on the left/top (``"left_top"``, SmolVLA) or split evenly with the
    odd pixel at the right/bottom (``"center"``, π0). The models were pretrained on padded, not
    stretched, images.
    """
    if images.dim() != 4:
        raise ValueError(f"resize_with_pad expects (B, C, H, W) images, got shape {tuple(images.shape)}.")
    cur_h, cur_w = images.shape[-2:]
    ratio = max(cur_w / width, cur_h / height)
    new_h, new_w = int(cur_h / ratio), int(cur_w / ratio)
    resized = F.interpolate(images, size=(new_h, new_w), mode="bilinear", align_corners=False)
    pad_h, pad_w = max(0, height - new_h), max(0, width - new_w)
    if pad == "left_top":
        padding = (pad_w, 0, pad_h, 0)
    elif pad == "center":
        padding = (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2)
    else:
        raise ValueError(f"pad must be 'left_top' or 'center', got {pad!r}.")
    return F.pad(resized, padding, value=pad_value)


def scale_to_symmetric(images: Tensor) -> Tensor:
    """Images in [0, 1] -> [-1, 1], the range SigLIP-style vision towers were trained on."""
    return images * 2.0 - 1.0


def pad_vector(vector: Tensor, dim: int) -> Tensor:
    """Zero-pad the last axis of ``vector`` to ``dim`` (state/action to ``max_state_dim``/``max_action_dim``).

    One network serves robots with different numbers of joints; the padded entries are zero in the
    input and excluded from the loss.
    """
    size = vector.shape[-1]
    if size > dim:
        raise ValueError(
            f"A vector of {size} values does not fit max dim {dim}: raise max_state_dim/max_action_dim to at least "
            f"{size}."
        )
    if size == dim:
        return vector
    return F.pad(vector, (0, dim - size))


def tokenize_tasks(
    tokenizer: Any,
    tasks: str | Sequence[str],
    max_length: int,
    padding: Literal["longest", "max_length"] = "longest",
    padding_side: Literal["left", "right"] = "right",
    device: torch.device | str | None = None,
) -> tuple[Tensor, Tensor]:
    """``(token ids (B, L) long, attention mask (B, L) bool)`` of each task with ``"\\n"`` appended.

    The newline ends the instruction the way the backbones saw prompts in pretraining (SmolVLA and
    π0 both append it). ``padding="longest"`` pads to the batch's longest (at most ``max_length``),
    ``"max_length"`` always to ``max_length``; longer tasks are truncated.
    """
    if isinstance(tasks, str):
        tasks = [tasks]
    tasks = list(tasks)
    if not tasks or not all(isinstance(t, str) for t in tasks):
        raise TypeError(f"tasks must be a string or a list of strings, got {tasks!r}.")
    texts = [t if t.endswith("\n") else t + "\n" for t in tasks]
    out = tokenizer(
        texts,
        max_length=max_length,
        padding=padding,
        truncation=True,
        padding_side=padding_side,
        return_tensors="pt",
    )
    ids, mask = out["input_ids"].long(), out["attention_mask"].bool()
    if device is not None:
        ids, mask = ids.to(device), mask.to(device)
    return ids, mask


TASK_CLEANUPS = ("none", "strip_underscores_newlines")


def instruction_text(prompt: str, cleanup: str, task: str) -> str:
    """The text a task becomes before tokenisation: ``prompt`` with ``{task}`` filled in.

    ``cleanup="strip_underscores_newlines"`` (π0.5) strips the task and writes ``_`` and newlines as
    spaces; ``"none"`` keeps it, except that a task already ending in the prompt's trailing newline
    does not get a second one (SmolVLA and π0: ``prompt="{task}\n"``, as :func:`tokenize_tasks`).
    """
    if cleanup == "strip_underscores_newlines":
        task = task.strip().replace("_", " ").replace("\n", " ")
    elif cleanup != "none":
        raise ValueError(f"Unknown task cleanup {cleanup!r}; known: {TASK_CLEANUPS}.")
    elif prompt.endswith("\n") and task.endswith("\n"):
        task = task[:-1]
    return prompt.replace("{task}", task)


# ---- flow matching ---------------------------------------------------------------------------------------
def sinusoidal_time_embedding(time: Tensor, dim: int, min_period: float, max_period: float) -> Tensor:
    """``(B,)`` times -> ``(B, dim)`` embeddings ``[sin(2π t / p_i), cos(2π t / p_i)]``.

    The periods ``p_i`` are geometric from ``min_period`` to ``max_period`` over ``dim / 2``
    frequencies, so both fine and coarse differences in ``t`` are visible. Computed in float64
    (float32 on MPS, which has none) and returned in float32.
    """
    if dim % 2:
        raise ValueError(f"The time embedding needs an even dimension, got {dim}.")
    if time.dim() != 1:
        raise ValueError(f"time must have shape (B,), got {tuple(time.shape)}.")
    dtype = torch.float32 if time.device.type == "mps" else torch.float64
    fraction = torch.linspace(0.0, 1.0, dim // 2, dtype=dtype, device=time.device)
    period = min_period * (max_period / min_period) ** fraction
    angle = (2 * math.pi / period)[None, :] * time.to(dtype)[:, None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1).float()


def sample_flow_time(
    batch_size: int, device: torch.device | str, generator: torch.Generator | None = None
) -> Tensor:
    """Training times ``t ~ 0.999 * Beta(1.5, 1) + 0.001``, shape ``(B,)`` (never exactly 0)."""
    beta = torch.distributions.Beta(torch.tensor(1.5), torch.tensor(1.0))
    if generator is None:
        t = beta.sample((batch_size,))
    else:  # Beta(a, 1) is U^(1/a): reproducible with an explicit generator
        t = torch.rand(batch_size, generator=generator) ** (1 / 1.5)
    return (t * 0.999 + 0.001).to(device=device, dtype=torch.float32)


def flow_matching_target(actions: Tensor, noise: Tensor, time: Tensor) -> tuple[Tensor, Tensor]:
    """``(x_t, u_t)``: the noisy actions at ``time`` (B,) and the velocity the network must predict."""
    t = time[:, None, None].to(actions.dtype)
    return t * noise + (1 - t) * actions, noise - actions


def euler_sample(velocity: Callable[[Tensor, Tensor], Tensor], noise: Tensor, num_steps: int) -> Tensor:
    """Integrate ``dx/dt = velocity(x, t)`` from ``x = noise`` at ``t = 1`` to ``t = 0`` in ``num_steps`` steps.

    ``velocity`` gets ``x`` and the current time as a ``(B,)`` tensor; each step is
    ``x <- x - velocity(x, t) / num_steps``.
    """
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}.")
    dt = -1.0 / num_steps
    x = noise
    for step in range(num_steps):
        t = torch.full((noise.shape[0],), 1.0 + step * dt, dtype=torch.float32, device=noise.device)
        x = x + dt * velocity(x, t)
    return x


def flow_sample_with_guide(
    velocity: Callable[[Tensor, Tensor, Any], Tensor],
    noise: Tensor,
    num_steps: int,
    guide: RTCGuide | None,
    conditioning: Any,
) -> Tensor:
    """A VLA's Euler sampling, real-time-chunking-guided when ``guide`` is given.

    ``velocity(x_t, t, conditioning)`` reads the chunk's cached prefix (keys/values, masks, state):
    computed once per chunk under inference mode, it leaves that mode once (the guidance
    differentiates through the expert only). Without a guide this is :func:`euler_sample`, unchanged.
    """
    if guide is None:
        return euler_sample(lambda x, t: velocity(x, t, conditioning), noise, num_steps)
    conditioning = outside_inference_mode(conditioning)
    return flow_sample(lambda x, t: velocity(x, t, conditioning), noise, num_steps, guide)


def vla_rtc_guide(policy: Any, prev_chunk_left_over: Any, inference_delay: int | None) -> RTCGuide | None:
    """The previous chunk's remaining actions (robot units, ``(P, A)`` or ``(B, P, A)``) as the guide of
    a VLA's next chunk: normalised, padded to ``max_action_dim`` (padding coordinates unguided).
    None (plain sampling) when there is no previous chunk or ``rtc_config`` is off."""
    config = policy.config
    if prev_chunk_left_over is None or config.rtc_config is None or not config.rtc_config.enabled:
        return None
    prefix = torch.as_tensor(prev_chunk_left_over, dtype=torch.float32, device=policy.device)
    prefix = prefix.unsqueeze(0) if prefix.dim() == 2 else prefix
    action_dim = config.action_feature.shape[0]
    if prefix.dim() != 3 or prefix.shape[-1] != action_dim:
        raise ValueError(
            f"prev_chunk_left_over must be (P, {action_dim}) or (B, P, {action_dim}) actions in robot units, "
            f"got shape {tuple(prefix.shape)}."
        )
    prefix = pad_vector(policy.normalize_targets({ACTION: prefix})[ACTION], config.max_action_dim)
    return make_guide(config, prefix, inference_delay, config.chunk_size, action_dims=action_dim)


def block_attention_mask(pad_mask: Tensor, new_block: Tensor) -> Tensor:
    """``(B, L, L)`` bool: query i may attend key j.

    ``new_block[b, j]`` true starts a new block at token j: a token sees every non-padded token of
    its own and earlier blocks, never later ones. All-zero flags give full attention, all-one
    flags causal attention; π0's prefix (images + text, one block) then state, then actions is a mix.
    """
    blocks = torch.cumsum(new_block.long(), dim=1)
    allowed = blocks[:, None, :] <= blocks[:, :, None]
    return allowed & (pad_mask[:, None, :] & pad_mask[:, :, None])


# ---- export ------------------------------------------------------------------------------------------------
class VLAGraph(PolicyGraph):
    """A VLA's acting as one tensor function (see :mod:`lerobot.policies.export_graph`)::

        (every camera uint8 (B, H, W, C), observation.state raw (B, D),
         instruction token ids int64 (B, L), its attention mask int64 (B, L),
         noise (B, chunk_size, max_action_dim): the flow's start, normalised and padded)
            -> actions (B, chunk_size, action_dim) in robot units

    The network runs the prefix (cameras, instruction, state) through the VLM once, caching its keys and
    values, then ``num_steps`` Euler steps of the expert, unrolled. The policy's ``_chunk_from_tokens``
    is that computation (the same code ``predict_action_chunk`` runs after tokenising). Padding camera
    slots are filled inside, as the eager policy fills them for a robot without those cameras.
    """

    formats = ("onnx", "torch_export")
    format_notes = (
        "torchscript's torch.jit.trace stops inside transformers' vision tower (its attention-mask helper "
        "indexes a traced shape); int8 is not offered for the VLAs yet (dynamic int8 of their VLM and "
        "expert has not been validated against the int8 tolerance)"
    )
    external_data = True

    def __init__(
        self,
        policy: Any,
        camera_images: bool,
        draws: str,
        instruction: dict[str, Any],
        num_steps: int,
    ):
        super().__init__(camera_images, draws)
        cfg = policy.config
        self.policy = policy
        self.cameras = set(cfg.image_features)
        self.observations = [
            self.observation_input(name, ft)
            for name, ft in cfg.input_features.items()
            if not (ft.type is FeatureType.VISUAL and is_empty_camera_slot(name))
        ]
        length, vocab = instruction["max_length"], instruction["vocab_size"]
        tokens, mask = instruction["inputs"]
        self.instruction = instruction
        self.noise_shape = (cfg.chunk_size, cfg.max_action_dim)
        self.inputs = [
            *self.observations,
            GraphInput(tokens, (length,), torch.int64, high=vocab),
            GraphInput(mask, (length,), torch.int64),
        ]
        if draws == "input":
            self.inputs.append(GraphInput("noise", self.noise_shape, torch.float32, random=True))
        self.output = GraphInput(ACTION, (cfg.chunk_size, cfg.action_feature.shape[0]), torch.float32)
        where = "an input (standard normal)" if draws == "input" else "drawn inside the model"
        self.random_draws = (
            f"flow matching, {num_steps} Euler steps from t=1 to t=0: the initial noise (B, chunk_size, "
            f"max_action_dim) = (B, {cfg.chunk_size}, {cfg.max_action_dim}) in the normalised, zero-padded "
            f"action space: {where}; the steps are otherwise deterministic"
        )

    def example_inputs(
        self, batch_size: int = 1, generator: torch.Generator | None = None
    ) -> tuple[Tensor, ...]:
        """As the base class, with a mask that keeps the first half of the instruction (as a tokenizer's)."""
        out = list(super().example_inputs(batch_size, generator))
        mask = self.inputs.index(next(s for s in self.inputs if s.name == self.instruction["inputs"][1]))
        length = out[mask].shape[1]
        out[mask] = (torch.arange(length) < max(1, length // 2)).long().expand(batch_size, -1).contiguous()
        return tuple(out)

    def original_kwargs(self, draws: tuple[Tensor, ...], generator: torch.Generator) -> dict[str, Any]:
        """``predict_action_chunk(obs, noise=...)``: the VLAs take their initial noise directly."""
        return {"noise": draws[0]}

    def forward(self, *inputs: Tensor) -> Tensor:
        n = len(self.observations)
        batch = self.observation_batch(inputs)
        tokens, mask = inputs[n].long(), inputs[n + 1].bool()
        noise = inputs[n + 2] if self.draws == "input" else self.standard_normal(tokens, self.noise_shape)
        return self.policy._chunk_from_tokens(batch, tokens, mask, noise)


def instruction_metadata(
    tokenizer: Any,
    source: str,
    max_length: int,
    vocab_size: int,
    prompt: str = "{task}\n",
    cleanup: str = "none",
    inputs: tuple[str, str] = (LANG_TOKENS, LANG_MASK),
    **more: Any,
) -> dict[str, Any]:
    """``metadata["instruction"]`` of a VLA export: what a runtime does to turn a task into the graph's
    token inputs (:func:`lerobot.export.runtime.instruction_inputs`). The tokenizer's files are saved
    in the export folder as ``tokenizer/`` (``transformers``' ``save_pretrained``)."""
    return {
        "inputs": list(inputs),
        "tokenizer": "tokenizer",
        "tokenizer_source": source,
        "tokenizer_class": type(tokenizer).__name__,
        "prompt": prompt,
        "task_cleanup": cleanup,
        "max_length": int(max_length),
        "padding": "max_length",
        "padding_side": "right",
        "truncation": True,
        "add_special_tokens": True,
        "vocab_size": int(vocab_size),
        **more,
    }
