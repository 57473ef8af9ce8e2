"""Peak host memory of SmolVLA fine-tuning at the shared fixture's size: full, expert-only, LoRA.

Each mode runs in a fresh process (so peaks do not mix): load ``peer_smolvla_checkpoint``, optionally
add LoRA adapters (``lerobot.policies.peft_adapters``, r=8, SmolVLA's default targets), then a few
AdamW steps on a batch of 8. Reported: trainable parameters, the process's peak RSS (``ru_maxrss``)
and how far training raised it above the RSS after loading (weights, gradients, optimizer state and
activations; the CPU allocator counts too), and the float32 bytes of gradients + AdamW state
(3 tensors per trainable parameter), the part LoRA shrinks. Writes ``benchmarks/results/smolvla_lora_memory.json``.
Usage: ``python benchmarks/smolvla_lora_memory.py [steps]``.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "smolvla_lora_memory.json"
MODES = ("full", "expert_only", "lora")


def run_mode(mode: str, steps: int) -> dict:
    import os

    import psutil
    import torch

    from lerobot.policies.peft_adapters import PeftConfig, wrap_with_peft
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
    from policy_workloads import SMOLVLA_FIXTURE, make_smolvla_batch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    os.chdir(SMOLVLA_FIXTURE)
    policy = SmolVLAPolicy.from_pretrained(str(SMOLVLA_FIXTURE), train_expert_only=mode == "expert_only")
    if mode == "lora":
        wrap_with_peft(policy, PeftConfig(r=8))
    policy.train()
    loaded = psutil.Process().memory_info().rss
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    batch = make_smolvla_batch(8)
    for _ in range(steps):
        policy(batch)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "mode": mode,
        "trainable_params": sum(p.numel() for p in params),
        "total_params": sum(p.numel() for p in policy.parameters()),
        "peak_rss_mb": round(peak / 2**20, 1),
        "training_above_loaded_mb": round((peak - loaded) / 2**20, 1),
        "grads_and_adamw_state_mb": round(3 * 4 * sum(p.numel() for p in params) / 2**20, 2),  # float32
    }


def main() -> None:
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    if len(sys.argv) > 2:  # a child: one mode
        print(json.dumps(run_mode(sys.argv[2], steps)))
        return
    rows = []
    for mode in MODES:
        out = subprocess.run(
            [sys.executable, __file__, str(steps), mode], capture_output=True, text=True, check=True,
            cwd=Path(__file__).parent,
        )  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(rows[-1])
    RESULTS.write_text(
        json.dumps({"steps": steps, "batch_size": 8, "device": "cpu", "results": rows}, indent=2)
    )


if __name__ == "__main__":
    main()
