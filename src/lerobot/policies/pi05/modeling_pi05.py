"""π0.5 (Physical Intelligence 2025, https://arxiv.org/abs/2504.16054): π0's PaliGemma + Gemma expert with
two changes, as LeRobot 0.6 implements it (same parameter names, so its checkpoints load here).

* The state is language. Normalised by quantiles into [-1, 1], each of its values is discretised into
  one of 256 bins and written into the prompt::

      "Task: pick up the red cube, State: 0 17 128 255;\\nAction: "

  (``bin = #{edges <= x} - 1`` for the 256 left edges ``linspace(-1, 1, 257)[:-1]``: values at or
  above 1 land in bin 255, values below -1 in bin -1). There is no state token in the suffix.
* The time conditions the expert through adaptive RMSNorm (``time_mlp_in`` -> swish -> ``time_mlp_out``
  -> swish gives the condition each norm's ``dense`` layer turns into a scale, a shift and a gate), so
  the action tokens are just ``action_in_proj(x_t)``.

Everything else -- images, attention, flow matching, KV-cached sampling -- is π0's
(:mod:`lerobot.policies.pi0.modeling_pi0`).

Export: the prompt holds the state, so tokenisation splits in two. The runtime tokenises the
text before the state, ``"Task: <task>, State:"`` (the graph's ``observation.language.task_tokens`` /
``task_attention_mask``); inside the graph :class:`StatePromptTokens` normalises and discretises the
state with tensor ops, appends each value's tokens (a table read from the tokenizer at export time)
and the tokens of ``";\nAction: "``, and packs the result, right-padded and truncated, as the
tokenizer would have. The export checks that this equals tokenising the whole prompt, and refuses
a tokenizer for which it does not.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot.configs.types import ACTION, OBS_STATE
from lerobot.policies.normalize import PREPROCESSOR
from lerobot.policies.pi0.modeling_pi0 import PI0FlowMatching, PI0Policy
from lerobot.policies.pi05.configuration_pi05 import PI05Config
from lerobot.policies.vla_common import (
    LANG_MASK,
    LANG_TOKENS,
    VLAGraph,
    instruction_metadata,
    instruction_text,
    sinusoidal_time_embedding,
)

STATE_BINS = 256
PROMPT_HEAD = "Task: {task}, State:"
PROMPT_TAIL = ";\nAction: "
TASK_CLEANUP = "strip_underscores_newlines"
TASK_TOKENS = "observation.language.task_tokens"
TASK_MASK = "observation.language.task_attention_mask"


def discretize_state(state: Tensor) -> Tensor:
    """Normalised state (B, D) in [-1, 1] -> bin indices (B, D) in 0..255 (see the module docstring)."""
    edges = torch.linspace(-1.0, 1.0, STATE_BINS + 1, dtype=torch.float64, device=state.device)[:-1]
    return torch.bucketize(state.double(), edges, right=True) - 1


def state_prompts(tasks: list[str], state: Tensor) -> list[str]:
    """π0.5's prompts: ``"Task: <task>, State: <bins>;\\nAction: "`` (task stripped, ``_``/newlines as spaces)."""
    bins = discretize_state(state).tolist()
    return [
        instruction_text(PROMPT_HEAD, TASK_CLEANUP, task)
        + ("".join(f" {v}" for v in values) or " ")
        + PROMPT_TAIL
        for task, values in zip(tasks, bins, strict=True)
    ]


def discretize_state_ops(state: Tensor) -> Tensor:
    """:func:`discretize_state` with arithmetic only (what ONNX takes): ``clamp(floor((x + 1) * 128), -1, 255)``.

    Exact in float64: the bin edges ``k / 128 - 1`` and ``(x + 1) * 128`` of a float32 ``x`` are exact.
    """
    bins = torch.floor((state.double() + 1.0) * (STATE_BINS / 2))
    return bins.clamp(-1, STATE_BINS - 1).long()


class PromptTokenizerError(ValueError):
    """The tokenizer does not tokenise π0.5's state values on their own, so the graph cannot build the prompt."""


