"""π0 / π0.5 checkpoints both ways between this library and Hugging Face LeRobot 0.6.1, at tiny sizes.

Three checks, each on the same observation, instruction and flow noise:

1. ``ours -> LeRobot``: our tiny π0 and π0.5 (random weights, statistics, a tokenizer trained on a few
   sentences) saved with ``save_pretrained``; LeRobot loads the folder (weights and its own
   processor pipeline from our ``policy_preprocessor.json`` / ``policy_postprocessor.json``) and
   predicts the chunk; missing/unexpected keys are listed.
2. ``LeRobot -> ours`` for π0.5: LeRobot builds and saves a tiny π0.5 with its statistics and
   processors; we load it and predict the chunk.
3. Both chunks are compared in robot units (max absolute difference), and the training loss of a
   2-sample batch with fixed flow noise and time (mean over the real action dims).

LeRobot builds π0/π0.5 only at 3B (its variant names map to fixed sizes, SigLIP so400m and a
257k vocabulary are hard-coded), so its side is run with the same three substitutions the shared
π0 fixture's generator used (``get_gemma_config``, and the PaliGemma / expert configs shrunk
before the models are built), and ``variant_sizes`` -- a key it does not know -- is removed from the
config.json it reads. Its tokenizer step resolves a relative folder against the working
directory, so it runs inside the checkpoint folder. Nothing of that package is part of this project.

Usage (the reference interpreter needs LeRobot 0.6.1 and transformers; see ``reference_lerobot.py``)::

    .venv/bin/python benchmarks/pi_reference_roundtrip.py --reference-python /tmp/refvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

SIZES = {
    "vlm": {"width": 64, "depth": 2, "mlp_dim": 128, "num_heads": 8, "num_kv_heads": 1, "head_dim": 8},
    "action_expert": {
        "width": 32,
        "depth": 2,
        "mlp_dim": 64,
        "num_heads": 8,
        "num_kv_heads": 1,
        "head_dim": 8,
    },
    "vision": {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "patch_size": 8,
        "image_size": 32,
        "projection_dim": 64,
    },
    "vocab_size": 320,
}
COMMON = {
    "chunk_size": 10,
    "n_action_steps": 10,
    "max_state_dim": 8,
    "max_action_dim": 8,
    "num_inference_steps": 4,
    "image_resolution": [32, 32],
    "device": "cpu",
}
STATE_DIM, ACTION_DIM, IMAGE = 6, 6, (3, 48, 64)
CAMERA, STATE = "observation.images.front", "observation.state"
TASK = "pick up the red cube"
SENTENCES = [
    "pick up the red cube",
    "pick up the blue cube",
    "place the cube in the bin",
    "Task: , State: 0 1 2 3 4 5 6 7 8 9 ;\nAction: ",
]


def features() -> tuple[dict[str, Any], dict[str, Any]]:
    from lerobot.configs.types import FeatureType, PolicyFeature

    inputs = {
        STATE: PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
        CAMERA: PolicyFeature(FeatureType.VISUAL, IMAGE),
    }
    return inputs, {"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))}


def stats() -> dict[str, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(7)
    out = {}
    for name, dim in ((STATE, STATE_DIM), ("action", ACTION_DIM)):
        low, high = -torch.rand(dim, generator=gen) - 0.5, torch.rand(dim, generator=gen) + 0.5
        out[name] = {
            "mean": (low + high) / 2,
            "std": (high - low) / 4,
            "min": low,
            "max": high,
            "q01": low,
            "q99": high,
            "q10": low / 2,
            "q90": high / 2,
        }
    out[CAMERA] = {
        k: torch.full((3, 1, 1), v) for k, v in (("mean", 0.5), ("std", 0.25), ("min", 0.0), ("max", 1.0))
    }
    return out


def inputs() -> dict[str, Any]:
    gen = torch.Generator().manual_seed(3)
    return {
        "observation": {
            STATE: torch.rand(1, STATE_DIM, generator=gen) * 1.5 - 0.75,
            CAMERA: torch.rand(1, *IMAGE, generator=gen),
        },
        "noise": torch.randn(1, COMMON["chunk_size"], COMMON["max_action_dim"], generator=gen),
        "train": {
            STATE: torch.rand(2, STATE_DIM, generator=gen) * 1.5 - 0.75,
            CAMERA: torch.rand(2, *IMAGE, generator=gen),
            "action": torch.rand(2, COMMON["chunk_size"], ACTION_DIM, generator=gen) * 1.5 - 0.75,
            "task": [TASK, "place the cube in the bin"],
        },
        "train_noise": torch.randn(2, COMMON["chunk_size"], COMMON["max_action_dim"], generator=gen),
        "train_time": torch.tensor([0.3, 0.8]),
    }


def train_tokenizer(folder: Path) -> Path:
    """A byte-level BPE tokenizer that prepends <bos> and pads with <pad> = 0, as PaliGemma's does."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=SIZES["vocab_size"],
        special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    raw.train_from_iterator(SENTENCES * 4, trainer)
    raw.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 2)])
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>"
    )
    tok.save_pretrained(str(folder))
    return folder


