"""G15 (guide line 733): DistributedDataParallel set up in code.

The block continues G11 (it uses its ``config``, ``dataset`` and imports) and runs under torchrun
(``LOCAL_RANK``). As written it needs CUDA and NCCL: ``test_g15_ddp_code`` is marked ``gpu``.
``test_g15_ddp_code_cpu`` runs the same block on the CPU with the smallest substitution (the gloo
backend, no ``torch.cuda.set_device``, the CPU for ``local_rank``), as one process of a torchrun job.
"""

import socket

import pytest


def _torchrun_env(monkeypatch) -> None:
    """What torchrun sets for each process it starts (here one process of one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for key, value in dict(RANK="0", LOCAL_RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)).items():
        monkeypatch.setenv(key, value)


def _g11_context(dataset_root: str) -> tuple:
    """Names the block takes from G11: its imports, ``config`` (smaller, as in test_g11) and ``dataset``."""
    from lerobot.common.policies.act.configuration_act import ACTConfig
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    config = ACTConfig(
        input_shapes={"observation.state": [14], "observation.images.front": [3, 24, 32]},
        output_shapes={"action": [14]},
        chunk_size=100, n_obs_steps=1, dim_model=64, n_heads=8, dim_feedforward=128,
        n_encoder_layers=1, n_decoder_layers=1, lr=1e-5, weight_decay=1e-4, kl_weight=10,
    )  # fmt: skip
    return config, LeRobotDataset(dataset_root)


@pytest.mark.gpu
def test_g15_ddp_code(guidea_datasets, monkeypatch):
    _torchrun_env(monkeypatch)
    # --- prelude: names the guide uses without importing (from G11 and the standard library) ---
    import os
    import torch
    from lerobot.common.policies.act.modeling_act import ACTPolicy
    from torch.utils.data import DataLoader

    config, dataset = _g11_context(guidea_datasets["aloha_mobile_cabinet"])

    # 在代���用 DDP
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    # �始化分布��境
    dist.init_process_group(backend="nccl")
    try:
        local_rank = int(os.environ["LOCAL_RANK"])
        torch.cuda.set_device(local_rank)

        # 包装模�
        policy = ACTPolicy(config)
        policy = policy.to(local_rank)
        policy = DDP(policy, device_ids=[local_rank])

        # 使用分布�采样器
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset)
        dataloader = DataLoader(
            dataset,
            batch_size=32,
            sampler=sampler,
            num_workers=4
        )

        batch = {k: v.to(local_rank) for k, v in next(iter(dataloader)).items()}
        policy(batch)["loss"].backward()
    finally:
        dist.destroy_process_group()


def test_g15_ddp_code_cpu(guidea_datasets, monkeypatch):
    _torchrun_env(monkeypatch)
    # --- prelude: names the guide uses without importing (from G11 and the standard library) ---
    import os
    import torch
    from lerobot.common.policies.act.modeling_act import ACTPolicy
    from torch.utils.data import DataLoader

    config, dataset = _g11_context(guidea_datasets["aloha_mobile_cabinet"])

    # 在代���用 DDP
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    # �始化分布��境
    dist.init_process_group(backend="gloo")  # SUBSTITUTION: gloo (CPU) for nccl (NVIDIA GPUs only)
    try:
        local_rank = int(os.environ["LOCAL_RANK"])
        # SUBSTITUTION: `torch.cuda.set_device(local_rank)` left out (no GPU)

        # 包装模�
        policy = ACTPolicy(config)
        policy = policy.to("cpu")  # SUBSTITUTION: the CPU for GPU number local_rank
        policy = DDP(policy, device_ids=None)  # SUBSTITUTION: None (CPU modules) for [local_rank]

        # 使用分布�采样器
        from torch.utils.data.distributed import DistributedSampler

        sampler = DistributedSampler(dataset)
        dataloader = DataLoader(
            dataset,
            batch_size=32,
            sampler=sampler,
            num_workers=0  # SUBSTITUTION: 0 worker processes instead of 4
        )

        # Checks (not in the guide): one training step through DDP.
        batch = next(iter(dataloader))
        assert local_rank == 0 and len(sampler) == len(dataset)
        loss = policy({k: v.to("cpu") for k, v in batch.items()})["loss"]
        loss.backward()
        assert torch.isfinite(loss)
    finally:
        dist.destroy_process_group()
