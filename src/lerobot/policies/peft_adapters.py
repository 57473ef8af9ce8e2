"""Parameter-efficient fine-tuning (LoRA through ``peft``), spelled as LeRobot's ``lerobot-train`` does.

::

    lerobot-train --policy.path=<checkpoint> --dataset.repo_id=me/demo --peft.method_type=LORA --peft.r=8

The adapters go into the policy in place (``peft.inject_adapter_in_model``): the policy keeps its
class, ``forward`` and ``select_action``; only the adapters and the ``full_training_modules`` get
gradients, everything else is frozen.

What a checkpoint holds (``pretrained_model/``):

* ``model.safetensors``: the weights with each adapter's low-rank update folded in, under the
  policy's own parameter names, and ``config.json`` with ``use_peft=false``. The folder therefore
  loads with ``from_pretrained`` here and in LeRobot 0.6.1, with or without ``peft`` installed.
* ``adapter_model.safetensors`` + ``adapter_config.json``: ``peft``'s own files (the adapters and the
  fully trained modules, ``base_model_name_or_path`` = the checkpoint fine-tuned, ``auto_mapping`` =
  the policy class), for users who keep one base model and several adapters: LeRobot 0.6.1 loads them
  with ``peft.PeftModel.from_pretrained(<base policy>, folder)``. A resumed run restarts from that base and these files, so it
  continues from exactly the weights it stopped at (folding is not reversible bit for bit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"
ADAPTER_CONFIG_NAME = "adapter_config.json"
_PEFT_PREFIX = "base_model.model."  # peft's key prefix in adapter files


@dataclass
class PeftConfig:
    """``--peft.*``: which adapters to add. Field names are LeRobot's."""

    method_type: str = "LORA"
    """The peft method; LORA is the one supported."""
    r: int = 16
    """Rank of each low-rank update."""
    lora_alpha: int | None = None
    """Scale numerator (update scaled by lora_alpha / r); None means r (scale 1)."""
    lora_dropout: float = 0.0
    """Dropout on each adapter's input during training."""
    target_modules: list[str] | str | None = None
    """Layers that get adapters: name suffixes (["q_proj", "v_proj"]) or one regex over the full
    names. None uses the policy's ``default_peft_targets`` (SmolVLA: the VLM's and the expert's
    attention projections)."""
    full_training_modules: list[str] | None = None
    """Modules trained in full beside the adapters (peft's ``modules_to_save``), as name suffixes.
    None uses the policy's default (SmolVLA: the state/action projections, which a new robot needs)."""
    init_type: str | None = None
    """peft's ``init_lora_weights`` (e.g. "gaussian", "pissa"); None means peft's default."""

    def validate(self) -> None:
        if self.method_type.upper() != "LORA":
            raise ValueError(f"--peft.method_type={self.method_type!r}: only LORA is supported.")
        if self.r < 1:
            raise ValueError(f"--peft.r must be >= 1, got {self.r}.")


def _import_peft() -> Any:
    try:
        import peft
    except ImportError as e:
        raise ImportError(
            "--peft.* needs the peft package: pip install 'lerobot[vla]' (or pip install peft)."
        ) from e
    return peft


def _resolved(policy: nn.Module, cfg: PeftConfig) -> tuple[Any, list[str]]:
    defaults = getattr(policy, "default_peft_targets", lambda: {})()
    targets = cfg.target_modules if cfg.target_modules is not None else defaults.get("target_modules")
    full = cfg.full_training_modules
    if full is None:
        full = defaults.get("full_training_modules", [])
    if not targets:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in policy.named_modules() if isinstance(m, nn.Linear)})
        raise ValueError(
            f"{type(policy).__name__} has no default LoRA targets: name them with "
            f"--peft.target_modules='[...]' (its linear layers end in {linear[:20]})."
        )
    return targets, list(full)


