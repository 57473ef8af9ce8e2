"""What each piece of ``lerobot.policies.cpu_acceleration`` saves, measured in one process.

Why: the transform keeps a piece only if it saves at least 3% of a benchmarked step. On a shared,
drifting host only an in-process A/B with alternating rounds separates a few percent from noise:
one policy and one optimiser per workload (``policy_workloads.py``), whose modules are swapped
between variants (the accelerated modules share the stock parameters, so the optimiser stays
valid); each round times every variant in turn -- stock, all pieces, and all pieces but one --
and the report takes the median over rounds of each variant's per-round median.

A piece's saving is ``time(all but it) - time(all)``, as a share of ``time(all)``, per workload:
ACT and Diffusion training steps (batch 8, forward + backward + optimiser) and a fresh action
chunk at batch 1.

By default (``module_savings``) each piece is timed module call by module call instead, which
this host's drift does not swamp; ``--whole-steps`` runs the leave-one-out over whole steps.

Usage::

    OMP_WAIT_POLICY=ACTIVE .venv/bin/python benchmarks/cpu_acceleration.py
    OMP_WAIT_POLICY=ACTIVE .venv/bin/python benchmarks/cpu_acceleration.py --whole-steps --rounds 5
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared cores: sleep at OpenMP barriers, do not spin

import torch
from torch import Tensor, nn

from lerobot.policies import cpu_acceleration
from policies import workload
from policy_workloads import THREADS, make_observation

RESULTS = Path(__file__).parent / "results"


def children(module: nn.Module) -> list[tuple[nn.Module, str, nn.Module]]:
    return [(parent, name, child) for parent in module.modules() for name, child in parent.named_children()]


def set_variant(
    policy: nn.Module, stock: list[tuple[nn.Module, str, nn.Module]], pieces: tuple[str, ...]
) -> None:
    """Put the stock modules back, then accelerate with ``pieces`` (none: stock)."""
    for parent, name, child in stock:
        setattr(parent, name, child)
    if pieces:
        cpu_acceleration.accelerate(policy, pieces)


def timed(fn: Any, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(name: str, rounds: int, train_repeats: int, infer_repeats: int) -> dict[str, Any]:
    policy, train_step, _ = workload(name)
    observation = make_observation(name)
    stock = children(policy)

    used = [piece for piece in cpu_acceleration.PIECES if any(_applies(piece, m) for m in policy.modules())]
    variants = {
        "stock": (),
        "all": tuple(used),
        **{f"all but {p}": tuple(x for x in used if x != p) for p in used},
    }

    def infer() -> None:
        policy.reset()
        policy.predict_action_chunk(observation)

    workloads = {
        "train_step_s": (train_step, train_repeats, 1.0),
        "inference_ms": (infer, infer_repeats, 1e3),
    }
    runs: dict[str, dict[str, list[float]]] = {v: {} for v in variants}
    for round_index in range(rounds + 1):  # round 0 warms every variant up and is dropped
        for key, (fn, repeats, scale) in workloads.items():
            for variant, pieces in variants.items():
                left_out = set(used) - set(pieces)
                if variant.startswith("all but") and left_out <= _NOT_IN[key]:
                    continue  # the piece does nothing in this mode: "all" stands for it
                set_variant(policy, stock, pieces)
                median = timed(fn, 1 if round_index == 0 else repeats) * scale
                if round_index:
                    runs[variant].setdefault(key, []).append(median)
        print(f"{name}: round {round_index}/{rounds}", file=sys.stderr)
    for variant in variants:  # a piece idle in a mode costs what "all" costs there
        for key in workloads:
            runs[variant].setdefault(key, runs["all"][key])
    medians = {v: {k: statistics.median(x) for k, x in r.items()} for v, r in runs.items()}
    savings = {
        piece: {
            key: (medians[f"all but {piece}"][key] - medians["all"][key]) / medians["all"][key]
            for key in ("train_step_s", "inference_ms")
        }
        for piece in used
    }
    return {"pieces": used, "median": medians, "saving_share_of_accelerated": savings, "runs": runs}


def module_savings(name: str, reps: int, step_repeats: int) -> dict[str, Any]:
    """Each piece's saving summed over the module calls of one step, timed module by module.

    Whole steps on this shared host drift by more than the few percent at stake; a single module
    call, timed stock and accelerated in alternation on the exact inputs the step gave it, does not.
    Every (module, input shape) of a training step (forward + backward, the input's requires_grad as
    in the step) and of a batch-1 inference call (under inference_mode) is timed ``reps`` times
    each way; the saving is the difference of medians times the number of such calls per step,
    divided by the accelerated step's median time, measured in the same process.
    """
    policy, train_step, _ = workload(name)
    observation = make_observation(name)
    stock = children(policy)

    def infer() -> None:
        policy.reset()
        policy.predict_action_chunk(observation)

    used = [piece for piece in cpu_acceleration.PIECES if any(_applies(piece, m) for m in policy.modules())]
    calls: dict[str, dict[tuple[int, tuple[int, ...]], list[Any]]] = {}
    for key, fn in (("train_step_s", train_step), ("inference_ms", infer)):
        calls[key] = {}

        def record(module: nn.Module, args: tuple, key: str = key) -> None:
            x = args[0]
            entry = calls[key].setdefault((id(module), tuple(x.shape)), [module, None, x.requires_grad, 0])
            if entry[1] is None:
                entry[1] = x.detach().clone()
            entry[3] += 1

        swappable = [m for m in policy.modules() if any(_applies(piece, m) for piece in used)]
        handles = [m.register_forward_pre_hook(record) for m in swappable]
        fn()
        for handle in handles:
            handle.remove()

    def run_module(module: nn.Module, x: Tensor, requires_grad: bool, key: str) -> None:
        if key == "inference_ms":
            with torch.inference_mode():
                module(x)
            return
        out = module(x.requires_grad_(requires_grad))
        if out.requires_grad:
            out.backward(torch.ones_like(out))
        module.zero_grad(set_to_none=True)
        x.grad = None

    savings: dict[str, dict[str, float]] = {
        piece: {"train_step_s": 0.0, "inference_ms": 0.0} for piece in used
    }
    for key, recorded in calls.items():
        for module, x, requires_grad, count in recorded.values():
            for piece in used:
                if piece in _NOT_IN[key] or not _applies(piece, module):
                    continue
                twin = cpu_acceleration._accelerated(module, {piece})
                if twin is None:
                    continue
                twin.train(key == "train_step_s")
                module.train(key == "train_step_s")
                times: dict[str, list[float]] = {"stock": [], "accelerated": []}
                for rep in range(reps + 2):  # two warm-up calls each
                    for variant, m in (("stock", module), ("accelerated", twin)):
                        start = time.perf_counter()
                        run_module(m, x.clone(), requires_grad, key)
                        if rep >= 2:
                            times[variant].append(time.perf_counter() - start)
                saved = statistics.median(times["stock"]) - statistics.median(times["accelerated"])
                savings[piece][key] += saved * count * (1e3 if key == "inference_ms" else 1.0)
    cpu_acceleration.accelerate(policy)
    step = {
        "train_step_s": timed(train_step, step_repeats),
        "inference_ms": timed(infer, 2 * step_repeats) * 1e3,
    }
    set_variant(policy, stock, ())
    stock_step = {
        "train_step_s": timed(train_step, step_repeats),
        "inference_ms": timed(infer, 2 * step_repeats) * 1e3,
    }
    share = {piece: {k: v / step[k] for k, v in saved.items()} for piece, saved in savings.items()}
    return {
        "pieces": used,
        "accelerated_step": step,
        "stock_step": stock_step,
        "saved": savings,
        "saving_share_of_accelerated": share,
    }


_NOT_IN = {  # pieces that do nothing in a mode
    "train_step_s": {"conv2d_inference"},
    "inference_ms": {"dropout"},
}


def _applies(piece: str, module: nn.Module) -> bool:
    """Whether ``piece`` replaces this stock module."""
    stock = {"dropout": nn.Dropout, "conv2d_inference": nn.Conv2d, "conv1d": nn.Conv1d}[piece]
    return type(module) is stock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", default="act,diffusion")
    parser.add_argument(
        "--whole-steps", action="store_true", help="leave-one-out over whole steps (noisy on a shared host)"
    )
    parser.add_argument("--module-reps", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--train-repeats", type=int, default=2)
    parser.add_argument("--infer-repeats", type=int, default=6)
    args = parser.parse_args(argv)
    torch.set_num_threads(THREADS)
    load_before = os.getloadavg()
    results = {
        "benchmark": "cpu_acceleration",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu_count": os.cpu_count(),
            "torch_threads": THREADS,
            "torch": torch.__version__,
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "load_average_before": load_before,
        },
        "settings": vars(args),
        **{
            name: bench(name, args.rounds, args.train_repeats, args.infer_repeats)
            if args.whole_steps
            else module_savings(name, args.module_reps, args.train_repeats * args.rounds)
            for name in args.policies.split(",")
        },
    }
    results["machine"]["load_average_after"] = os.getloadavg()
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "cpu_acceleration" + ("_whole_steps" if args.whole_steps else "")
    if args.policies != parser.get_default("policies"):
        stem += "_" + args.policies.replace(",", "_")
    path = RESULTS / f"{stem}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2))
    tmp.replace(path)
    for name in args.policies.split(","):
        print(f"## {name}")
        steps = (
            results[name]["median"]
            if args.whole_steps
            else {"stock": results[name]["stock_step"], "all": results[name]["accelerated_step"]}
        )
        for variant, m in steps.items():
            print(
                f"{variant:28s} train {m['train_step_s'] * 1e3:7.1f} ms   inference {m['inference_ms']:6.1f} ms"
            )
        for piece, share in results[name]["saving_share_of_accelerated"].items():
            print(
                f"  {piece:20s} saves train {100 * share['train_step_s']:5.1f}%  inference {100 * share['inference_ms']:5.1f}%"
            )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
