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
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot.policies.normalize import PREPROCESSOR
from lerobot.policies.pi0.modeling_pi0 import PI0FlowMatching, PI0Policy
from lerobot.policies.pi05.configuration_pi05 import PI05Config
from lerobot.policies.vla_common import sinusoidal_time_embedding

STATE_BINS = 256


def discretize_state(state: Tensor) -> Tensor:
    """Normalised state (B, D) in [-1, 1] -> bin indices (B, D) in 0..255 (see the module docstring)."""
    edges = torch.linspace(-1.0, 1.0, STATE_BINS + 1, dtype=torch.float64, device=state.device)[:-1]
    return torch.bucketize(state.double(), edges, right=True) - 1


def state_prompts(tasks: list[str], state: Tensor) -> list[str]:
    """π0.5's prompts: ``"Task: <task>, State: <bins>;\\nAction: "`` (task stripped, ``_``/newlines as spaces)."""
    bins = discretize_state(state).tolist()
    prompts = []
    for task, values in zip(tasks, bins, strict=True):
        text = task.strip().replace("_", " ").replace("\n", " ")
        prompts.append(f"Task: {text}, State: {' '.join(map(str, values))};\nAction: ")
    return prompts


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
        out = self.tokenizer(
            prompts,
            max_length=self.config.tokenizer_max_length,
            padding="max_length",
            truncation=True,
            padding_side="right",
            return_tensors="pt",
        )
        return out["input_ids"].long().to(state.device), out["attention_mask"].bool().to(state.device)

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
