"""π0: a PaliGemma VLM and a Gemma action expert trained by flow matching (Black et al. 2024,
https://arxiv.org/abs/2410.24164). Same parameter names as LeRobot's π0, so ``lerobot/pi0_base`` and
checkpoints fine-tuned with LeRobot load here and give the same actions.

Shapes (B batch, T = chunk_size, A = max_action_dim, S = max_state_dim)::

    observation.images.<cam>  (B, 3, H, W) in [0, 1]   -> resized with centred padding, scaled to [-1, 1]
    observation.state         (B, state_dim)           -> normalised, zero-padded to S
    task                      str or B strings          -> "<task>\\n", tokenised (tokenizer_max_length)
    action                    (B, T, action_dim)       training target, normalised, zero-padded to A

Model (:class:`PI0FlowMatching`)::

    prefix = [SigLIP+projector(image) for each camera] + [sqrt(width) * embed(prompt tokens)]  (VLM)
    suffix = [state_proj(state)] + [MLP(action_in_proj(x_t), sin-cos(t))] * T                 (expert)
    one joint transformer pass (paligemma_expert.py) -> action_out_proj(suffix outputs) = v_t  (B, T, A)

Attention: the prefix attends to itself (bidirectionally), the state token to the prefix and itself,
the action tokens to everything. Training regresses ``v_t`` onto ``u = noise - actions`` at
``x_t = t * noise + (1 - t) * actions``; acting integrates from noise at t=1 to t=0 in
``num_inference_steps`` Euler steps, with the prefix's keys/values computed once per observation.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from safetensors import safe_open
from torch import Tensor, nn

from lerobot.configs.types import ACTION, OBS_STATE
from lerobot.datasets.paths import is_repo_id
from lerobot.policies.config import CheckpointError
from lerobot.policies.normalize import PREPROCESSOR
from lerobot.policies.pi0.configuration_pi0 import DEFAULT_TOKENIZER, PaliGemmaVLAConfig, PI0Config
from lerobot.policies.pi0.paligemma_expert import PaliGemmaWithExpert, PrefixCache
from lerobot.policies.pretrained import (
    WEIGHTS_NAME,
    PolicyAction,
    PreTrainedPolicy,
    inference_step,
    loading_checkpoint_dir,
)
from lerobot.policies.rtc.modeling_rtc import RTCGuide
from lerobot.policies.vla_common import (
    LANG_MASK,
    LANG_TOKENS,
    VLAGraph,
    block_attention_mask,
    checkpoint_dir_of,
    flow_matching_target,
    flow_sample_with_guide,
    instruction_metadata,
    is_empty_camera_slot,
    load_tokenizer,
    pad_vector,
    resize_with_pad,
    scale_to_symmetric,
    sinusoidal_time_embedding,
    tokenize_tasks,
    vla_rtc_guide,
)

TASK = "task"


@dataclass
class VLAInputs:
    """What the network takes, already normalised and padded."""

    images: list[Tensor]  # each (B, 3, S, S) in [-1, 1]
    image_masks: list[Tensor]  # each (B,) bool: False for an empty camera slot
    tokens: Tensor  # (B, L) long
    token_mask: Tensor  # (B, L) bool
    state: Tensor  # (B, max_state_dim)


class PI0FlowMatching(nn.Module):
    """π0's network: ``paligemma_with_expert`` plus the action, state and time projections."""

    def __init__(self, config: PaliGemmaVLAConfig):
        super().__init__()
        self.config = config
        sizes = config.sizes()
        vision = sizes["vision"]
        if tuple(config.image_resolution) != (vision["image_size"], vision["image_size"]):
            raise ValueError(
                f"image_resolution={tuple(config.image_resolution)} does not match the vision tower's image_size "
                f"{vision['image_size']}; set --policy.image_resolution='[{vision['image_size']}, "
                f"{vision['image_size']}]'."
            )
        width = sizes["action_expert"]["width"]
        self.paligemma_with_expert = PaliGemmaWithExpert(
            sizes,
            adarms_cond_dim=self.adarms_cond_dim(width),
            gradient_checkpointing=config.gradient_checkpointing,
        )
        self.action_in_proj = nn.Linear(config.max_action_dim, width)
        self.action_out_proj = nn.Linear(width, config.max_action_dim)
        self.build_time_layers(width)
        if config.dtype == "bfloat16":
            self.paligemma_with_expert.to(torch.bfloat16)
        self._freeze()

    # ---- what π0.5 changes -------------------------------------------------------------------------
    def adarms_cond_dim(self, width: int) -> int | None:
        """Size of the expert's adaptive-norm condition (None: plain RMSNorm, as in π0)."""
        return None

    def build_time_layers(self, width: int) -> None:
        """π0: the state token's projection and the MLP that mixes each action token with the time."""
        self.state_proj = nn.Linear(self.config.max_state_dim, width)
        self.action_time_mlp_in = nn.Linear(2 * width, width)
        self.action_time_mlp_out = nn.Linear(width, width)

    def embed_suffix(
        self, state: Tensor, x_t: Tensor, time: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
        """(tokens (B, 1 + T, W), pad mask, new-block flags, adaptive-norm condition or None)."""
        width = self.action_in_proj.out_features
        state_emb = self.state_proj(state.to(self.state_proj.weight.dtype))[:, None]
        time_emb = sinusoidal_time_embedding(time, width, self.config.min_period, self.config.max_period)
        action_emb = self.action_in_proj(x_t)
        mixed = torch.cat([action_emb, time_emb[:, None].expand_as(action_emb).to(action_emb.dtype)], dim=2)
        action_time = self.action_time_mlp_out(F.silu(self.action_time_mlp_in(mixed)))
        tokens = torch.cat([state_emb, action_time], dim=1)
        batch, length = tokens.shape[:2]
        pad = torch.ones(batch, length, dtype=torch.bool, device=tokens.device)
        # The state token starts a block (the actions see it, it does not see them); so do the actions.
        new_block = torch.zeros_like(pad)
        new_block[:, :2] = True
        return tokens, pad, new_block, None

    # ---- shared by π0 and π0.5 -----------------------------------------------------------------------
    def _freeze(self) -> None:
        vlm = self.paligemma_with_expert.paligemma
        if self.config.train_expert_only:
            vlm.requires_grad_(False)
        elif self.config.freeze_vision_encoder:
            vlm.model.vision_tower.requires_grad_(False)

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.paligemma_with_expert.language_model.embed_tokens.weight.dtype

    def embed_prefix(self, inputs: VLAInputs) -> tuple[Tensor, Tensor, Tensor]:
        """(image and prompt tokens (B, Lp, W), pad mask (B, Lp), new-block flags (B, Lp): one block)."""
        embs, pads = [], []
        dtype = self.compute_dtype
        for image, mask in zip(inputs.images, inputs.image_masks, strict=True):
            emb = self.paligemma_with_expert.embed_image(image.to(dtype))
            embs.append(emb)
            pads.append(mask[:, None].expand(emb.shape[:2]))
        embs.append(self.paligemma_with_expert.embed_language_tokens(inputs.tokens))
        pads.append(inputs.token_mask)
        embs_t, pad = torch.cat(embs, dim=1), torch.cat(pads, dim=1)
        return embs_t, pad, torch.zeros_like(pad)

    def forward(self, inputs: VLAInputs, actions: Tensor, noise: Tensor, time: Tensor) -> Tensor:
        """Element-wise flow-matching loss ``(v_t - u_t)^2``, shape (B, T, max_action_dim)."""
        x_t, u_t = flow_matching_target(actions, noise, time)
        prefix, prefix_pad, prefix_blocks = self.embed_prefix(inputs)
        suffix, suffix_pad, suffix_blocks, cond = self.embed_suffix(inputs.state, x_t, time)
        pad = torch.cat([prefix_pad, suffix_pad], dim=1)
        mask = block_attention_mask(pad, torch.cat([prefix_blocks, suffix_blocks], dim=1))
        positions = torch.cumsum(pad.long(), dim=1) - 1
        _, suffix_out, _ = self.paligemma_with_expert(
            prefix, suffix.to(prefix.dtype), mask, positions, adarms_cond=cond
        )
        v_t = self.action_out_proj(
            suffix_out[:, -self.config.chunk_size :].to(self.action_out_proj.weight.dtype)
        )
        return F.mse_loss(v_t, u_t, reduction="none")

    def encode_prefix(self, inputs: VLAInputs) -> PrefixCache:
        """Run the prefix through the VLM once and keep every layer's keys and values."""
        prefix, pad, blocks = self.embed_prefix(inputs)
        positions = torch.cumsum(pad.long(), dim=1) - 1
        _, _, kv = self.paligemma_with_expert(
            prefix, None, block_attention_mask(pad, blocks), positions, store_cache=True
        )
        return PrefixCache(kv, pad)

    def velocity(self, cache: PrefixCache, state: Tensor, x_t: Tensor, time: Tensor) -> Tensor:
        """The expert's velocity ``v(x_t, t)`` (B, T, max_action_dim) given the cached prefix."""
        suffix, pad, blocks, cond = self.embed_suffix(state, x_t, time)
        batch, length = pad.shape
        prefix_len = cache.pad_mask.shape[1]
        mask = torch.cat(
            [cache.pad_mask[:, None].expand(batch, length, prefix_len), block_attention_mask(pad, blocks)],
            dim=2,
        )
        positions = cache.pad_mask.sum(dim=1, keepdim=True) + torch.cumsum(pad.long(), dim=1) - 1
        _, out, _ = self.paligemma_with_expert(
            None, suffix.to(self.compute_dtype), mask, positions, cache=cache, adarms_cond=cond
        )
        return self.action_out_proj(out[:, -self.config.chunk_size :].to(self.action_out_proj.weight.dtype))

    def sample_actions(self, inputs: VLAInputs, noise: Tensor, guide: RTCGuide | None = None) -> Tensor:
        """Normalised, padded actions (B, T, max_action_dim) integrated from ``noise`` at t=1 to t=0.

        ``guide``: real-time chunking towards the previous chunk (:mod:`lerobot.policies.rtc`); the
        prefix cache is still computed once per chunk.
        """
        return flow_sample_with_guide(
            lambda x, t, cond: self.velocity(cond[0], cond[1], x, t),
            noise,
            self.config.num_inference_steps,
            guide,
            (self.encode_prefix(inputs), inputs.state),
        )


class PI0Policy(PreTrainedPolicy):
    """π0 with its normalisation, prompt, image preparation and action queue."""

    config_class = PI0Config
    name = "pi0"
    takes_instruction = True
    network_class: type[PI0FlowMatching] = PI0FlowMatching

    def __init__(self, config: PaliGemmaVLAConfig, dataset_stats: dict[str, dict[str, Any]] | None = None):
        super().__init__(config, dataset_stats)
        # Inside from_pretrained the checkpoint replaces every weight: skip allocating and randomly
        # initialising 3B parameters first (they stay on the meta device until the file is read).
        with _empty_parameters() if loading_checkpoint_dir() is not None else contextlib.nullcontext():
            self.model = self.network_class(config)
        if config.tokenizer_name:
            self.tokenizer_name, self._tokenizer_dir = config.tokenizer_name, None
        else:
            self.tokenizer_name, self._tokenizer_dir = _checkpoint_tokenizer(checkpoint_dir_of(config))
        self._tokenizer: Any = None
        self._warned_no_task = False
        self.reset()

    def reset(self) -> None:
        self._action_queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)
        rtc = self.config.rtc_config
        self.rtc_debug: deque[dict[str, float]] = deque(maxlen=rtc.debug_maxlen if rtc else 1)
        """With ``rtc_config.debug``: each guided denoising step's weight and prefix error."""

    @classmethod
    def supports_rtc(cls) -> bool:
        return True

    def _load_checkpoint(self, folder: Path, strict: bool = True, stats_folder: Path | None = None) -> None:
        """Give the parameters left on the meta device (CPU) storage, then load the file into them.

        When the file lacks some weights the network is built normally instead, so that those keep a
        proper initialisation (and ``strict`` loading names them).
        """
        weights = folder / WEIGHTS_NAME
        if weights.is_file() and any(p.is_meta for p in self.model.parameters()):
            with safe_open(str(weights), "pt") as f:
                complete = {f"model.{k}" for k, _ in self.model.named_parameters()} <= set(f.keys())
            if not complete:  # what the file lacks needs a real initialisation (or the error says what)
                self.model = self.network_class(self.config)
            for module in self.model.modules():
                for name, param in list(module._parameters.items()):
                    if param is not None and param.is_meta:
                        empty = torch.empty_like(param, device="cpu")
                        module._parameters[name] = nn.Parameter(empty, requires_grad=param.requires_grad)
        super()._load_checkpoint(folder, strict=strict, stats_folder=stats_folder)

    # ---- tokenizer -----------------------------------------------------------------------------------
    @property
    def tokenizer(self) -> Any:
        """The prompt tokenizer, loaded on first use (a checkpoint's relative folder resolves inside it)."""
        if self._tokenizer is None:
            if self.tokenizer_name is None:
                raise ValueError(f"{type(self).__name__} has no tokenizer: call set_tokenizer(...).")
            self._tokenizer = load_tokenizer(self.tokenizer_name, self._tokenizer_dir)
        return self._tokenizer

    def set_tokenizer(self, tokenizer: Any, name: str | None = None) -> None:
        """Use ``tokenizer`` (a ``transformers`` tokenizer). ``name``: its Hub id, which checkpoints then
        record; without one its files are saved into each checkpoint."""
        self._tokenizer = tokenizer
        self.tokenizer_name, self._tokenizer_dir = (name, None) if name else (None, None)

    def extra_preprocessor_steps(self) -> list[dict[str, Any]]:
        """LeRobot's π0 pipeline: newline, then the tokenizer, between batching and the device."""
        return [
            {"registry_name": "pi0_new_line_processor", "config": {}},
            self._tokenizer_step(),
        ]

    def _tokenizer_step(self) -> dict[str, Any]:
        return {
            "registry_name": "tokenizer_processor",
            "config": {
                "max_length": self.config.tokenizer_max_length,
                "task_key": TASK,
                "padding_side": "right",
                "padding": "max_length",
                "truncation": True,
                "tokenizer_name": str(self.tokenizer_name),
            },
        }

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> Path:
        """The checkpoint, plus the tokenizer's files unless it is named by a Hub id.

        LeRobot's processor names the tokenizer by Hub id or folder; a local tokenizer is saved into
        ``<checkpoint>/tokenizer`` and named by that folder, relative to the checkpoint.
        """
        save_directory = Path(save_directory)
        if not self._tokenizer_is_hub_id():
            tokenizer = self.tokenizer
            tokenizer.save_pretrained(str(save_directory / "tokenizer"))
            self.tokenizer_name, self._tokenizer_dir = "tokenizer", save_directory
        return super().save_pretrained(save_directory, **kwargs)

    def _tokenizer_is_hub_id(self) -> bool:
        name = self.tokenizer_name
        if name is None or not is_repo_id(name):
            return False
        if self._tokenizer_dir is not None:
            return not (self._tokenizer_dir / name).is_dir()
        return not Path(name).expanduser().is_dir()

    # ---- inputs ------------------------------------------------------------------------------------------
    def prompts(self, batch: dict[str, Any], size: int) -> list[str]:
        """The instruction of each sample (``batch["task"]``: a string or ``size`` strings)."""
        task = batch.get(TASK)
        if task is None:
            if not self._warned_no_task:
                self._warned_no_task = True
                warnings.warn(
                    f"{type(self).__name__}: the observation has no 'task' instruction; using an empty one. Pass "
                    "observation['task'] = 'pick up the cube' (datasets and language-conditioned envs provide it).",
                    UserWarning,
                    stacklevel=4,
                )
            task = ""
        tasks = [task] * size if isinstance(task, str) else list(task)
        if len(tasks) != size or not all(isinstance(t, str) for t in tasks):
            raise ValueError(f"'task' must be a string or {size} strings (one per sample), got {task!r}.")
        return tasks

    def tokenize(self, batch: dict[str, Any], state: Tensor) -> tuple[Tensor, Tensor]:
        """Prompt token ids and mask (B, tokenizer_max_length): the task with a newline appended."""
        return tokenize_tasks(
            self.tokenizer,
            self.prompts(batch, state.shape[0]),
            self.config.tokenizer_max_length,
            padding="max_length",
            padding_side="right",
            device=state.device,
        )

    def prepare_images(self, batch: dict[str, Any]) -> tuple[list[Tensor], list[Tensor]]:
        """Every camera resized with centred padding and scaled to [-1, 1], then the empty slots (all -1,
        masked out).

        The empty slots are ``empty_cameras`` of them, counting the ``observation.images.empty_camera_<i>``
        features LeRobot lists for them in a checkpoint's config; any other camera must be in the batch.
        """
        cameras = [c for c in self.config.image_features if c not in batch and not is_empty_camera_slot(c)]
        if cameras:
            given = sorted(k for k in batch if k.startswith("observation.image"))
            raise ValueError(
                f"{type(self).__name__}: cameras {cameras} are missing. The policy expects "
                f"{list(self.config.image_features)}; the observation has {given}. Rename them with "
                '--rename_map=\'{"<yours>": "<policy\'s>"}\' (predict(..., rename_map=...)) or adjust input_features.'
            )
        height, width = self.config.image_resolution
        images, masks = [], []
        for name in self.config.image_features:
            if name not in batch:
                continue
            image = batch[name]
            if image.dim() != 4 or image.shape[1] != 3:
                raise ValueError(f"{name} must be (B, 3, H, W) RGB images, got shape {tuple(image.shape)}.")
            images.append(scale_to_symmetric(resize_with_pad(image.float(), height, width, pad="center")))
            masks.append(torch.ones(image.shape[0], dtype=torch.bool, device=image.device))
        if not images:
            raise ValueError(
                f"{type(self).__name__}: the observation has no camera image; it needs at least one."
            )
        listed = sum(is_empty_camera_slot(c) for c in self.config.image_features)
        missing_listed = sum(is_empty_camera_slot(c) and c not in batch for c in self.config.image_features)
        for _ in range(missing_listed + max(0, self.config.empty_cameras - listed)):
            images.append(torch.full_like(images[0], -1.0))
            masks.append(torch.zeros_like(masks[0]))
        return images, masks

    def model_inputs(self, batch: dict[str, Any]) -> VLAInputs:
        """A normalised batch -> the network's inputs (images, prompt tokens, padded state)."""
        images, image_masks = self.prepare_images(batch)
        size = images[0].shape[0]
        state = batch.get(OBS_STATE)
        if state is None:
            state = torch.zeros(size, self.config.max_state_dim, device=images[0].device)
        state = pad_vector(state.float(), self.config.max_state_dim)
        if LANG_TOKENS in batch:  # already tokenised (an export graph): ids checked by whoever tokenised
            return VLAInputs(images, image_masks, batch[LANG_TOKENS].long(), batch[LANG_MASK].bool(), state)
        tokens, token_mask = self.tokenize(batch, state)
        vocab = self.vocab_size
        if tokens.numel() and int(tokens.max()) >= vocab:
            raise ValueError(
                f"The tokenizer {self.tokenizer_name!r} produced token id {int(tokens.max())}, beyond the model's "
                f"vocabulary of {vocab}: use the tokenizer the model was trained with."
            )
        return VLAInputs(images, image_masks, tokens, token_mask, state)

    @property
    def vocab_size(self) -> int:
        return self.model.paligemma_with_expert.language_model.embed_tokens.num_embeddings

    def _checked_observation(self, observation: dict[str, Any]) -> dict[str, Any]:
        obs = self.prepare_observation(observation)
        present = {k: v for k, v in self.config.input_features.items() if k in obs or k == OBS_STATE}
        self.check_features(obs, present)
        return self.normalize_inputs(obs)

    def _noise(self, noise: Tensor | None, size: int, device: torch.device) -> Tensor:
        shape = (size, self.config.chunk_size, self.config.max_action_dim)
        if noise is None:
            return torch.randn(shape, device=device)
        if tuple(noise.shape) != shape:
            raise ValueError(
                f"noise must have shape (B, chunk_size, max_action_dim) = {shape}, got {tuple(noise.shape)}."
            )
        return noise.to(device=device, dtype=torch.float32)

    # ---- acting --------------------------------------------------------------------------------------------
    def _sample_normalised(
        self, observation: dict[str, Any], noise: Tensor | None, guide: RTCGuide | None = None
    ) -> Tensor:
        inputs = self.model_inputs(self._checked_observation(observation))
        noise = self._noise(noise, inputs.state.shape[0], inputs.state.device)
        return self._sample_inputs(inputs, noise, guide)

    def _sample_inputs(self, inputs: VLAInputs, noise: Tensor, guide: RTCGuide | None = None) -> Tensor:
        """The network's inputs + noise -> normalised actions (B, chunk_size, action_dim)."""
        actions = self.model.sample_actions(inputs, noise, guide)
        if guide is not None and guide.trace is not None:
            self.rtc_debug.extend(guide.trace)
        return actions[..., : self.config.action_feature.shape[0]].float()

    # ---- export --------------------------------------------------------------------------------------------
    def _export_graph(self, camera_images: bool, draws: str, history: bool) -> VLAGraph:
        """Cameras, state, the prompt's token ids and mask (``"<task>\\n"`` padded to
        ``tokenizer_max_length``) and the flow's noise -> the chunk (:class:`VLAGraph`)."""
        cfg = self.config
        instruction = instruction_metadata(
            self.tokenizer, str(self.tokenizer_name), cfg.tokenizer_max_length, self.vocab_size
        )
        return VLAGraph(self, camera_images, draws, instruction, cfg.num_inference_steps)

    def _chunk_from_tokens(
        self, batch: dict[str, Tensor], tokens: Tensor, mask: Tensor, noise: Tensor
    ) -> Tensor:
        """Raw cameras (float, [0, 1]) and state + the prompt's tokens + noise -> the chunk in robot units."""
        batch = {**self.normalize_inputs(batch), LANG_TOKENS: tokens, LANG_MASK: mask}
        actions = self._sample_inputs(self.model_inputs(batch), noise)
        return self.unnormalize_outputs({ACTION: actions})[ACTION]

    @inference_step
    def predict_action_chunk(
        self,
        observation: dict[str, Any],
        noise: Tensor | None = None,
        inference_delay: int | None = None,
        prev_chunk_left_over: Any = None,
    ) -> Tensor:
        """Raw observation (with ``"task"``) -> (B, chunk_size, action_dim) actions in robot units.

        ``noise`` (B, chunk_size, max_action_dim): the flow's starting sample in the normalised,
        padded action space; drawn from N(0, I) when omitted. With ``config.rtc_config`` enabled,
        ``prev_chunk_left_over`` ``(P, action_dim)`` (robot units: the previous chunk's actions from
        this observation's step on) and ``inference_delay`` (control steps this chunk takes) make it a
        real-time-chunking inpainting of those actions; otherwise plain sampling.
        """
        guide = vla_rtc_guide(self, prev_chunk_left_over, inference_delay)
        return self.unnormalize_outputs({ACTION: self._sample_normalised(observation, noise, guide)})[ACTION]

    @inference_step
    def select_action(self, observation: dict[str, Any], noise: Tensor | None = None) -> PolicyAction:
        """Raw observation -> ``{"action": (B, action_dim)}``; a new chunk every ``n_action_steps`` calls."""
        if not self._action_queue:
            chunk = self._sample_normalised(observation, noise)[:, : self.config.n_action_steps]
            self._action_queue.extend(chunk.transpose(0, 1))
        action = self._action_queue.popleft()
        return PolicyAction(action=self.unnormalize_outputs({ACTION: action})[ACTION])

    # ---- training ------------------------------------------------------------------------------------------
    def sample_time(self, size: int, device: torch.device) -> Tensor:
        """Training times ``Beta(alpha, beta) * scale + offset`` (the config's time_sampling_* fields)."""
        c = self.config
        beta = torch.distributions.Beta(
            torch.tensor(c.time_sampling_beta_alpha, device=device),
            torch.tensor(c.time_sampling_beta_beta, device=device),
        )
        return beta.sample((size,)) * c.time_sampling_scale + c.time_sampling_offset

    def forward(
        self,
        batch: dict[str, Any],
        noise: Tensor | None = None,
        time: Tensor | None = None,
        reduction: str = "mean",
    ) -> dict[str, Any]:
        """Raw training batch -> ``{"loss": ...}``: the flow-matching MSE over the real action dims.

        ``noise`` (B, chunk_size, max_action_dim) and ``time`` (B,) fix the noisy sample (drawn when
        omitted). Steps marked in ``action_is_pad`` count as zero. ``reduction="none"`` gives the loss
        per sample (B,).
        """
        if reduction not in ("mean", "none"):
            raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}.")
        batch = self.single_action_as_chunk(self.rename_observation(batch), self.config.chunk_size)
        present = {k: v for k, v in self.config.input_features.items() if k in batch or k == OBS_STATE}
        self.check_features(batch, present)
        self.check_features(batch, self.config.output_features, time_steps=self.config.chunk_size)
        batch = self.normalize_targets(self.normalize_inputs(batch))
        inputs = self.model_inputs(batch)
        size, device = inputs.state.shape[0], inputs.state.device
        actions = pad_vector(batch[ACTION].float(), self.config.max_action_dim)
        noise = self._noise(noise, size, device)
        time = self.sample_time(size, device) if time is None else time.to(device=device, dtype=torch.float32)
        losses = self.model(inputs, actions, noise, time)[..., : self.config.action_feature.shape[0]]
        is_pad = batch.get("action_is_pad")
        if is_pad is not None:
            losses = losses * ~is_pad[..., None]
        per_sample = losses.mean(dim=(1, 2))
        loss = per_sample if reduction == "none" else losses.mean()
        return {"loss": loss}


def _empty_parameters() -> contextlib.AbstractContextManager:
    """Parameters on the meta device, buffers real (``accelerate``'s ``init_empty_weights``); without
    accelerate, an ordinary build."""
    try:
        from accelerate import init_empty_weights
    except ImportError:
        return contextlib.nullcontext()
    return init_empty_weights(include_buffers=False)


def _checkpoint_tokenizer(folder: Path | None) -> tuple[str, Path | None]:
    """(tokenizer name, folder it is relative to) from a checkpoint's ``policy_preprocessor.json``.

    LeRobot records the tokenizer in the ``tokenizer_processor`` step; without one (a fresh policy, or
    a checkpoint without processor files) it is PaliGemma's own.
    """
    if folder is None:
        return DEFAULT_TOKENIZER, None
    path = folder / f"{PREPROCESSOR}.json"
    if not path.is_file():
        return DEFAULT_TOKENIZER, None
    try:
        steps = json.loads(path.read_text()).get("steps", [])
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}).") from e
    for step in steps:
        if step.get("registry_name") == "tokenizer_processor":
            name = (step.get("config") or {}).get("tokenizer_name")
            if name:
                return str(name), folder
    return DEFAULT_TOKENIZER, None
