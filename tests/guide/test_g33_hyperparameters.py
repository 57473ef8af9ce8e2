"""G33 (最佳实践 / 训练调优技巧): the recommended ACT and Diffusion hyperparameters.

The block is two dicts; the test also checks that every model setting in them is a field of our
configs (so the values can be passed on, e.g. ``ACTConfig(**model_part)``).
"""

from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig


def test_g33_hyperparameters():
    # --- the block ---
    # 推荐的 ACT 超参数
    act_config = {
        "chunk_size": 100,          # 动作序列长度
        "n_obs_steps": 1,           # 观察历史长度
        "dim_model": 512,           # 模型维度
        "n_heads": 8,               # 注意力头数
        "n_encoder_layers": 4,      # 编码器层数
        "n_decoder_layers": 7,      # 解码器层数
        "lr": 1e-5,                 # 学习率
        "weight_decay": 1e-4,       # 权重衰减
        "kl_weight": 10,            # KL 散度权重
        "batch_size": 32,           # 批次大小
    }

    # 推荐的 Diffusion 超参数
    diffusion_config = {
        "n_action_steps": 8,        # 预测步数
        "num_inference_steps": 10,  # 推理扩散步数
        "down_dims": [256, 512, 1024],  # 下采样维度
        "lr": 1e-4,
        "batch_size": 64,
    }

    # --- checks: the model settings are our configs' fields; lr / weight_decay / batch_size are training's ---
    training = {"lr", "weight_decay", "batch_size"}
    act = ACTConfig(**{k: v for k, v in act_config.items() if k not in training})
    assert (act.chunk_size, act.dim_model, act.n_decoder_layers, act.kl_weight) == (100, 512, 7, 10)
    diffusion = DiffusionConfig(**{k: v for k, v in diffusion_config.items() if k not in training})
    assert tuple(diffusion.down_dims) == (256, 512, 1024) and diffusion.num_inference_steps == 10
