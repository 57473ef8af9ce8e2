"""LeRobot 0.6.1's adapter-only LoRA checkpoints load here and act alike, and ours load there.

Why: a PEFT run of Hugging Face LeRobot 0.6.1 saves only the adapters (``adapter_config.json`` +
``adapter_model.safetensors``, ``config.json`` with ``use_peft=true``, the processor files; no
``model.safetensors``), naming the base checkpoint it started from. Users who fine-tuned there must be
able to evaluate, deploy and keep fine-tuning here, and the reverse. The sibling
``smolvla_reference_roundtrip.py`` covers our folded-weights LoRA checkpoints; this one the adapter-only
layout, in both directions. Run by our interpreter; the reference interpreter runs as a black box.

Steps:
1. Copy the shared tiny SmolVLA fixture (a checkpoint LeRobot 0.6.1 wrote) as the base checkpoint and
   write a 12-frame dataset with its features.
2. The reference's own ``lerobot-train --policy.path=<base> --peft.method_type=LORA --peft.r=4`` (2 steps,
   learning rate 1e-2 so that the adapters move). What its ``pretrained_model/`` holds is recorded: file
   names, ``config.json``'s ``use_peft`` / ``pretrained_path``, ``adapter_config.json``'s fields and
   the adapter tensors' names and shapes.
3. From the fixture's own fixed inputs (its ``.expected.json``: observation, task, flow noise, a
   training batch with noise and time), the reference computes the action chunk, three
   ``select_action`` outputs and the loss, loading the folder with ``make_policy`` (its ``--policy.path``)
   and ``peft.PeftModel.from_pretrained(<base>, folder)`` (its ``SmolVLAPolicy.from_pretrained`` looks for
   ``model.safetensors`` and fails on its own adapter-only folders); we
   compute the same with ``SmolVLAPolicy.from_pretrained(folder)`` and ``make_policy`` (our
   ``--policy.path`` in lerobot-eval / lerobot-train).
4. The other direction: the folder loaded here is saved again with ``save_pretrained(adapter_only=True)``,
   and a LoRA run of ours (our ``lerobot-train --peft.*`` on the same base, the adapters added to the
   base with ``from_pretrained(<checkpoint>, base_model=<base>)``) likewise; the reference loads both.
5. Print the differences as JSON (``--out`` writes them, with the folder description, to a file;
   ``--fixture DIR`` also stores the reference's folder and its numbers as a test fixture). Exit 1 if
   any exceeds 1e-4.

Usage::

    .venv/bin/python benchmarks/smolvla_reference_adapter.py --reference-python /tmp/refvenv/bin/python \\
        --out benchmarks/results/smolvla_reference_adapter.json --fixture tests/fixtures/lerobot061_smolvla_lora
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from smolvla_reference_roundtrip import (
    FIXTURE,
    REPO_ID,
    acts_alike,
    compare,
    fixture_missing,
    lora_checkpoint,
    ours,
    reference,
    reference_parser,
    write_dataset,
)

LORA_RANK = 4
# The reference's own SmolVLAPolicy.from_pretrained does not load an adapter-only folder (it looks for
# model.safetensors); its --policy.path (make_policy) and peft's PeftModel.from_pretrained do.
REFERENCE_LOADERS = ["make_policy", "peft_adapter"]


def fixture_inputs() -> dict:
    """The shared fixture's fixed inputs, in the form ``ours`` and the reference child take."""
    raw = json.loads((FIXTURE.parent / f"{FIXTURE.name}.expected.json").read_text())["inputs"]
    train = raw["train_batch"]
    return {
        "observation": {k: torch.tensor(v) for k, v in raw["observation"].items()},
        "task": raw["task"],
        "noise": torch.tensor(raw["noise"]),
        "train": {
            "observation.state": torch.tensor(train["observation.state"]),
            "observation.images.front": torch.tensor(train["observation.images.front"]),
            "action": torch.tensor(train["action_unnormalized"]),
        },
        "train_task": train["task"],
        "train_noise": torch.tensor(train["noise"]),
        "train_time": torch.tensor(train["time"]),
    }


def reference_lora_run(python: str, base: Path, work: Path) -> Path:
    """The reference's PEFT fine-tuning of ``base``; its last ``pretrained_model/`` folder."""
    out = work / "reference_run"
    flags = [
        f"--policy.path={base}", f"--dataset.repo_id={REPO_ID}", f"--dataset.root={work / 'dataset'}",
        f"--output_dir={out}", "--steps=2", "--save_freq=2", "--batch_size=2", "--num_workers=0", "--seed=1",
        "--policy.device=cpu", "--policy.push_to_hub=false", "--wandb.enable=false",
        "--policy.scheduler_warmup_steps=0", "--policy.optimizer_lr=1e-2",
        "--peft.method_type=LORA", f"--peft.r={LORA_RANK}",
    ]  # fmt: skip
    run = subprocess.run(
        [str(Path(python).parent / "lerobot-train"), *flags],
        cwd=base,  # the reference resolves the base's relative backbone name against the working directory
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "WANDB_MODE": "offline"},
    )
    if run.returncode != 0:
        raise RuntimeError(f"the reference's lerobot-train failed:\n{run.stderr[-4000:]}")
    return out / "checkpoints" / "last" / "pretrained_model"