class StatePromptTokens(nn.Module):
    """``(task head ids (B, L), its mask (B, L), normalised state (B, D)) -> prompt ids, mask (B, L)``.

    Each state value's bin (-1 .. 255) selects its tokens from ``table`` (``lengths`` of them); the head's
    real tokens, the values' and ``tail``'s are packed left to right into ``L`` slots (a scatter), the
    rest is ``pad_id`` with mask 0, as right padding and truncation to ``L`` give.
    """

    def __init__(self, tokenizer: Any, max_length: int):
        super().__init__()
        self.max_length = max_length

        def ids(text: str) -> list[int]:
            return list(tokenizer(text)["input_ids"])

        head = instruction_text(PROMPT_HEAD, TASK_CLEANUP, "x")
        base = ids(head)
        rests = []
        for value in range(-1, STATE_BINS):
            full = ids(f"{head} {value}{PROMPT_TAIL}")
            if full[: len(base)] != base:
                raise PromptTokenizerError(
                    f"the tokenizer does not tokenise {head!r} the same at the start of the prompt {full!r}"
                )
            rests.append(full[len(base) :])
        tail = rests[0]
        for rest in rests[1:]:  # the longest common end of every value's tokens: the tail's tokens
            while tail and rest[len(rest) - len(tail) :] != tail:
                tail = tail[1:]
        values = [rest[: len(rest) - len(tail)] for rest in rests]
        if not tail or not all(values):
            raise PromptTokenizerError(
                "the tokens of the state values and of the prompt's end are not separable"
            )
        width = max(map(len, values))
        table = torch.zeros(len(values), width, dtype=torch.long)
        for i, v in enumerate(values):
            table[i, : len(v)] = torch.tensor(v)
        self.register_buffer("table", table, persistent=False)
        self.register_buffer("lengths", torch.tensor([len(v) for v in values]), persistent=False)
        self.register_buffer("tail", torch.tensor(tail, dtype=torch.long), persistent=False)
        self.pad_id = int(tokenizer.pad_token_id or 0)

    def forward(self, head: Tensor, head_mask: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        batch, length = head.shape[0], self.max_length
        index = discretize_state_ops(state) + 1  # bin -1 is row 0
        value_tokens = self.table[index].flatten(1)  # (B, D * width)
        value_valid = torch.arange(self.table.shape[1], device=head.device) < self.lengths[index][..., None]
        ids = torch.cat([head, value_tokens, self.tail.expand(batch, -1)], dim=1)
        valid = torch.cat(
            [
                head_mask.bool(),
                value_valid.flatten(1),
                torch.ones_like(self.tail, dtype=torch.bool).expand(batch, -1),
            ],
            dim=1,
        )
        slot = torch.cumsum(valid.long(), dim=1) - 1
        slot = torch.where(
            valid & (slot < length), slot, torch.full_like(slot, length)
        )  # the rest: one spare slot
        packed = torch.full((batch, length + 1), self.pad_id, dtype=torch.long, device=head.device)
        packed = packed.scatter(1, slot, ids)[:, :length]
        count = valid.long().sum(dim=1, keepdim=True)
        return packed, torch.arange(length, device=head.device)[None] < count

    def check(self, tokenize: Any, tasks: list[str], states: Tensor) -> None:
        """Refuse (:class:`PromptTokenizerError`) unless this equals ``tokenize`` of the whole prompts."""
        head_ids, head_mask = tokenize([instruction_text(PROMPT_HEAD, TASK_CLEANUP, t) for t in tasks])
        ids, mask = self(head_ids, head_mask, states)
        want_ids, want_mask = tokenize(state_prompts(tasks, states))
        if not (torch.equal(mask, want_mask.bool()) and torch.equal(ids[mask], want_ids[want_mask.bool()])):
            raise PromptTokenizerError(
                "building the prompt's tokens from the task's and each state value's does not give the tokens of "
                "the whole prompt"
            )


class PI05FlowMatching(PI0FlowMatching):
    """π0's network with a time-conditioned (adaptive RMSNorm) expert and no state token."""

    def adarms_cond_dim(self, width: int) -> int:
        return width

    def build_time_layers(self, width: int) -> None:
        self.time_mlp_in = nn.Linear(width, width)
        self.time_mlp_out = nn.Linear(width, width)

    def embed_suffix(self, state: Tensor, x_t: Tensor, time: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(action tokens (B, T, W), pad mask, new-block flags: one block, the time condition (B, W))."""
        width = self.action_in_proj.out_features
        time_emb = sinusoidal_time_embedding(time, width, self.config.min_period, self.config.max_period)
        cond = F.silu(self.time_mlp_out(F.silu(self.time_mlp_in(time_emb.to(self.time_mlp_in.weight.dtype)))))
        tokens = self.action_in_proj(x_t)
        pad = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        new_block = torch.zeros_like(pad)
        new_block[:, 0] = True  # the prefix does not see the actions
        return tokens, pad, new_block, cond


class PI05Policy(PI0Policy):
    """π0.5 with its quantile normalisation, state-in-the-prompt tokenisation and action queue."""

    config_class = PI05Config
    name = "pi05"
    network_class = PI05FlowMatching

    def tokenize(self, batch: dict[str, Any], state: Tensor) -> tuple[Tensor, Tensor]:
        """The prompt holds the task and the discretised normalised state (only its real dims)."""
        dims = self.config.robot_state_feature.shape[0] if self.config.robot_state_feature is not None else 0
        prompts = state_prompts(self.prompts(batch, state.shape[0]), state[:, :dims])
        # No newline is appended (π0's tokenize_tasks would): the prompt already ends with "Action: ".
        ids, mask = self._tokenize_texts(prompts)
        return ids.to(state.device), mask.to(state.device)

    # ---- export --------------------------------------------------------------------------------------------
    def _export_graph(self, camera_images: bool, draws: str, history: bool) -> VLAGraph:
        """Cameras, state, the tokens of ``"Task: <task>, State:"`` and the flow's noise -> the chunk: the
        graph writes the discretised state into the prompt (:class:`StatePromptTokens`)."""
        cfg = self.config
        length = cfg.tokenizer_max_length
        try:
            self.prompt_tokens = StatePromptTokens(self.tokenizer, length)
            self.prompt_tokens.check(self._tokenize_texts, *self._prompt_check_cases())
        except PromptTokenizerError as e:
            raise ValueError(
                f"This π0.5 policy cannot be exported with its tokenizer {self.tokenizer_name!r}: {e}. The export "
                "writes the discretised state into the prompt inside the model, which needs a tokenizer that "
                "tokenises each ' <number>' on its own (PaliGemma's and byte-level BPE tokenizers do)."
            ) from None
        instruction = instruction_metadata(
            self.tokenizer,
            str(self.tokenizer_name),
            length,
            self.vocab_size,
            prompt=PROMPT_HEAD,
            cleanup=TASK_CLEANUP,
            inputs=(TASK_TOKENS, TASK_MASK),
            state_in_prompt=(
                "inside the model: observation.state is quantile-normalised, discretised into 256 bins "
                "(clamp(floor((x + 1) * 128), -1, 255)), each value's tokens (' <bin>') and those of "
                f"{PROMPT_TAIL!r} are appended to the task's tokens, then padded/truncated to max_length"
            ),
        )
        return VLAGraph(self, camera_images, draws, instruction, cfg.num_inference_steps)

    def _tokenize_texts(self, texts: list[str]) -> tuple[Tensor, Tensor]:
        """Token ids and mask of whole prompts, padded on the right to ``tokenizer_max_length``."""
        out = self.tokenizer(
            texts,
            max_length=self.config.tokenizer_max_length,
            padding="max_length",
            truncation=True,
            padding_side="right",
            return_tensors="pt",
        )
        return out["input_ids"].long(), out["attention_mask"].bool()

    def _prompt_check_cases(self) -> tuple[list[str], Tensor]:
        """Prompts that hold every bin from -1 to 255 (and a long one, truncated)."""
        dims = self.config.robot_state_feature.shape[0] if self.config.robot_state_feature is not None else 0
        values = torch.arange(-1, STATE_BINS + dims).remainder(STATE_BINS + 1) - 1
        rows = max(1, -(-(STATE_BINS + 1) // max(dims, 1)))
        bins = values[: rows * dims].reshape(rows, dims).float()
        states = (bins + 0.5) / (STATE_BINS / 2) - 1.0
        tasks = ["pick up the red cube", "place_the blue cube\nin the bin " * 8][:2] * rows
        return tasks[:rows], states

    def _chunk_from_tokens(
        self, batch: dict[str, Tensor], tokens: Tensor, mask: Tensor, noise: Tensor
    ) -> Tensor:
        """As π0's, with ``tokens`` those of the text before the state: the graph writes the state in."""
        batch = self.normalize_inputs(batch)
        dims = self.config.robot_state_feature.shape[0] if self.config.robot_state_feature is not None else 0
        state = (
            batch[OBS_STATE][:, :dims] if OBS_STATE in batch else tokens.new_zeros(tokens.shape[0], 0).float()
        )
        ids, prompt_mask = self.prompt_tokens(tokens, mask, state)
        inputs = self.model_inputs({**batch, LANG_TOKENS: ids, LANG_MASK: prompt_mask})
        return self.unnormalize_outputs({ACTION: self._sample_inputs(inputs, noise)})[ACTION]

    def extra_preprocessor_steps(self) -> list[dict[str, Any]]:
        """LeRobot's π0.5 pipeline: the state-prompt step, then the tokenizer."""
        return [
            {"registry_name": "pi05_prepare_state_tokenizer_processor_step", "config": {}},
            self._tokenizer_step(),
        ]

    def save_pretrained(self, save_directory: str | Path, **kwargs: Any) -> Path:
        """As π0, with the normaliser moved before the prompt steps (the state is discretised normalised).

        LeRobot runs its preprocessor steps in file order; its state file is named after its index.
        """
        save_directory = super().save_pretrained(save_directory, **kwargs)
        path = save_directory / f"{PREPROCESSOR}.json"
        pipeline = json.loads(path.read_text())
        steps = pipeline["steps"]
        index = next(i for i, s in enumerate(steps) if s.get("registry_name") == "normalizer_processor")
        normalizer = steps.pop(index)
        steps.insert(2, normalizer)  # after renaming and batching
        old = normalizer.get("state_file")
        if old:
            new = f"{PREPROCESSOR}_step_2_normalizer_processor.safetensors"
            (save_directory / old).replace(save_directory / new)
            normalizer["state_file"] = new
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(pipeline, indent=2))
        tmp.replace(path)
        return save_directory
