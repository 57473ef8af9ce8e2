"""A SmolVLA checkpoint saved by this library loads in Hugging Face LeRobot 0.6.1 and acts alike.

Why: users move checkpoints between the two libraries (fine-tune here, deploy with LeRobot's async
server, or the reverse). The reverse direction -- LeRobot's checkpoint loading here -- is a unit
test (tests/policies/smolvla/test_smolvla_parity.py); this direction needs LeRobot itself, so it is
a script, run by our interpreter, that starts the reference interpreter as a black box.

Steps:
1. Load the shared tiny SmolVLA fixture with our code, replace every weight with new seeded random
   values and the normalisation statistics with new ones (so nothing the reference wrote is reused),
   and ``save_pretrained`` it: config.json, model.safetensors, the processor pipelines (rename, batch,
   newline, tokenizer, device, normaliser) and the backbone/tokenizer folder the config names.
2. Fine-tune that checkpoint with LoRA as a user does (``lerobot-train --policy.path=<it>
   --peft.method_type=LORA --peft.r=4``, 3 steps on a tiny dataset with the fixture's features). Its
   ``pretrained_model/`` holds ``model.safetensors`` with the adapters folded in (``use_peft=false``)
   and peft's ``adapter_config.json`` + ``adapter_model.safetensors`` (naming the base checkpoint in
   ``base_model_name_or_path``; LeRobot 0.6.1's own PEFT runs write only these, which
   ``smolvla_reference_adapter.py`` checks in both directions).
3. Compute with our code, from fixed inputs: the action chunk from a fixed flow noise (robot units),
   three ``select_action`` outputs and the training loss for fixed noise and time, for both folders.
4. Start ``--reference-python`` (an interpreter with ``lerobot==0.6.1[smolvla,peft]``) in each folder:
   it loads the processors with ``make_pre_post_processors(config, pretrained_path=folder)`` and the
   policy with ``SmolVLAPolicy.from_pretrained``; the LoRA folder also through ``make_policy`` (what
   ``--policy.path`` does in its scripts) and through ``peft.PeftModel.from_pretrained(<base policy>,
   folder)`` (one base, several adapters); each computes the same outputs.
5. Print the largest differences as JSON; exit 1 if any exceeds 1e-4.

Usage::

    .venv/bin/python benchmarks/smolvla_reference_roundtrip.py --reference-python /tmp/refvenv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "fixtures" / "wave2" / "peer_smolvla_checkpoint"
TOLERANCE = 1e-4
REPO_ID, TASKS = "local/roundtrip", ["pick up the red cube", "place the cube in the bin"]
LORA_RANK = 4
# How a LeRobot user loads a fine-tuned folder: the policy class, the factory behind --policy.path, and
# peft's own adapter loading on top of the base checkpoint the adapter names.
LORA_LOADERS = ["from_pretrained", "make_policy", "peft_adapter"]

# Run by the reference interpreter with cwd = the saved checkpoint (LeRobot resolves the relative
# backbone name against the working directory). Reads inputs.pt, writes outputs.json.
REFERENCE_CHILD = r"""
import json, sys, torch
from lerobot.configs.policies import PreTrainedConfig
from lerobot.policies.factory import make_policy, make_pre_post_processors
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

folder, inputs_path, loaders = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
inputs = torch.load(inputs_path)


def load(how):
    if how == "from_pretrained":  # the policy class, as the SmolVLA docs load a checkpoint
        return SmolVLAPolicy.from_pretrained(folder)
    if how == "make_policy":  # what lerobot-eval / lerobot-record do with --policy.path
        from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

        cfg = PreTrainedConfig.from_pretrained(folder)
        cfg.pretrained_path = folder
        return make_policy(cfg, ds_meta=LeRobotDatasetMetadata("local/roundtrip", root=sys.argv[4]))
    if how == "peft_adapter":  # peft's own path: the base checkpoint + this folder's adapter files
        from peft import PeftModel

        base = json.load(open(f"{folder}/adapter_config.json"))["base_model_name_or_path"]
        return PeftModel.from_pretrained(SmolVLAPolicy.from_pretrained(base), folder)
    raise ValueError(how)


def outputs(policy):
    policy.eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=folder)
    obs = {**inputs["observation"], "task": inputs["task"]}
    out = {}
    with torch.no_grad():
        batch = pre(dict(obs))
        out["lang_tokens"] = batch["observation.language.tokens"].tolist()
        chunk = policy.predict_action_chunk(batch, noise=inputs["noise"])
        out["chunk"] = post(chunk).tolist()
        policy.reset()
        out["select"] = [
            post(policy.select_action(pre(dict(obs)), noise=inputs["noise"])).tolist() for _ in range(3)
        ]
        train = pre({**inputs["train"], "task": inputs["train_task"]})
        policy.train()
        out["loss"] = float(policy.forward(train, noise=inputs["train_noise"], time=inputs["train_time"])[0])
    return out


