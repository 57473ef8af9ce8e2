"""SmolVLA at the shared fixture's size: training step and batch-1 ``select_action``, ours vs LeRobot 0.6.1.

Why: the issue's goal is "no slower than the reference" for the VLA users fine-tune. Both sides load
the same checkpoint (``../shared/fixtures/wave2/peer_smolvla_checkpoint``: SmolVLM2 architecture cut
to 4 text layers of width 64, expert width 48, chunk 10, 4 Euler steps, one 64x96 camera) and run,
in fresh processes of the same session, alternately (this 2-core host is shared and drifts):

- training step: batch 8 of raw samples with task strings -> (LeRobot: its preprocessor, i.e.
  tokenizer + normaliser) -> forward -> backward -> AdamW step with the policy's preset
  (``train_expert_only=True``, as the checkpoint says);
- inference: a fresh chunk for one observation + task, as a robot loop does when its queue is empty
  (ours: ``select_action`` tokenises and normalises itself; LeRobot: preprocessor + ``select_action``
  + postprocessor).

Usage::

    .venv/bin/python benchmarks/smolvla_speed.py --reference-python /tmp/refvenv/bin/python --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from policy_workloads import THREADS, measure  # noqa: E402

FIXTURE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "wave2" / "peer_smolvla_checkpoint"
TASKS = ["pick up the red cube", "place the cube in the bin"]


def _inputs(batch_size: int) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(0)
    return {
        "observation.state": torch.rand(batch_size, 6, generator=gen) * 4,
        "observation.images.front": torch.rand(batch_size, 3, 64, 96, generator=gen),
        "action": torch.rand(batch_size, 10, 6, generator=gen) * 4,
        "task": [TASKS[i % 2] for i in range(batch_size)],
    }


def run_side(side: str, warmup: int, repeats: int, threads: int) -> dict[str, Any]:
    """Time one library in this process (``side`` says which ``lerobot`` is importable)."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    os.chdir(FIXTURE)  # LeRobot resolves the relative backbone name against the working directory
    policy = SmolVLAPolicy.from_pretrained(str(FIXTURE))
    batch = _inputs(8)
    obs = {k: v[:1] for k, v in _inputs(1).items() if k != "action"}
    obs["task"] = TASKS[0]
    if side == "reference":
        from lerobot.policies.factory import make_pre_post_processors

        pre, post = make_pre_post_processors(policy.config, pretrained_path=str(FIXTURE))

        def loss() -> torch.Tensor:
            return policy.forward(pre(dict(batch)))[0]

        def infer() -> None:
            policy.reset()
            with torch.no_grad():
                post(policy.select_action(pre(dict(obs))))

        preset = policy.config.get_optimizer_preset()
        optimizer = preset.build(policy.get_optim_params())
    else:
        from lerobot.optim.optimizers import make_optimizer

        def loss() -> torch.Tensor:
            return policy.forward(batch)["loss"]

        def infer() -> None:
            policy.reset()
            policy.select_action(obs)

        optimizer = make_optimizer(policy.get_optim_params(), policy.config.get_optimizer_preset())

    def train_step() -> None:
        policy.train()
        optimizer.zero_grad(set_to_none=True)
        loss().backward()
        optimizer.step()

    def inference() -> None:
        policy.eval()
        infer()

    return measure(train_step, inference, warmup, repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reference-python", help="interpreter with lerobot==0.6.1[smolvla]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--threads", type=int, default=THREADS, help="torch threads (1 is steadier on a loaded shared host)"
    )
    parser.add_argument("--side", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help="also write the result JSON here")
    args = parser.parse_args()
    if args.side:
        print(json.dumps(run_side(args.side, args.warmup, args.repeats, args.threads)))
        return 0
    if not FIXTURE.is_dir():
        print(f"The fixture {FIXTURE} is absent (../shared is not in this clone).", file=sys.stderr)
        return 2
    sides = {"ours": sys.executable} | ({"reference": args.reference_python} if args.reference_python else {})
    rounds: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for _ in range(args.rounds):
        for name, python in sides.items():
            env = {**os.environ, "HF_HUB_OFFLINE": "1"}
            if name == "reference":
                env["PYTHONPATH"] = ""
            cmd = [python, __file__, f"--side={name}", f"--warmup={args.warmup}", f"--repeats={args.repeats}",
                   f"--threads={args.threads}"]  # fmt: skip
            run = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if run.returncode != 0:
                print(run.stderr[-3000:], file=sys.stderr)
                return 1
            rounds[name].append(json.loads(run.stdout.strip().splitlines()[-1]))
    summary = {
        name: {
            "train_step_s": statistics.median(r["train_step_s"] for r in results),
            "inference_ms": statistics.median(r["inference_ms"] for r in results),
        }
        for name, results in rounds.items()
    }
    report = {
        "threads": args.threads,
        "batch_train": 8,
        "summary": summary,
        "rounds": rounds,
        "load": os.getloadavg(),
    }
    print(json.dumps(summary, indent=2))
    if args.out is not None:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
