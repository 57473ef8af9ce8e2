"""Batch-1 inference latency and model size of exported policies on this CPU, beside the eager ones.

Why: a policy runs on the robot's own computer, often a small CPU, where eager PyTorch is slow. The
goal (issue 22): ONNX Runtime at least 2x faster than Hugging Face LeRobot 0.6.1 eager at batch 1,
and int8 at least 2x smaller than the float32 model.

For ACT and Diffusion on ``policies.py``'s workloads (``policy_workloads.py``: one 96x96 camera,
6-D state and action; ACT dim 256, chunk 20; Diffusion down_dims [64, 128, 256], 10 DDIM steps),
each round times, in one fresh process, one fresh action chunk at batch 1 of

- ``eager``: our policy, stock modules (``predict_action_chunk``; Diffusion encodes the new frame only,
  the previous one's features are kept);
- ``eager_accelerated``: the same after ``cpu_acceleration.accelerate`` (what the scripts run on CPU);
- ``onnxruntime_fp32`` / ``onnxruntime_int8``: ``lerobot.export`` artefacts in ONNX Runtime (stateless:
  Diffusion encodes both history frames every call, as LeRobot's own Diffusion does; its noise is drawn
  by the caller and included).

The vision-language-action policies (``--policies smolvla,pi0,pi05``: SmolVLA is the shared fixture
checkpoint, π0 / π0.5 the π0 fixture's tiny sizes, as in ``policies.py``) are timed as ``policies.py``
times them: ``eager`` / ``eager_accelerated`` = ``reset`` + ``select_action`` on a raw observation and
its task (a fresh chunk, tokenising and normalising included); ``onnxruntime_fp32`` = ``ExportedModel``
given the task string, so the runtime's tokenising is timed too, and ``onnxruntime_fp32_pretokenised``
the graph alone on the token ids and mask made outside the timed call. Their int8 export is refused
by ``lerobot.export`` (not validated yet): reported as ``refused`` with the reason, not timed.

Then, with ``--reference-python``, LeRobot 0.6.1 eager in its own process (``reference_lerobot.py
--inference-only``; SmolVLA through the processors saved with the checkpoint, π0 / π0.5 ours only:
LeRobot builds them only at 3B). Each side uses ``policy_workloads.THREADS`` threads (torch and ONNX
Runtime). The report takes the median over rounds of each round's medians, and for ONNX Runtime vs
LeRobot also each round's own ratio. Sizes: the eager model's parameters and buffers, and each
artefact's files (a VLA's ONNX weights are in ``model.onnx.data``, beside the graph).

Usage::

    .venv/bin/python benchmarks/export.py --reference-python /tmp/refvenv/bin/python --rounds 3
    .venv/bin/python benchmarks/export.py --quick        # smoke run, results to results/tmp/
    .venv/bin/python benchmarks/export.py --policies smolvla,pi0,pi05 --reference-python ...  # the VLAs
    .venv/bin/python benchmarks/export.py --ort-variants spinning,batch1,threads1  # session settings A/B
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared cores: sleep at OpenMP barriers, do not spin

import numpy as np
import torch

from lerobot.export import ExportedModel, export_policy
from lerobot.export.exporter import graph_for
from lerobot.policies.cpu_acceleration import accelerate
from lerobot.policies.factory import get_policy_class
from policies import fresh_chunk, make_config, make_stats, run_json, vla_workload
from policy_workloads import (
    OURS_ONLY,
    THREADS,
    VLAS,
    make_batch,
    make_observation,
    timed,
    without_missing_fixtures,
)

RESULTS = Path(__file__).parent / "results"
VARIANTS = ("eager", "eager_accelerated", "onnxruntime_fp32", "onnxruntime_int8")
# --ort-variants: the fp32 model in sessions built otherwise than ``ExportedModel`` builds them, timed in the
# same round as it (the "before"), to find session settings worth making the runtime's default.
ORT_VARIANTS: dict[str, Callable[[Any], None]] = {
    # the batch axis fixed at 1: ONNX Runtime folds the Shape -> Gather -> Concat -> Reshape chains that the
    # dynamic batch axis leaves (Diffusion's GroupNorms have one each, in every denoising step)
    "batch1": lambda options: options.add_free_dimension_override_by_name("batch", 1),
    # worker threads spin while waiting for work (ONNX Runtime's default; ExportedModel turns it off under
    # OMP_WAIT_POLICY=PASSIVE, which this script sets unless told otherwise) or sleep
    "spinning": lambda options: options.add_session_config_entry("session.intra_op.allow_spinning", "1"),
    "no_spinning": lambda options: options.add_session_config_entry("session.intra_op.allow_spinning", "0"),
    "threads1": lambda options: setattr(options, "intra_op_num_threads", 1),
    "denormals_as_zero": lambda options: options.add_session_config_entry(
        "session.set_denormal_as_zero", "1"
    ),
}


def exported_inputs(model: ExportedModel, sample: dict[str, Any]) -> dict[str, Any]:
    """A batch-1 ``sample`` as the export takes it: history, cameras uint8 HWC, the random draws, and a VLA's
    instruction as ``"task"`` (the runtime tokenises it, as ``lerobot-deploy`` runs an exported VLA)."""
    rng = np.random.default_rng(0)
    tokenised = (model.metadata.get("instruction") or {}).get("inputs", ())
    inputs: dict[str, Any] = {"task": sample["task"]} if tokenised else {}
    for spec in model.inputs:
        if spec["name"] in tokenised:
            continue
        shape = (1, *spec["shape"][1:])
        if spec["random"]:
            uniform = spec.get("distribution") == "uniform"
            draw = rng.random if uniform else rng.standard_normal
            inputs[spec["name"]] = draw(shape, dtype=np.float32)
            continue
        x = sample[spec["name"]]
        if x.dim() == len(spec["shape"]) + 1:  # a history the export does not take: its latest frame
            x = x[:, -1]
        if spec["dtype"] == "uint8":  # a camera, in its own format
            x = (x * 255).round().to(torch.uint8).movedim(-3, -1)
        inputs[spec["name"]] = x.numpy()
    return inputs


Act = Callable[[Any, dict[str, Any]], Any]  # (policy, observation) -> one fresh action chunk


def eager_workload(name: str) -> tuple[Any, dict[str, Any], Act, dict[str, Any]]:
    """The policy (seeded, eval mode), its batch-1 observation, the eager call timed on it, and the sample
    its export is given (``make_batch``'s history for Diffusion / VQ-BeT; a VLA's observation and task)."""
    if name in VLAS:
        policy, _, observation = vla_workload(name)
        return policy.eval(), observation, fresh_chunk, observation
    config = make_config(name)
    torch.manual_seed(0)
    policy = get_policy_class(name)(config, dataset_stats=make_stats(config)).eval()
    return policy, make_observation(name), lambda p, o: p.predict_action_chunk(o), make_batch(name, 1)


def ort_variant(artefact: Path, variant: str) -> Any:
    """An ONNX Runtime session as ``ExportedModel`` builds it (all graph optimisations, THREADS intra-op
    threads, no spinning under OMP_WAIT_POLICY=PASSIVE), changed as ``ORT_VARIANTS[variant]`` says."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = THREADS
    if os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" and "spinning" not in variant:
        ORT_VARIANTS["no_spinning"](options)
    ORT_VARIANTS[variant](options)
    return ort.InferenceSession(str(artefact), options, providers=["CPUExecutionProvider"])