print(json.dumps({how: outputs(load(how)) for how in loaders}))
"""


def perturbed_checkpoint(folder: Path) -> None:
    """Our save of the fixture's architecture with new seeded weights and statistics."""
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    policy = SmolVLAPolicy.from_pretrained(FIXTURE, device="cpu")
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for param in policy.model.parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.1)
    features = {**policy.config.input_features, **policy.config.output_features}
    stats = {}
    for name, ft in features.items():
        shape = (ft.shape[0], 1, 1) if name.startswith("observation.images") else ft.shape
        mean = torch.rand(shape, generator=gen) * 3
        stats[name] = {
            "mean": mean,
            "std": 0.5 + torch.rand(shape, generator=gen),
            "min": mean - 4,
            "max": mean + 4,
        }
    policy.set_normalization_stats(stats)
    policy.save_pretrained(folder)


def fixed_inputs() -> dict:
    gen = torch.Generator().manual_seed(11)
    obs = {
        "observation.state": torch.rand(1, 6, generator=gen) * 4,
        "observation.images.front": torch.rand(1, 3, 64, 96, generator=gen),
    }
    train = {
        "observation.state": torch.rand(2, 6, generator=gen) * 4,
        "observation.images.front": torch.rand(2, 3, 64, 96, generator=gen),
        "action": torch.rand(2, 10, 6, generator=gen) * 4,
    }
    return {
        "observation": obs,
        "task": "pick up the red cube",
        "noise": torch.randn(1, 10, 8, generator=gen),
        "train": train,
        "train_task": ["pick up the red cube", "place the cube in the bin"],
        "train_noise": torch.randn(2, 10, 8, generator=gen),
        "train_time": torch.tensor([0.25, 0.9]),
    }


def ours(folder: Path, inputs: dict, load: Callable[[Path], Any] | None = None) -> dict:
    """Our outputs for ``inputs``, the policy loaded with ``load(folder)`` (default ``from_pretrained``)."""
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    policy = load(folder) if load else SmolVLAPolicy.from_pretrained(folder, device="cpu")
    obs = {**inputs["observation"], "task": inputs["task"]}
    tokens, _ = policy.prepare_language(policy.prepare_observation(obs))
    out = {"lang_tokens": tokens.tolist()}
    out["chunk"] = policy.predict_action_chunk(obs, noise=inputs["noise"]).tolist()
    policy.reset()
    out["select"] = [policy.select_action(obs, noise=inputs["noise"]).action.tolist() for _ in range(3)]
    policy.train()
    with torch.no_grad():
        batch = {**inputs["train"], "task": inputs["train_task"]}
        out["loss"] = float(
            policy.forward(batch, noise=inputs["train_noise"], time=inputs["train_time"])["loss"]
        )
    return out


def write_dataset(root: Path) -> None:
    """12 frames in 2 episodes with the fixture's features and two tasks (``REPO_ID`` at ``root``)."""
    import numpy as np

    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    features = {
        "observation.state": {"dtype": "float32", "shape": (6,), "names": None},
        "observation.images.front": {"dtype": "image", "shape": (64, 96, 3), "names": ["h", "w", "c"]},
        "action": {"dtype": "float32", "shape": (6,), "names": None},
    }
    dataset = LeRobotDataset.create(REPO_ID, fps=10, features=features, root=root, use_videos=False)
    rng = np.random.default_rng(0)
    for episode in range(2):
        for _ in range(6):
            frame = {
                "observation.state": rng.normal(size=6).astype(np.float32),
                "observation.images.front": rng.integers(0, 255, (64, 96, 3), dtype=np.uint8),
                "action": rng.normal(size=6).astype(np.float32),
            }
            dataset.add_frame(frame, task=TASKS[episode % 2])
        dataset.save_episode()
    dataset.finalize()


