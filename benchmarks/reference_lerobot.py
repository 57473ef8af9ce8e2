"""Times Hugging Face LeRobot 0.6.1's ACT, Diffusion Policy, VQ-BeT, TD-MPC and SmolVLA on ``policies.py``'s workloads.

Run by an interpreter that has LeRobot installed, never ours (both packages are called
``lerobot``); ``policies.py --reference-python PATH`` starts it between runs of our own code so
that both are measured in one session. It prints one JSON line: the schema of ``measure()``.

LeRobot 0.6.1 needs Python >= 3.12 and pins torch < 2.12, so it is installed apart, for example::

    ~/.pyenv/versions/3.12.1/bin/python -m venv /tmp/lerobot-ref
    /tmp/lerobot-ref/bin/pip install lerobot==0.6.1      # brings its own torch 2.11

Nothing from that package is part of this project; this file only calls its public API.
It times the same calls as ours: forward + backward + the policy's optimiser preset (as LeRobot's
training script builds it) at batch 8, and a fresh action chunk at batch 1, each through the
pre/post-processors ``make_pre_post_processors`` builds from the same statistics as ours
(``policy_workloads.make_stats``): LeRobot normalises there, ours inside the policy's own call (until
2026-12-07 this side left the processors out, so its normalisation went untimed). LeRobot's Diffusion
and VQ-BeT only predict through their observation queues, so each timed call empties the action queue
and calls ``select_action`` (which encodes every history frame, as it does when it runs a robot); TD-MPC
likewise (one frame; with ``use_mpc`` each call plans). SmolVLA is the shared fixture checkpoint, loaded
with ``from_pretrained``; its raw samples go through the processors LeRobot saved with it (tokenizer and
normaliser) inside each timed call, as our policy tokenises and normalises inside its own calls.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).parent))
from policy_workloads import (  # noqa: E402
    ACTION_DIM,
    CAMERA,
    CONFIGS,
    SMOLVLA_FIXTURE,
    STATE,
    STATE_DIM,
    TDMPC_IMAGE,
    TDMPC_IMAGE_SHAPE,
    THREADS,
    camera_shape,
    is_tdmpc,
    make_batch,
    make_observation,
    make_smolvla_batch,
    make_smolvla_observation,
    make_stats,
    mark_tokenizer_trained,
    measure,
)


def bench_smolvla(warmup: int, repeats: int, inference_only: bool) -> dict[str, Any]:
    """The fixture checkpoint: its preprocessor + forward + backward + the AdamW preset at batch 8, and
    preprocessor + ``select_action`` + postprocessor after a reset (a fresh chunk) at batch 1."""
    import os

    import lerobot
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy

    os.chdir(SMOLVLA_FIXTURE)  # LeRobot resolves the relative backbone name against the working directory
    torch.manual_seed(0)
    policy = SmolVLAPolicy.from_pretrained(str(SMOLVLA_FIXTURE))
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(SMOLVLA_FIXTURE))
    optimizer = policy.config.get_optimizer_preset().build(policy.get_optim_params())
    batch, observation = make_smolvla_batch(), make_smolvla_observation()

    def train_step() -> None:
        policy.train()
        loss = policy.forward(pre(dict(batch)))[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer() -> None:
        if policy.training:
            policy.eval()
        policy.reset()
        with torch.no_grad():
            post(policy.select_action(pre(dict(observation))))

    result = measure((lambda: None) if inference_only else train_step, infer, warmup, repeats)
    result["params"] = sum(p.numel() for p in policy.parameters())
    result["versions"] = {"lerobot": getattr(lerobot, "__version__", "?"), "torch": torch.__version__}
    return result


def bench(name: str, warmup: int, repeats: int, inference_only: bool = False) -> dict[str, Any]:
    if name == "smolvla":
        return bench_smolvla(warmup, repeats, inference_only)
    import lerobot
    from lerobot.configs.types import FeatureType, PolicyFeature
    from lerobot.policies.factory import make_pre_post_processors

    camera, image = CAMERA, camera_shape(name)
    if name == "act":
        from lerobot.policies.act.configuration_act import ACTConfig as Config
        from lerobot.policies.act.modeling_act import ACTPolicy as Policy
    elif name == "diffusion":
        from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig as Config
        from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy as Policy
    elif name == "vqbet":
        from lerobot.policies.vqbet.configuration_vqbet import VQBeTConfig as Config
        from lerobot.policies.vqbet.modeling_vqbet import VQBeTPolicy as Policy
    elif is_tdmpc(name):  # LeRobot's TD-MPC takes one square camera named observation.image
        from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig as Config
        from lerobot.policies.tdmpc.modeling_tdmpc import TDMPCPolicy as Policy

        camera, image = TDMPC_IMAGE, TDMPC_IMAGE_SHAPE
    else:
        raise ValueError(f"No reference workload for {name!r}; choose from {sorted(CONFIGS)}.")

    config = Config(
        input_features={
            camera: PolicyFeature(FeatureType.VISUAL, image),
            STATE: PolicyFeature(FeatureType.STATE, (STATE_DIM,)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (ACTION_DIM,))},
        device="cpu",
        **CONFIGS[name],
    )
    torch.manual_seed(0)
    policy = Policy(config)
    if name == "vqbet":
        mark_tokenizer_trained(policy)
    # LeRobot normalises in processors outside the policy, ours inside it: both sides time the same work.
    pre, post = make_pre_post_processors(config, dataset_stats=make_stats(config))
    optimizer = config.get_optimizer_preset().build(policy.get_optim_params())
    batch = make_batch(name)

    def train_step() -> None:
        policy.train()
        loss = policy.forward(pre(dict(batch)))[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    observation = make_observation(name)
    policy.eval()

    def infer() -> None:
        if policy.training:  # after the timed training steps: act as at run time
            policy.eval()
        if name == "act":
            post(policy.predict_action_chunk(pre(dict(observation))))
        else:  # Diffusion, VQ-BeT and TD-MPC act through their queues: empty it so that each call computes
            policy._queues["action"].clear()
            post(policy.select_action(pre(dict(observation))))

    result = measure((lambda: None) if inference_only else train_step, infer, warmup, repeats)
    result["params"] = sum(p.numel() for p in policy.parameters())
    result["versions"] = {"lerobot": getattr(lerobot, "__version__", "?"), "torch": torch.__version__}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", default="act,diffusion,vqbet")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--inference-only", action="store_true", help="time inference only (export.py)")
    args = parser.parse_args()
    torch.set_num_threads(THREADS)
    results = {
        name: bench(name, args.warmup, args.repeats, args.inference_only) for name in args.policies.split(",")
    }
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