def one_round(
    names: list[str],
    warmup: int,
    repeats: int,
    folder: Path,
    int8_tolerance: float,
    ort_variants: list[str] = (),
) -> dict[str, Any]:
    """Every variant of every policy, timed in this process; the exports are made on the first round."""
    torch.set_num_threads(THREADS)
    out: dict[str, Any] = {}
    for name in names:
        policy, observation, act, sample = eager_workload(name)
        result: dict[str, Any] = {}
        result["eager"] = timed(functools.partial(act, policy, observation), warmup, repeats)
        fast = accelerate(copy.deepcopy(policy)).eval()
        result["eager_accelerated"] = timed(functools.partial(act, fast, observation), warmup, repeats)
        sizes = {
            "eager_fp32_bytes": sum(
                t.numel() * t.element_size() for t in [*policy.parameters(), *policy.buffers()]
            )
        }
        for fmt in ("onnx", "int8"):
            variant = "onnxruntime_fp32" if fmt == "onnx" else "onnxruntime_int8"
            try:
                graph_for(policy, fmt)
            except (
                ValueError
            ) as e:  # a format this policy does not take (the VLAs' int8): reported, not timed
                result[variant] = {"refused": str(e)}
                continue
            target = folder / f"{name}_{fmt}"
            if not (target / "metadata.json").is_file():  # export_policy writes it once parity has passed
                export_policy(policy, format=fmt, output=target, int8_tolerance=int8_tolerance)
            model = ExportedModel(target, threads=THREADS)
            inputs = exported_inputs(model, sample)
            result[variant] = timed(lambda m=model, x=inputs: m(x), warmup, repeats)
            arrays = model.check_inputs(inputs)  # the graph's own inputs: a VLA's task as token ids + mask
            if "task" in inputs:  # the graph alone, the instruction tokenised outside the timed call
                result[f"{variant}_pretokenised"] = timed(lambda m=model, x=arrays: m(x), warmup, repeats)
            meta = json.loads((target / "metadata.json").read_text())
            sizes[f"{variant}_bytes"] = meta["file_bytes"]  # the model and its external data (VLAs)
            result[f"{variant}_parity"] = meta["parity"]
            for other in ort_variants if fmt == "onnx" else ():
                session = ort_variant(target / meta["file"], other)
                if not np.allclose(session.run(None, arrays)[0], model(arrays), atol=1e-5):
                    raise RuntimeError(f"{name}: the {other!r} session acts otherwise than the default one")
                result[f"onnxruntime_fp32_{other}"] = timed(
                    lambda s=session, x=arrays: s.run(None, x), warmup, repeats
                )
        result["sizes"] = sizes
        out[name] = result
    return out