def describe(folder: Path, base: Path) -> dict:
    """What an adapter-only folder holds, with the base's path written as ``<base>``."""
    from safetensors import safe_open

    config = json.loads((folder / "config.json").read_text())
    adapter = json.loads((folder / "adapter_config.json").read_text())
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as f:
        tensors = {k: list(f.get_slice(k).get_shape()) for k in sorted(f.keys())}
        metadata = f.metadata()

    def anonymous(value: object) -> object:
        return "<base>" if value == str(base) else value

    return {
        "files": sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()),
        "config.json": {
            k: anonymous(config[k]) for k in ("type", "use_peft", "pretrained_path", "vlm_model_name")
        },
        "adapter_config.json": {k: anonymous(v) for k, v in adapter.items()},
        "adapter_model.safetensors": {"metadata": metadata, "tensors": tensors},
    }


def ours_via_make_policy(folder: Path, inputs: dict) -> dict:
    """``ours`` through what ``--policy.path=<folder>`` does in lerobot-eval: the folder's config, then
    ``make_policy`` (which calls ``from_pretrained`` with that config)."""
    from lerobot.policies.config import PreTrainedConfig
    from lerobot.policies.factory import make_policy

    config = PreTrainedConfig.from_pretrained(folder, device="cpu")
    config.pretrained_path = str(folder)
    return ours(folder, inputs, load=lambda _: make_policy(config))


def save_adapter_only(source: Path, target: Path, base_model: Path | None = None) -> Path:
    """Our adapter-only save of the policy ``from_pretrained(source, base_model=...)`` loads."""
    from lerobot.policies.peft_adapters import is_wrapped
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    policy = SmolVLAPolicy.from_pretrained(source, device="cpu", base_model=base_model)
    if not is_wrapped(policy):
        raise RuntimeError(f"{source} loaded without its adapters")
    return policy.save_pretrained(target, adapter_only=True)


def main() -> int:
    parser = reference_parser(__doc__.split("\n")[0])
    parser.add_argument("--fixture", type=Path, help="store the reference's folder and numbers here")
    args = parser.parse_args()
    if fixture_missing():
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        base = work / "base"
        shutil.copytree(FIXTURE, base)
        for path in [base, *base.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)  # the shared copy is read-only
        write_dataset(work / "dataset")
        inputs = work / "inputs.pt"
        torch.save(fixture_inputs(), inputs)
        theirs_folder = reference_lora_run(args.reference_python, base, work)
        ours_lora = lora_checkpoint(base, work / "ours")
        resaved = save_adapter_only(theirs_folder, work / "resaved_adapter")
        ours_adapter = save_adapter_only(ours_lora, work / "ours_adapter", base_model=base)
        folders = {
            "reference_adapter": (theirs_folder, base),  # (folder, cwd holding its backbone folder)
            "reference_adapter_resaved_here": (resaved, resaved),
            "our_lora_run_adapter_only": (ours_adapter, ours_adapter),
        }
        try:
            theirs = {
                name: reference(
                    args.reference_python, folder, inputs, REFERENCE_LOADERS, work / "dataset", cwd
                )
                for name, (folder, cwd) in folders.items()
            }
        except RuntimeError as e:
            print(e, file=sys.stderr)
            return 2
        results: dict = {"reference_writes": describe(theirs_folder, base)}
        for name, (folder, _) in folders.items():
            mine = {
                "from_pretrained": ours(folder, torch.load(inputs)),
                "make_policy": ours_via_make_policy(folder, torch.load(inputs)),
            }
            results[name] = {
                f"ours_{m}_vs_reference_{r}": compare(mine[m], theirs[name][r])
                for m in mine
                for r in REFERENCE_LOADERS
            }
        results["our_adapter_only_writes"] = describe(ours_adapter, base)
        if args.fixture is not None:
            store_fixture(theirs_folder, base, theirs["reference_adapter"]["make_policy"], args.fixture)
    print(json.dumps(results, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    comparisons = [c for name in folders for c in results[name].values()]
    return 0 if all(map(acts_alike, comparisons)) else 1


def store_fixture(folder: Path, base: Path, outputs: dict, target: Path) -> None:
    """The reference's adapter folder, as written, and ``<target>.expected.json`` with its numbers."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(folder, target)
    expected = {
        "written_by": "lerobot 0.6.1 (lerobot-train --peft.method_type=LORA --peft.r=4, 2 steps, lr 1e-2)",
        "base": f"../shared/fixtures/wave2/{FIXTURE.name} (named by its absolute path at training time)",
        "base_path_written": str(base),
        "inputs": f"{FIXTURE.name}.expected.json inputs (observation, task, noise, train_batch)",
        "how": "reference make_policy(PreTrainedConfig.from_pretrained(folder) with pretrained_path=folder) + "
        "make_pre_post_processors(config, pretrained_path=folder), cwd = the base folder: chunk = post(predict_action_chunk(pre(obs), noise)); select = 3x post(select_action(pre(obs), "
        "noise)) after reset(); loss = forward(pre(train_batch), noise=train.noise, time=train.time)[0] in train mode",
        "outputs": outputs,
    }
    target.with_name(f"{target.name}.expected.json").write_text(json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