def lora_checkpoint(base: Path, work: Path) -> Path:
    """A tiny LoRA fine-tuning run of ours from ``base``, as a user runs it: a 6-frame-per-episode dataset
    with the fixture's features, ``lerobot-train --policy.path=base --peft.method_type=LORA --peft.r=4``,
    3 steps at a high learning rate so that the adapters (zero at the start) move, in the VLM and in the
    expert (the last VLM layer's query projection feeds nothing the actions use, so it stays at zero)."""
    from safetensors.torch import load_file

    from lerobot.scripts.train import run_training
    from lerobot.scripts.train_config import parse_train_config

    write_dataset(work / "dataset")
    flags = [
        f"--policy.path={base}", f"--dataset.repo_id={REPO_ID}", f"--dataset.root={work / 'dataset'}",
        f"--output_dir={work / 'run'}", "--steps=3", "--save_freq=3", "--batch_size=2", "--num_workers=0",
        "--seed=1", "--policy.device=cpu", "--policy.scheduler_warmup_steps=0", "--policy.optimizer_lr=1e-2",
        "--peft.method_type=LORA", f"--peft.r={LORA_RANK}", f"--peft.lora_alpha={2 * LORA_RANK}",
    ]  # fmt: skip
    folder = run_training(parse_train_config(flags)).checkpoint_dir / "pretrained_model"
    adapters = load_file(str(folder / "adapter_model.safetensors"))
    moved = {
        part
        for k, v in adapters.items()
        if ".lora_B." in k and v.any()
        for part in ("vlm", "lm_expert")
        if f".{part}." in k
    }
    if moved != {"vlm", "lm_expert"}:  # an untrained adapter adds nothing: the check would prove nothing
        raise RuntimeError(
            f"the LoRA run left the adapters of {sorted({'vlm', 'lm_expert'} - moved)} at zero"
        )
    return folder


def reference(
    python: str, folder: Path, inputs: Path, loaders: list[str], dataset: Path | None, cwd: Path | None = None
) -> dict:
    """The reference's outputs for ``folder``, loaded each way in ``loaders``; ``cwd``: the folder that holds
    the backbone folder the config names (default ``folder``)."""
    command = [python, "-c", REFERENCE_CHILD, str(folder), str(inputs), ",".join(loaders)]
    run = subprocess.run(
        [*command, *([str(dataset)] if dataset else [])],
        cwd=cwd or folder,  # LeRobot resolves the relative backbone name against the working directory
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""},
    )
    if run.returncode != 0:
        raise RuntimeError(f"the reference failed on {folder}:\n{run.stderr[-4000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def compare(mine: dict, theirs: dict) -> dict:
    return {
        "lang_tokens_equal": mine["lang_tokens"] == theirs["lang_tokens"],
        "chunk_max_abs_diff": float(
            (torch.tensor(mine["chunk"]) - torch.tensor(theirs["chunk"])).abs().max()
        ),
        "select_action_max_abs_diff": float(
            (torch.tensor(mine["select"]).flatten() - torch.tensor(theirs["select"]).flatten()).abs().max()
        ),
        "loss_ours": mine["loss"],
        "loss_reference": theirs["loss"],
    }


def acts_alike(diffs: dict) -> bool:
    return (
        diffs["lang_tokens_equal"]
        and diffs["chunk_max_abs_diff"] <= TOLERANCE
        and diffs["select_action_max_abs_diff"] <= TOLERANCE
        and abs(diffs["loss_ours"] - diffs["loss_reference"]) <= TOLERANCE
    )


def reference_parser(description: str) -> argparse.ArgumentParser:
    """The flags every LeRobot 0.6.1 comparison script takes: its interpreter and where to write JSON."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--reference-python", required=True, help="interpreter with lerobot==0.6.1[smolvla,peft]"
    )
    parser.add_argument("--out", type=Path, help="also write the result JSON here")
    return parser


def fixture_missing() -> bool:
    """True (after saying so) when the shared SmolVLA fixture these comparisons start from is absent."""
    if FIXTURE.is_dir():
        return False
    print(f"The fixture {FIXTURE} is absent (../shared is not in this clone).", file=sys.stderr)
    return True


def main() -> int:
    args = reference_parser(__doc__.split("\n")[0]).parse_args()
    if fixture_missing():
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        inputs = work / "inputs.pt"
        torch.save(fixed_inputs(), inputs)
        plain = work / "ours_smolvla"
        perturbed_checkpoint(plain)
        lora = lora_checkpoint(plain, work / "lora")
        try:
            theirs_plain = reference(args.reference_python, plain, inputs, ["from_pretrained"], None)
            theirs_lora = reference(
                args.reference_python, lora, inputs, LORA_LOADERS, work / "lora" / "dataset"
            )
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 2
        results = {
            "plain": compare(ours(plain, torch.load(inputs)), theirs_plain["from_pretrained"]),
            f"lora_r{LORA_RANK}": {
                how: compare(ours(lora, torch.load(inputs)), theirs_lora[how]) for how in LORA_LOADERS
            },
        }
    print(json.dumps(results, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(map(acts_alike, [results["plain"], *results[f"lora_r{LORA_RANK}"].values()])) else 1


if __name__ == "__main__":
    sys.exit(main())
