"""``benchmarks/export.py``'s bookkeeping: what a VLA's export is given, and how refused formats, policies
the reference cannot build and same-round ratios are reported. No timing and no export here (the script
itself runs those); the rounds below are made-up numbers chosen so each rule shows."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
CAMERA, STATE = "observation.images.front", "observation.state"
TOKENS = ["observation.language.tokens", "observation.language.attention_mask"]


@pytest.fixture(scope="module")
def bench():
    """benchmarks/export.py as a module; its sibling modules and its OMP_WAIT_POLICY default are undone after."""
    wait_policy = os.environ.get("OMP_WAIT_POLICY")
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location("benchmarks_export", BENCHMARKS / "export.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name, loaded in list(sys.modules.items()):
            if str(getattr(loaded, "__file__", "") or "").startswith(str(BENCHMARKS)):
                del sys.modules[name]
        if wait_policy is None:
            os.environ.pop("OMP_WAIT_POLICY", None)
        else:
            os.environ["OMP_WAIT_POLICY"] = wait_policy


def spec(name: str, dtype: str, *shape: int, random: bool = False) -> dict:
    return {"name": name, "dtype": dtype, "shape": ["batch", *shape], "random": random}


def test_a_vla_export_gets_its_task_for_the_runtime_to_tokenise(bench):
    model = SimpleNamespace(
        metadata={"instruction": {"inputs": TOKENS}},
        inputs=[
            spec(CAMERA, "uint8", 4, 6, 3),
            spec(STATE, "float32", 2),
            *[spec(name, "int64", 8) for name in TOKENS],
            spec("noise", "float32", 5, 3, random=True),
        ],
    )
    camera = torch.rand(1, 3, 4, 6)
    got = bench.exported_inputs(model, {CAMERA: camera, STATE: torch.rand(1, 2), "task": "pick up the cube"})
    assert set(got) == {CAMERA, STATE, "noise", "task"} and got["task"] == "pick up the cube"
    assert got[CAMERA].dtype == np.uint8 and got[CAMERA].shape == (1, 4, 6, 3)  # the camera's own format
    np.testing.assert_array_equal(got[CAMERA][0, 1, 2], (camera[0, :, 1, 2] * 255).round().to(torch.uint8))
    assert got["noise"].shape == (1, 5, 3) and got["noise"].dtype == np.float32

    # Without an instruction nothing is added; a history the export does not take gives its latest frame.
    plain = SimpleNamespace(metadata={"instruction": None}, inputs=[spec(STATE, "float32", 2)])
    history = torch.rand(1, 2, 2)
    got = bench.exported_inputs(plain, {STATE: history})
    assert set(got) == {STATE}
    np.testing.assert_array_equal(got[STATE], history[:, -1].numpy())


def timing(seconds: float) -> dict[str, float]:
    return {
        "median": seconds,
        "min": seconds,
        "max": seconds,
        "cpu": seconds / 2,
    }  # half the wall: a loaded host


def ours(fp32_s: float, int8: bool) -> dict:
    result = {
        "eager": timing(0.050),
        "eager_accelerated": timing(0.040),
        "onnxruntime_fp32": timing(fp32_s),
        "onnxruntime_fp32_parity": {"max_scaled_diff": 1e-7},
        "sizes": {"eager_fp32_bytes": 8 * 2**20, "onnxruntime_fp32_bytes": 8 * 2**20},
    }
    if int8:
        result["onnxruntime_int8"] = timing(fp32_s / 2)
        result["onnxruntime_int8_parity"] = {"max_scaled_diff": 0.01}
        result["sizes"]["onnxruntime_int8_bytes"] = 2 * 2**20
    else:  # a VLA: tokenised inside the timed call, the graph alone beside it, int8 refused
        result["onnxruntime_fp32_pretokenised"] = timing(fp32_s - 0.002)
        result["onnxruntime_int8"] = {"refused": "A 'smolvla' policy cannot be exported to int8: ..."}
    return result


def test_refused_formats_ours_only_policies_and_same_round_ratios_are_reported(bench):
    rounds = [
        {"smolvla": ours(0.010, int8=False), "pi0": ours(0.010, int8=False), "act": ours(0.004, int8=True)},
        {"smolvla": ours(0.020, int8=False), "pi0": ours(0.012, int8=False), "act": ours(0.006, int8=True)},
    ]
    reference = [  # LeRobot 0.6.1 builds no tiny π0: only SmolVLA and ACT
        {
            "smolvla": {"inference_ms": 30.0, "inference_cpu_ms": 24.0},
            "act": {"inference_ms": 20.0, "inference_cpu_ms": 9.0},
        },
        {
            "smolvla": {"inference_ms": 80.0, "inference_cpu_ms": 36.0},
            "act": {"inference_ms": 24.0, "inference_cpu_ms": 11.0},
        },
    ]
    summary = bench.summarise(rounds, reference, ["smolvla", "pi0", "act"])

    smolvla = summary["smolvla"]
    assert smolvla["onnxruntime_fp32_ms"] == pytest.approx(15.0)
    assert smolvla["onnxruntime_fp32_pretokenised_ms"] == pytest.approx(13.0)
    assert smolvla["lerobot_0_6_1_eager_ms"] == pytest.approx(55.0)
    # each round's own ratio (30/10, 80/20), not only the ratio of the medians (55/15)
    assert smolvla["onnxruntime_speedup_vs_lerobot_per_round"] == pytest.approx([3.0, 4.0])
    assert smolvla["onnxruntime_speedup_vs_lerobot"] == pytest.approx(55.0 / 15.0)
    # and by CPU time: medians 30 ms (LeRobot) over 7.5 ms (ours)
    assert smolvla["onnxruntime_fp32_cpu_ms"] == pytest.approx(7.5)
    assert smolvla["onnxruntime_cpu_speedup_vs_lerobot"] == pytest.approx(4.0)
    assert "onnxruntime_int8_ms" not in smolvla and "int8_smaller_than_fp32" not in smolvla
    assert smolvla["refused"]["onnxruntime_int8"].startswith("A 'smolvla' policy cannot be exported to int8")
    assert "lerobot_0_6_1_eager_ms" not in summary["pi0"]
    act = summary["act"]
    assert act["int8_smaller_than_fp32"] == pytest.approx(4.0) and "refused" not in act
    assert act["onnxruntime_speedup_vs_lerobot_per_round"] == pytest.approx([5.0, 4.0])

    table = bench.markdown(summary).splitlines()
    row = {line.split(" | ")[0].strip("| "): line for line in table if line.startswith("| ")}
    assert (
        "| 15.0 ms (graph 13.0 ms) | refused | 55.0 ms | 3.67x | 8.0 MiB (ONNX 8.0 MiB) / - |"
        in row["smolvla"]
    )
    assert row["pi0"].endswith("| refused | - | - | 8.0 MiB (ONNX 8.0 MiB) / - |")
    assert "| 5.0 ms | 2.5 ms | 22.0 ms | 4.40x | 8.0 / 2.0 MiB (4.0x) |" in row["act"]
    assert "smolvla onnxruntime_int8: A 'smolvla' policy cannot be exported to int8: ..." in table
    assert not any("ONNX Runtime fp32 session" in line for line in table)  # no session variants timed