def wrap_with_peft(policy: nn.Module, cfg: PeftConfig) -> nn.Module:
    """Add LoRA adapters to ``policy`` in place and freeze everything else but the full-training modules."""
    cfg.validate()
    peft = _import_peft()
    targets, full = _resolved(policy, cfg)
    kwargs: dict[str, Any] = {}
    if cfg.init_type is not None:
        kwargs["init_lora_weights"] = cfg.init_type
    lora = peft.LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.lora_alpha if cfg.lora_alpha is not None else cfg.r,
        lora_dropout=cfg.lora_dropout,
        target_modules=targets,
        **kwargs,
    )
    try:
        peft.inject_adapter_in_model(lora, policy)
    except ValueError as e:
        raise ValueError(
            f"--peft.target_modules={targets!r} matches no layer of {type(policy).__name__}: {e}"
        ) from e
    policy.requires_grad_(False)
    unmatched = []
    for suffix in full:
        modules = [m for n, m in policy.named_modules() if n == suffix or n.endswith("." + suffix)]
        if not modules:
            unmatched.append(suffix)
        for m in modules:
            m.requires_grad_(True)
    if unmatched:
        raise ValueError(
            f"--peft.full_training_modules: {unmatched} name no module of {type(policy).__name__}."
        )
    for name, p in policy.named_parameters():
        if ".lora_" in name:
            p.requires_grad_(True)
    policy._peft_config = lora
    return policy


def is_wrapped(policy: nn.Module) -> bool:
    return getattr(policy, "_peft_config", None) is not None


def merged_state_dict(policy: nn.Module) -> dict[str, torch.Tensor]:
    """The policy's state dict as it was before :func:`wrap_with_peft`, each adapter's update folded in."""
    from peft.tuners.lora import LoraLayer

    state = dict(policy.state_dict())
    for name, module in policy.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        base = f"{name}.base_layer."
        for key in [k for k in state if k.startswith(f"{name}.")]:
            value = state.pop(key)
            if key.startswith(base):
                state[f"{name}.{key[len(base) :]}"] = value
        weight = module.get_base_layer().weight
        delta = sum(module.get_delta_weight(a) for a in module.active_adapters)
        state[f"{name}.weight"] = (weight + delta).detach().to(weight.dtype)
    return state


def adapter_state_dict(policy: nn.Module) -> dict[str, torch.Tensor]:
    """What training changed: the adapters and the fully trained modules, under peft's file names."""
    return {
        _PEFT_PREFIX + name.replace(".default.", "."): p.detach().cpu().contiguous()
        for name, p in policy.named_parameters()
        if p.requires_grad
    }


def save_adapter(policy: nn.Module, folder: Path, base_model: str | None) -> None:
    """Write peft's ``adapter_model.safetensors`` and ``adapter_config.json`` into ``folder``."""
    save_file(adapter_state_dict(policy), str(folder / ADAPTER_WEIGHTS_NAME), metadata={"format": "pt"})
    config = policy._peft_config.to_dict()
    config["base_model_name_or_path"] = base_model
    config["inference_mode"] = True  # as peft and LeRobot 0.6.1 write a saved adapter
    # peft's AutoPeftModel builds the base from these; LeRobot 0.6.1 writes the same two names.
    config["auto_mapping"] = {
        "base_model_class": type(policy).__name__,
        "parent_library": type(policy).__module__,
    }
    config["modules_to_save"] = (
        sorted(
            {
                n.rsplit(".", 1)[0]
                for n, p in policy.named_parameters()
                if p.requires_grad and ".lora_" not in n
            }
        )
        or None
    )
    config = {k: (sorted(v) if isinstance(v, set) else v) for k, v in config.items()}
    (folder / ADAPTER_CONFIG_NAME).write_text(json.dumps(config, indent=2, default=str))


def load_adapter(policy: nn.Module, folder: Path) -> None:
    """Load :func:`save_adapter`'s weights into a policy wrapped alike; every trainable tensor must be there."""
    saved = load_file(str(folder / ADAPTER_WEIGHTS_NAME))
    params = dict(policy.named_parameters())
    wanted = {_PEFT_PREFIX + n.replace(".default.", "."): n for n, p in params.items() if p.requires_grad}
    missing, unexpected = sorted(wanted.keys() - saved.keys()), sorted(saved.keys() - wanted.keys())
    if missing or unexpected:
        raise ValueError(
            f"{folder / ADAPTER_WEIGHTS_NAME} does not fit this run's adapters: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}. Resume with the same --peft.* flags and base checkpoint."
        )
    with torch.no_grad():
        for key, name in wanted.items():
            params[name].copy_(saved[key])