# ---- our side ---------------------------------------------------------------------------------------
def ours_save(kind: str, folder: Path, tokenizer_dir: Path) -> None:
    from lerobot.policies.factory import get_policy_class
    from lerobot.policies.pi0 import PI0Config
    from lerobot.policies.pi05 import PI05Config
    from lerobot.policies.vla_common import load_tokenizer

    ins, outs = features()
    config_cls = {"pi0": PI0Config, "pi05": PI05Config}[kind]
    config = config_cls(
        input_features=ins, output_features=outs, variant_sizes=SIZES, tokenizer_max_length=48, **COMMON
    )
    torch.manual_seed(11)
    policy = get_policy_class(kind)(config, dataset_stats=stats())
    with torch.no_grad():  # norms and biases start at 0; give every tensor values that matter
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    policy.set_tokenizer(load_tokenizer(tokenizer_dir))
    policy.save_pretrained(folder)


def ours_predict(folder: Path) -> dict[str, Any]:
    """Our chunk (robot units) and training loss (fixed noise and time) for ``folder``."""
    from lerobot.policies.pretrained import PreTrainedPolicy

    policy = PreTrainedPolicy.from_pretrained(folder)
    data = inputs()
    chunk = policy.predict_action_chunk({**data["observation"], "task": TASK}, noise=data["noise"])
    with torch.no_grad():
        loss = policy.forward(data["train"], noise=data["train_noise"], time=data["train_time"])["loss"]
    return {"chunk": chunk.tolist(), "loss": loss.item()}


# ---- LeRobot 0.6.1's side (run by its interpreter) -----------------------------------------------------
def patch_reference_sizes(kind: str, sizes: dict[str, Any]) -> None:
    """Make LeRobot's π0/π0.5 build at ``sizes`` (it knows only the 3B ones)."""
    import importlib

    module = importlib.import_module(f"lerobot.policies.{kind}.modeling_{kind}")
    variant = {"gemma_2b": sizes["vlm"], "gemma_300m": sizes["action_expert"]}
    module.get_gemma_config = lambda name: module.GemmaConfig(**variant[name])
    vlm_cls, expert_cls = module.PaliGemmaForConditionalGenerationWithPiGemma, module.PiGemmaForCausalLM
    vlm_init, expert_init = vlm_cls.__init__, expert_cls.__init__
    vision = sizes["vision"]

    def shrink_vlm(self, config, *args, **kwargs):
        for key, value in vision.items():
            setattr(config.vision_config, key, value)
        config.vocab_size = config.text_config.vocab_size = sizes["vocab_size"]
        config.projection_dim = vision["projection_dim"]
        config.text_config.num_image_tokens = (vision["image_size"] // vision["patch_size"]) ** 2
        config.image_token_index = min(config.image_token_index, sizes["vocab_size"] - 1)
        vlm_init(self, config, *args, **kwargs)

    def shrink_expert(self, config, *args, **kwargs):
        config.vocab_size = sizes["vocab_size"]
        expert_init(self, config, *args, **kwargs)

    vlm_cls.__init__, expert_cls.__init__ = shrink_vlm, shrink_expert


def reference_policy_class(kind: str) -> Any:
    if kind == "pi0":
        from lerobot.policies.pi0.modeling_pi0 import PI0Policy

        return PI0Policy
    from lerobot.policies.pi05.modeling_pi05 import PI05Policy

    return PI05Policy


def reference_predict(kind: str, folder: Path) -> dict[str, Any]:
    """LeRobot loads ``folder`` (variant_sizes removed from a copy of config.json) and predicts."""
    from safetensors import safe_open

    from lerobot.policies.factory import make_pre_post_processors

    sizes = json.loads((folder / "config.json").read_text()).get("variant_sizes") or SIZES
    patch_reference_sizes(kind, sizes)
    work = Path(tempfile.mkdtemp()) / folder.name
    shutil.copytree(folder, work)
    config = json.loads((work / "config.json").read_text())
    config.pop("variant_sizes", None)
    (work / "config.json").write_text(json.dumps(config, indent=4))
    os.chdir(work)  # its tokenizer step resolves a relative folder against the working directory
    policy = reference_policy_class(kind).from_pretrained(str(work))
    policy.eval()
    with safe_open(str(work / "model.safetensors"), "pt") as f:
        file_keys = set(f.keys())
    model_keys = set(policy.state_dict())
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(work))
    data = inputs()
    batch = pre({**data["observation"], "task": TASK})
    with torch.no_grad():
        chunk = post(policy.predict_action_chunk(batch, noise=data["noise"]))
        # Its forward draws noise and time itself: the loss comes from its model's forward, as the
        # shared fixture's generator computed it (mean over the real action dims).
        train = pre(data["train"])
        images, image_masks = policy._preprocess_images(train)
        tokens = [v for k, v in train.items() if k.endswith("language.tokens")][0]
        token_mask = [v for k, v in train.items() if k.endswith("language.attention_mask")][0]
        pad = COMMON["max_action_dim"] - ACTION_DIM
        actions = torch.nn.functional.pad(train["action"], (0, pad))
        args = [images, image_masks, tokens, token_mask]
        if kind == "pi0":
            args.append(torch.nn.functional.pad(train[STATE], (0, COMMON["max_state_dim"] - STATE_DIM)))
        losses = policy.model.forward(*args, actions, data["train_noise"], data["train_time"])
    return {
        "missing": sorted(model_keys - file_keys),
        "unexpected": sorted(file_keys - model_keys),
        "chunk": chunk.tolist(),
        "loss": losses[..., :ACTION_DIM].mean().item(),
    }


