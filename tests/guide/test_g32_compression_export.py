"""G32 (高级特性 / 模型压缩与优化): dynamic quantisation, ONNX, TorchScript, TensorRT.

Steps 1-3 run as written on ACT and, with the policy class substituted, on Diffusion; the checks after
the block run each result (the quantised policy acts, the ONNX file runs in ONNX Runtime, the TorchScript file loads and acts) and, for ACT (deterministic at inference), compare it with
the eager policy. Step 4 needs an NVIDIA GPU and ``torch_tensorrt``: it is ``test_g32_tensorrt``,
marked ``gpu`` (README rule), skipped with that reason here.
"""

import numpy as np
import pytest
import torch
from tests.guide._guideb_fixtures import _SCRATCH, act_checkpoint, in_tmp_dir  # noqa: F401
from tests.policies.conftest import diffusion_config, make_stats

from lerobot.configs.types import FeatureType, PolicyFeature


def diffusion_checkpoint():
    """A tiny untrained Diffusion Policy with the block's features (14-D state, a 48x64 "front" camera)."""
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    features = {
        "observation.state": PolicyFeature(FeatureType.STATE, (14,)),
        "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 48, 64)),
        "action": PolicyFeature(FeatureType.ACTION, (14,)),
    }
    config = diffusion_config(
        input_features={k: v for k, v in features.items() if k != "action"},
        output_features={"action": features["action"]},
        crop_shape=(40, 56),
        num_inference_steps=2,
    )
    torch.manual_seed(0)
    return DiffusionPolicy(config, dataset_stats=make_stats(features)).save_pretrained(
        _SCRATCH / "diffusion_front"
    )


def _block(ACTPolicy, checkpoint):  # noqa: N803 -- the guide's name for the policy class
    # --- the block (steps 1-3) ---
    import torch
    from torch.quantization import quantize_dynamic

    # 1. 动态量化
    policy = ACTPolicy.from_pretrained(
        checkpoint
    )  # SUBSTITUTION: local checkpoint folder for lerobot/act_aloha_mobile_cabinet
    quantized_policy = quantize_dynamic(policy, {torch.nn.Linear}, dtype=torch.qint8)

    # 2. 导出 ONNX
    dummy_input = {
        "observation.state": torch.randn(1, 14),
        "observation.images.front": torch.randn(
            1, 3, 48, 64
        ),  # SUBSTITUTION: smaller size, 48x64 for 480x640
    }

    torch.onnx.export(
        policy,
        dummy_input,
        "policy.onnx",
        input_names=["state", "image"],
        output_names=["action"],
        dynamic_axes={
            "state": {0: "batch_size"},
            "image": {0: "batch_size"},
            "action": {0: "batch_size"},
        },
    )

    # 3. TorchScript
    scripted_policy = torch.jit.script(policy)
    scripted_policy.save("policy_scripted.pt")
    return policy, quantized_policy, scripted_policy


def _check_results(policy, quantized_policy, deterministic: bool) -> None:
    # Checks (not in the guide): every object the block made acts.
    import onnxruntime

    gen = torch.Generator().manual_seed(0)
    obs = {
        "observation.state": torch.randn(2, 14, generator=gen),
        "observation.images.front": torch.rand(2, 3, 48, 64, generator=gen),
    }
    eager = policy(obs)["action"]
    assert any(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in quantized_policy.modules())
    quantized_policy.reset()
    acted = quantized_policy.select_action(obs)
    assert acted.shape == (2, 14) and torch.isfinite(acted.action).all()

    session = onnxruntime.InferenceSession("policy.onnx", providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["state", "image"]
    # torch.export specialises the dummy's batch of 1 (the policy warns; lerobot-export traces at 2): batch 1 here
    for batch in (1,):
        feed = {
            "state": obs["observation.state"][:batch].numpy(),
            "image": obs["observation.images.front"][:batch].numpy(),
        }
        (onnx_action,) = session.run(["action"], feed)
        assert onnx_action.shape == (batch, *eager.shape[1:]) and np.isfinite(onnx_action).all()
        if deterministic:
            np.testing.assert_allclose(onnx_action, eager[:batch].numpy(), atol=1e-4, rtol=1e-4)

    loaded = torch.jit.load("policy_scripted.pt")
    scripted_action = loaded(obs)["action"]
    assert scripted_action.shape == eager.shape and torch.isfinite(scripted_action).all()
    uint8_frame = {  # the camera's own format, without a batch axis, works too
        "observation.state": obs["observation.state"][0],
        "observation.images.front": (obs["observation.images.front"][0] * 255)
        .round()
        .to(torch.uint8)
        .permute(1, 2, 0),
    }
    assert loaded(uint8_frame)["action"].shape == (1, *eager.shape[1:])
    if deterministic:
        torch.testing.assert_close(scripted_action, eager, atol=1e-4, rtol=1e-4)


def test_g32_compression_export(in_tmp_dir):  # noqa: F811
    # --- prelude: names the guide uses without importing ---
    from lerobot.policies.act.modeling_act import ACTPolicy

    policy, quantized_policy, _ = _block(ACTPolicy, act_checkpoint("aloha_front"))
    _check_results(policy, quantized_policy, deterministic=True)


def test_g32_compression_export_diffusion(in_tmp_dir):  # noqa: F811
    from lerobot.policies.diffusion.modeling_diffusion import DiffusionPolicy

    # SUBSTITUTION: the block's ACTPolicy is a Diffusion Policy here (issue 22: G32 runs on both)
    policy, quantized_policy, _ = _block(DiffusionPolicy, diffusion_checkpoint())
    _check_results(policy, quantized_policy, deterministic=False)


@pytest.mark.gpu
def test_g32_tensorrt(in_tmp_dir):  # noqa: F811
    pytest.importorskip(
        "torch_tensorrt", reason="step 4 needs torch_tensorrt (pip install torch-tensorrt) and an NVIDIA GPU"
    )
    from lerobot.policies.act.modeling_act import ACTPolicy

    policy, _, _ = _block(ACTPolicy, act_checkpoint("aloha_front"))
    # 4. 使用 TensorRT 优化（需要安装 torch-tensorrt）
    import torch_tensorrt

    trt_policy = torch_tensorrt.compile(  # noqa: F841
        policy,
        inputs=[
            torch_tensorrt.Input(shape=[1, 14]),
            torch_tensorrt.Input(shape=[1, 3, 48, 64]),  # SUBSTITUTION: smaller size
        ],
        enabled_precisions={torch.float16},
    )