def reference_round(python: str, names: list[str], warmup: int, repeats: int) -> dict[str, Any]:
    """LeRobot 0.6.1 eager on the same workloads, in its own interpreter (``reference_lerobot.py``)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the reference imports its own lerobot
    command = [
        python, str(Path(__file__).parent / "reference_lerobot.py"), "--policies", ",".join(names),
        "--warmup", str(warmup), "--repeats", str(max(1, repeats // 2)), "--inference-only",
    ]  # fmt: skip
    return run_json(command, env)


def summarise(
    rounds: list[dict[str, Any]], reference: list[dict[str, Any]], names: list[str]
) -> dict[str, Any]:
    """Per policy: the median over rounds of each variant's median, the sizes, the parity of each export;
    formats the policy does not take, with the reason; and, where the reference builds the policy,
    LeRobot 0.6.1 eager and ONNX Runtime's speed-up over it (also per round: both sides of one round
    ran minutes apart, so that ratio holds better than the medians' when the host's load drifts) and by
    CPU time (the work done, which a loaded host inflates far less than wall time)."""
    summary = {}
    for name in names:
        first = rounds[0][name]
        timed_variants = [v for v, x in first.items() if isinstance(x, dict) and "median" in x]
        row: dict[str, Any] = {}
        for v in timed_variants:
            row[f"{v}_ms"] = 1e3 * statistics.median(r[name][v]["median"] for r in rounds)
            row[f"{v}_cpu_ms"] = 1e3 * statistics.median(r[name][v]["cpu"] for r in rounds)
        refused = {v: first[v]["refused"] for v in VARIANTS if "refused" in first[v]}
        if refused:
            row["refused"] = refused
        if reference and name in reference[0]:
            row["lerobot_0_6_1_eager_ms"] = statistics.median(r[name]["inference_ms"] for r in reference)
            row["onnxruntime_speedup_vs_lerobot"] = row["lerobot_0_6_1_eager_ms"] / row["onnxruntime_fp32_ms"]
            row["onnxruntime_speedup_vs_lerobot_per_round"] = [
                theirs[name]["inference_ms"] / (1e3 * ours[name]["onnxruntime_fp32"]["median"])
                for ours, theirs in zip(rounds, reference, strict=True)
            ]
            row["lerobot_0_6_1_eager_cpu_ms"] = statistics.median(
                r[name]["inference_cpu_ms"] for r in reference
            )
            row["onnxruntime_cpu_speedup_vs_lerobot"] = (
                row["lerobot_0_6_1_eager_cpu_ms"] / row["onnxruntime_fp32_cpu_ms"]
            )
        sizes = first["sizes"]
        row.update(sizes)
        if "onnxruntime_int8_bytes" in sizes:
            row["int8_smaller_than_fp32"] = sizes["eager_fp32_bytes"] / sizes["onnxruntime_int8_bytes"]
            row["int8_parity_max_fraction_of_range"] = first["onnxruntime_int8_parity"]["max_scaled_diff"]
        row["fp32_parity_max_scaled_diff"] = first["onnxruntime_fp32_parity"]["max_scaled_diff"]
        summary[name] = row
    return summary


def markdown(summary: dict[str, Any]) -> str:
    """The README's table; a VLA's ONNX Runtime time tokenises its instruction, the graph alone in brackets."""
    rows = [
        "| policy | eager (stock) | eager + CPU accel. | ONNX Runtime fp32 | ONNX Runtime int8 | LeRobot 0.6.1 eager | ORT vs LeRobot | fp32 / int8 size |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in summary.items():
        ref = r.get("lerobot_0_6_1_eager_ms")
        ref_text = f"{ref:.1f} ms" if ref else "-"
        speedup = f"{r['onnxruntime_speedup_vs_lerobot']:.2f}x" if ref else "-"
        fp32 = f"{r['onnxruntime_fp32_ms']:.1f} ms"
        if "onnxruntime_fp32_pretokenised_ms" in r:
            fp32 += f" (graph {r['onnxruntime_fp32_pretokenised_ms']:.1f} ms)"
        if "onnxruntime_int8_ms" in r:
            int8 = f"{r['onnxruntime_int8_ms']:.1f} ms"
            size = (
                f"{r['eager_fp32_bytes'] / 2**20:.1f} / {r['onnxruntime_int8_bytes'] / 2**20:.1f} MiB "
                f"({r['int8_smaller_than_fp32']:.1f}x)"
            )
        else:
            onnx_mib = r["onnxruntime_fp32_bytes"] / 2**20
            int8, size = "refused", f"{r['eager_fp32_bytes'] / 2**20:.1f} MiB (ONNX {onnx_mib:.1f} MiB) / -"
        rows.append(
            f"| {name} | {r['eager_ms']:.1f} ms | {r['eager_accelerated_ms']:.1f} ms | {fp32} "
            f"| {int8} | {ref_text} | {speedup} | {size} |"
        )
    variants = [
        (name, key)
        for name, r in summary.items()
        for key in r
        if key.startswith("onnxruntime_fp32_") and key[len("onnxruntime_fp32_") : -len("_ms")] in ORT_VARIANTS
    ]
    if variants:
        rows += [
            "",
            "| policy | ONNX Runtime fp32 session | latency | vs the default session | vs LeRobot 0.6.1 eager |",
            "|---|---|---|---|---|",
        ]
        for name, key in variants:
            r, ms = summary[name], summary[name][key]
            ref = r.get("lerobot_0_6_1_eager_ms")
            rows.append(
                f"| {name} | {key[len('onnxruntime_fp32_') : -len('_ms')]} | {ms:.1f} ms | "
                f"{r['onnxruntime_fp32_ms'] / ms:.2f}x | {f'{ref / ms:.2f}x' if ref else '-'} |"
            )
    refusals = [
        f"{name} {v}: {why}" for name, r in summary.items() for v, why in r.get("refused", {}).items()
    ]
    return "\n".join(rows + ([""] + refusals if refusals else []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", default="act,diffusion")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument(
        "--reference-python", help="interpreter with LeRobot 0.6.1 (see reference_lerobot.py)"
    )
    parser.add_argument("--quick", action="store_true", help="1 round, few repeats, results to results/tmp/")
    parser.add_argument("--note", default="", help="saved with the results (e.g. the host's state)")
    parser.add_argument(
        "--int8-tolerance",
        type=float,
        default=0.25,
        help="int8 parity tolerance (fraction of each action's range) for these untrained, random-weight "
        "policies; the export's own default is 5%% (Diffusion's 10 int8 DDIM steps differ by ~9%% here)",
    )
    parser.add_argument(
        "--export-dir", help="keep (and reuse) the exports here (default: a temporary folder)"
    )
    parser.add_argument(
        "--ort-variants",
        default="",
        help=f"also time the fp32 model in these ONNX Runtime sessions, comma-separated: {', '.join(ORT_VARIANTS)}",
    )
    parser.add_argument("--round-json", help=argparse.SUPPRESS)  # internal: one round in this process
    args = parser.parse_args(argv)
    names = without_missing_fixtures(args.policies.split(","))
    reference_names = [name for name in names if name not in OURS_ONLY]  # LeRobot builds π0 / π0.5 only at 3B
    ort_variants = [v for v in args.ort_variants.split(",") if v]
    unknown = sorted(set(ort_variants) - set(ORT_VARIANTS))
    if unknown:
        parser.error(f"--ort-variants: unknown {unknown}; choose from {list(ORT_VARIANTS)}")
    if args.quick:
        args.rounds, args.warmup, args.repeats = 1, 1, 3
    if args.round_json:
        folder, out = args.round_json.split(",")
        Path(out).write_text(
            json.dumps(
                one_round(names, args.warmup, args.repeats, Path(folder), args.int8_tolerance, ort_variants)
            )
        )
        return 0
    rounds, reference, loads = [], [], []
    with tempfile.TemporaryDirectory(prefix="lerobot_export_bench_") as tmp:
        exports = args.export_dir or tmp
        for _ in range(args.rounds):
            loads.append(os.getloadavg()[0])
            out = Path(tmp) / "round.json"
            command = [sys.executable, __file__, "--policies", ",".join(names), "--warmup", str(args.warmup),
                       "--repeats", str(args.repeats), "--int8-tolerance", str(args.int8_tolerance),
                       "--ort-variants", args.ort_variants, "--round-json", f"{exports},{out}"]  # fmt: skip
            subprocess.run(command, check=True)
            rounds.append(json.loads(out.read_text()))
            if args.reference_python and reference_names:
                reference.append(
                    reference_round(args.reference_python, reference_names, args.warmup, args.repeats)
                )
    summary = summarise(rounds, reference, names)
    results = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "host": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "load_avg_1min": loads,
        },
        "threads": THREADS,
        "rounds": args.rounds,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "note": args.note,
        "int8_tolerance": args.int8_tolerance,
        "ort_variants": ort_variants,
        "ours_only": [name for name in names if name in OURS_ONLY],
        "versions": {"torch": torch.__version__, "onnxruntime": __import__("onnxruntime").__version__},
        "summary": summary,
        "runs": {"ours": rounds, "reference": reference},
    }
    # The default pair is the README's table; another set of policies gets its own file beside it.
    default = args.policies == parser.get_default("policies")
    name = "export.json" if default else f"export_{args.policies.replace(',', '_')}.json"
    target = RESULTS / ("tmp" if args.quick else "") / name
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".json.tmp")
    partial.write_text(json.dumps(results, indent=2))
    partial.replace(target)
    print(markdown(summary))
    print(f"\nwritten to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