def reference_save_pi05(folder: Path, tokenizer_dir: Path) -> None:
    """LeRobot builds a tiny π0.5 (its own random init), saves it with its processors."""
    import transformers

    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.pi05.configuration_pi05 import PI05Config

    patch_reference_sizes("pi05", SIZES)
    load = transformers.AutoTokenizer.from_pretrained
    transformers.AutoTokenizer.from_pretrained = lambda *a, **k: load(str(tokenizer_dir))
    ins, outs = features()
    config = PI05Config(input_features=ins, output_features=outs, tokenizer_max_length=48, **COMMON)
    torch.manual_seed(12)
    policy = reference_policy_class("pi05")(config)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    policy.save_pretrained(str(folder))
    pre, post = make_pre_post_processors(config, dataset_stats=stats())
    pre.save_pretrained(str(folder))
    post.save_pretrained(str(folder))


def reference_main(args: argparse.Namespace) -> None:
    out: dict[str, Any] = {}
    for kind in ("pi0", "pi05"):
        out[f"ours_{kind}"] = reference_predict(kind, args.work / f"ours_{kind}")
    reference_save_pi05(args.work / "ref_pi05", args.work / "tokenizer")
    out["ref_pi05"] = reference_predict("pi05", args.work / "ref_pi05")
    print(json.dumps(out))


# ---- driver -------------------------------------------------------------------------------------------
def adopt_reference_folder(folder: Path, tokenizer_dir: Path) -> None:
    """What LeRobot wrote names the Hub tokenizer and knows no sizes: point it at ours, add variant_sizes."""
    shutil.copytree(tokenizer_dir, folder / "tokenizer")
    path = folder / "policy_preprocessor.json"
    pipeline = json.loads(path.read_text())
    for step in pipeline["steps"]:
        if step.get("registry_name") == "tokenizer_processor":
            step["config"]["tokenizer_name"] = "tokenizer"
    path.write_text(json.dumps(pipeline, indent=2))
    config = json.loads((folder / "config.json").read_text())
    config["variant_sizes"] = SIZES
    (folder / "config.json").write_text(json.dumps(config, indent=4))


def max_diff(a: list, b: list) -> float:
    return float((torch.tensor(a) - torch.tensor(b)).abs().max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-python", help="interpreter with LeRobot 0.6.1 and transformers")
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint folders (printed)")
    parser.add_argument("--as-reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.as_reference:
        reference_main(args)
        return 0
    if not args.reference_python:
        parser.error("--reference-python is required")
    work = Path(tempfile.mkdtemp(prefix="pi_roundtrip_"))
    tokenizer_dir = train_tokenizer(work / "tokenizer")
    ours = {}
    for kind in ("pi0", "pi05"):
        ours_save(kind, work / f"ours_{kind}", tokenizer_dir)
        ours[kind] = ours_predict(work / f"ours_{kind}")
    env = {**os.environ, "PYTHONPATH": "", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [args.reference_python, str(Path(__file__).resolve()), "--as-reference", "--work", str(work)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(work),
    )
    if done.returncode != 0:
        print(done.stderr[-4000:], file=sys.stderr)
        return 1
    ref = json.loads(done.stdout.strip().splitlines()[-1])
    adopt_reference_folder(work / "ref_pi05", tokenizer_dir)
    ours_on_ref = ours_predict(work / "ref_pi05")
    report = {
        f"ours_{kind}_in_lerobot": {
            "missing_keys": ref[f"ours_{kind}"]["missing"],
            "unexpected_keys": ref[f"ours_{kind}"]["unexpected"],
            "max_abs_action_diff": max_diff(ours[kind]["chunk"], ref[f"ours_{kind}"]["chunk"]),
            "loss_ours_lerobot": [ours[kind]["loss"], ref[f"ours_{kind}"]["loss"]],
        }
        for kind in ("pi0", "pi05")
    }
    report["lerobot_pi05_in_ours"] = {
        "max_abs_action_diff": max_diff(ours_on_ref["chunk"], ref["ref_pi05"]["chunk"]),
        "loss_ours_lerobot": [ours_on_ref["loss"], ref["ref_pi05"]["loss"]],
    }
    if args.keep:
        report["folders"] = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
