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
2. Compute with our code, from fixed inputs: the action chunk from a fixed flow noise (robot units),
   three ``select_action`` outputs and the training loss for fixed noise and time.
3. Start ``--reference-python`` (an interpreter with ``lerobot==0.6.1[smolvla]``) in the saved folder:
   it loads the policy with ``SmolVLAPolicy.from_pretrained`` and the processors with
   ``make_pre_post_processors(config, pretrained_path=folder)`` and computes the same outputs.
4. Print the largest differences as JSON; exit 1 if any exceeds 1e-4.

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
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO.parent / "shared" / "fixtures" / "wave2" / "peer_smolvla_checkpoint"
TOLERANCE = 1e-4

# Run by the reference interpreter with cwd = the saved checkpoint (LeRobot resolves the relative
# backbone name against the working directory). Reads inputs.pt, writes outputs.json.
REFERENCE_CHILD = r"""
import json, sys, torch
from lerobot.policies.factory import make_pre_post_processors
from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

folder = sys.argv[1]
inputs = torch.load(sys.argv[2])
policy = SmolVLAPolicy.from_pretrained(folder)
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
    out["select"] = [post(policy.select_action(pre(dict(obs)), noise=inputs["noise"])).tolist() for _ in range(3)]
    train = pre({**inputs["train"], "task": inputs["train_task"]})
    policy.train()
    loss = policy.forward(train, noise=inputs["train_noise"], time=inputs["train_time"])[0]
    out["loss"] = float(loss)
print(json.dumps(out))
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


def ours(folder: Path, inputs: dict) -> dict:
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    policy = SmolVLAPolicy.from_pretrained(folder, device="cpu")
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", required=True, help="interpreter with lerobot==0.6.1[smolvla]")
    parser.add_argument("--out", type=Path, help="also write the result JSON here")
    args = parser.parse_args()
    if not FIXTURE.is_dir():
        print(f"The fixture {FIXTURE} is absent (../shared is not in this clone).", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ours_smolvla"
        perturbed_checkpoint(folder)
        inputs = fixed_inputs()
        torch.save(inputs, Path(tmp) / "inputs.pt")
        mine = ours(folder, inputs)
        run = subprocess.run(
            [args.reference_python, "-c", REFERENCE_CHILD, str(folder), str(Path(tmp) / "inputs.pt")],
            cwd=folder,
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": ""},
        )
        if run.returncode != 0:
            print(run.stderr[-4000:], file=sys.stderr)
            return 2
        theirs = json.loads(run.stdout.strip().splitlines()[-1])
    diffs = {
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
    print(json.dumps(diffs, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(diffs, indent=2) + "\n")
    ok = (
        diffs["lang_tokens_equal"]
        and diffs["chunk_max_abs_diff"] <= TOLERANCE
        and diffs["select_action_max_abs_diff"] <= TOLERANCE
        and abs(mine["loss"] - theirs["loss"]) <= TOLERANCE
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
