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

With ``save_pretrained(folder, adapter_only=True)`` (``--peft.save_adapter_only=true``) only peft's
files are written (with ``config.json`` ``use_peft=true`` and the processor files), as LeRobot 0.6.1's
own PEFT runs write their checkpoints: ``adapter_config.json`` names the base checkpoint in
``base_model_name_or_path`` (``config.json`` in ``pretrained_path``). ``from_pretrained`` on such a
folder (and ``--policy.path``) builds the policy from that base and adds the adapters with
:func:`apply_adapter`; see ``PreTrainedPolicy.from_pretrained`` for where the base may be.
``lerobot-train --policy.path=<such a folder>`` (without ``--peft.*``) trains those adapters on.
"""

from __future__ import annotations

import contextlib
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
    save_adapter_only: bool = False
    """Checkpoints hold only the adapters (no ``model.safetensors``), as LeRobot 0.6.1 saves a PEFT run:
    small, but loading them needs the base checkpoint and peft."""

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
    unmatched = _train_only_adapters_and(policy, full)
    if unmatched:
        raise ValueError(
            f"--peft.full_training_modules: {unmatched} name no module of {type(policy).__name__}."
        )
    policy._peft_config = lora
    return policy


def _train_only_adapters_and(policy: nn.Module, full: list[str]) -> list[str]:
    """Freeze ``policy`` but its LoRA tensors and the modules named (by suffix) in ``full``; returns the
    names in ``full`` that match no module."""
    policy.requires_grad_(False)
    unmatched = []
    for suffix in full:
        modules = [m for n, m in policy.named_modules() if n == suffix or n.endswith("." + suffix)]
        if not modules:
            unmatched.append(suffix)
        for m in modules:
            m.requires_grad_(True)
    for name, p in policy.named_parameters():
        if ".lora_" in name:
            p.requires_grad_(True)
    return unmatched


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


def base_model_of(policy: nn.Module) -> str | None:
    """The checkpoint the adapters were added to: the base an adapter folder named when the policy was
    loaded from one (:func:`apply_adapter`), else the checkpoint ``from_pretrained`` loaded, else
    ``config.pretrained_path``. A local folder is named by its absolute path (a relative one would be
    read against the adapter folder)."""
    name = (
        getattr(policy, "_peft_base", None)
        or getattr(policy, "_loaded_from", None)
        or policy.config.pretrained_path
    )
    if name and Path(name).expanduser().is_dir():
        return str(Path(name).expanduser().resolve())
    return name


def save_adapter(policy: nn.Module, folder: Path) -> None:
    """Write peft's ``adapter_model.safetensors`` and ``adapter_config.json`` into ``folder``."""
    save_file(adapter_state_dict(policy), str(folder / ADAPTER_WEIGHTS_NAME), metadata={"format": "pt"})
    config = policy._peft_config.to_dict()
    config["base_model_name_or_path"] = base_model_of(policy)
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


def holds_adapter(folder: Path) -> bool:
    """Whether ``folder`` holds peft's adapter files (a LoRA fine-tuning checkpoint, ours or LeRobot's)."""
    return (folder / ADAPTER_CONFIG_NAME).is_file()


def read_adapter_config(folder: Path) -> dict[str, Any]:
    """``adapter_config.json`` as a dict; one clear error when it is not a LoRA adapter's."""
    path = folder / ADAPTER_CONFIG_NAME
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable peft adapter config: {e}") from e
    if not isinstance(config, dict):
        raise ValueError(f"{path} is not a peft adapter config (a JSON object with peft_type, r, ...).")
    kind = str(config.get("peft_type", "LORA")).upper()
    if kind != "LORA":
        raise ValueError(f"{path}: peft_type={kind!r}; only LORA adapters load here.")
    return config


def base_model_name(folder: Path) -> str | None:
    """The base checkpoint an adapter folder names: peft's ``base_model_name_or_path`` in
    ``adapter_config.json``, else LeRobot's ``pretrained_path`` in its ``config.json`` (both hold the same
    name in the folders LeRobot 0.6.1 writes)."""
    name = read_adapter_config(folder).get("base_model_name_or_path")
    if not name and (folder / "config.json").is_file():
        with contextlib.suppress(OSError, ValueError):
            name = json.loads((folder / "config.json").read_text()).get("pretrained_path")
    return str(name) if name else None


def apply_adapter(policy: nn.Module, folder: Path, base_model: str | None = None) -> None:
    """Add the LoRA adapters an adapter folder describes to ``policy`` (its base already loaded) and load
    their weights: peft's ``inject_adapter_in_model`` with the folder's ``adapter_config.json``, peft's
    ``set_peft_model_state_dict`` with ``adapter_model.safetensors``.

    peft's ``modules_to_save`` (modules trained in full beside the adapters) are loaded into the policy's
    own modules rather than into peft's wrapper copies, so the state-dict names stay the policy's and
    training continues them as :func:`wrap_with_peft` would. Every tensor in the file must find its
    place and every adapter its tensor; otherwise one error names both sets. ``base_model``: the name
    of the base, kept so that a later save names it again.
    """
    peft = _import_peft()
    read_adapter_config(folder)
    weights = folder / ADAPTER_WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{folder} has {ADAPTER_CONFIG_NAME} but no {ADAPTER_WEIGHTS_NAME}.")
    lora = peft.LoraConfig.from_pretrained(str(folder))
    full = list(lora.modules_to_save or [])
    lora.modules_to_save, lora.inference_mode = None, False  # trained in place; see the docstring
    try:
        peft.inject_adapter_in_model(lora, policy)
    except ValueError as e:
        raise ValueError(
            f"{folder / ADAPTER_CONFIG_NAME}: target_modules={lora.target_modules!r} matches no layer of "
            f"{type(policy).__name__}: {e}. Is this adapter for another policy?"
        ) from e
    unmatched = _train_only_adapters_and(policy, full)
    saved = {k.removeprefix(_PEFT_PREFIX): v for k, v in load_file(str(weights)).items()}
    params = dict(policy.named_parameters())
    wanted = {n.replace(".default.", "."): n for n, p in params.items() if p.requires_grad}
    missing, unexpected = sorted(wanted.keys() - saved.keys()), sorted(saved.keys() - wanted.keys())
    if unmatched or missing or unexpected:
        raise ValueError(
            f"{weights} does not fit {type(policy).__name__} with the adapters {ADAPTER_CONFIG_NAME} describes: "
            f"modules_to_save {unmatched} name no module; missing {missing[:5]}, unexpected {unexpected[:5]}. "
            "Check that adapter_config.json's base_model_name_or_path is the checkpoint these adapters were "
            "trained on."
        )
    lora_state = {k: v for k, v in saved.items() if ".lora_" in k}
    peft.set_peft_model_state_dict(policy, lora_state)
    with torch.no_grad():
        for key, value in saved.items():
            if key not in lora_state:
                params[wanted[key]].copy_(value)
    lora.modules_to_save = full or None
    policy._peft_config = lora
    policy._peft_base = base_model
