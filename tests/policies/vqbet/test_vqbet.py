"""VQ-BeT on tiny configs: the two training phases, the heads, the history and queue, the optimiser groups."""

from __future__ import annotations

import pytest
import torch
from tests.policies.conftest import ACTION_DIM, make_stats, vqbet_config
from torch import nn

from lerobot.policies.config import PreTrainedConfig
from lerobot.policies.vqbet import VQBeTConfig
from lerobot.policies.vqbet.configuration_vqbet import VQBeTSchedule
from lerobot.policies.vqbet.modeling_vqbet import VQBeTPolicy


def make_policy(config: VQBeTConfig, seed: int = 0) -> VQBeTPolicy:
    torch.manual_seed(seed)
    return VQBeTPolicy(config, dataset_stats=make_stats(config.input_features | config.output_features))


def make_batch(config: VQBeTConfig, batch_size: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    batch = {
        name: torch.rand((batch_size, config.n_obs_steps, *ft.shape), generator=gen)
        for name, ft in config.input_features.items()
    }
    batch["action"] = torch.rand((batch_size, len(config.action_delta_indices), ACTION_DIM), generator=gen)
    return batch


def train_steps(policy: VQBeTPolicy, batch: dict, steps: int) -> list[dict]:
    optimizer = torch.optim.Adam([g for g in policy.get_optim_params()], lr=1e-3)
    outs = []
    policy.train()
    for _ in range(steps):
        out = policy(batch)
        out["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        outs.append(out)
    return outs


# ---- config -------------------------------------------------------------------------------------------
def test_defaults_and_delta_indices_match_lerobot():
    cfg = VQBeTConfig()
    assert (cfg.n_obs_steps, cfg.n_action_pred_token, cfg.action_chunk_size) == (5, 3, 5)
    assert (cfg.vqvae_n_embed, cfg.vqvae_embedding_dim, cfg.gpt_n_layer, cfg.crop_shape) == (
        16,
        256,
        8,
        (84, 84),
    )
    assert cfg.observation_delta_indices == [-4, -3, -2, -1, 0]
    assert cfg.action_delta_indices == list(range(-4, 7))
    assert isinstance(PreTrainedConfig.from_dict({"type": "vqbet"}), VQBeTConfig)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"vision_backbone": "vit"}, "torchvision ResNet"),
        ({"gpt_block_size": 4}, "gpt_block_size"),
        ({"gpt_n_head": 3}, "multiple of gpt_n_head"),
        ({"use_group_norm": True, "pretrained_backbone_weights": "x.pth"}, "use_group_norm"),
        ({"input_features": {}}, "observation.state"),
    ],
)
def test_bad_configs_are_refused(overrides, match):
    with pytest.raises(ValueError, match=match):
        VQBeTPolicy(vqbet_config(image=False, **overrides))


def test_schedule_holds_the_lr_through_the_tokenizer_phase_then_warms_up_and_decays():
    factor = VQBeTSchedule(num_warmup_steps=2, num_vqvae_training_steps=3, num_decay_steps=13).lr_factor()
    assert [factor(s) for s in range(3)] == [1.0, 1.0, 1.0]
    assert factor(3) == pytest.approx(0.5) and factor(4) == pytest.approx(1.0)
    assert factor(9) == pytest.approx(0.5) and factor(13) == pytest.approx(0.0)


# ---- the two phases -----------------------------------------------------------------------------------
def test_tokenizer_phase_then_gpt_phase():
    config = vqbet_config(image=False)
    policy = make_policy(config)
    batch = make_batch(config)
    tokenizer = policy.vqbet.action_head.vqvae_model
    codebook = tokenizer.vq_layer.layers[0]._codebook.embed.clone()
    gpt_before = {k: v.clone() for k, v in policy.vqbet.policy.state_dict().items()}

    outs = train_steps(policy, batch, 3)  # phase 1: the tokenizer alone
    assert all("recon_l1_error" in o for o in outs) and int(tokenizer.optimized_steps) == 3
    assert bool(tokenizer.discretized) and bool(tokenizer.vq_layer.freeze_codebook)
    assert not torch.equal(codebook, tokenizer.vq_layer.layers[0]._codebook.embed)  # EMA moved the codes
    for k, v in policy.vqbet.policy.state_dict().items():
        assert torch.equal(v, gpt_before[k]), k  # the GPT is untouched in phase 1

    frozen = {k: v.clone() for k, v in tokenizer.state_dict().items()}
    out = policy(batch)  # phase 2
    assert {"primary_code_loss", "secondary_code_loss", "offset_loss"} <= out.keys()
    out["loss"].backward()
    assert all(p.grad is None for p in tokenizer.parameters())
    assert policy.vqbet.policy.transformer.wte.weight.grad is not None
    assert policy.vqbet.action_head.map_to_cbet_preds_bin[0].weight.grad is not None
    train_steps(policy, batch, 2)
    for k, v in tokenizer.state_dict().items():
        assert torch.equal(v, frozen[k]), k  # frozen: codebooks and weights stay


def test_eval_and_no_grad_calls_do_not_count_as_tokenizer_steps():
    config = vqbet_config(image=False)
    policy = make_policy(config)
    with torch.no_grad():
        policy.train()(make_batch(config))
    with pytest.warns(UserWarning, match="tokenizer is still untrained"):
        policy.eval()(make_batch(config))  # the untrained tokenizer's actions come with a warning
    assert int(policy.vqbet.action_head.vqvae_model.optimized_steps) == 0


def test_sequential_selection_and_offsets_learn_a_fixed_batch():
    config = vqbet_config(image=False, sequentially_select=True, n_vqvae_training_steps=20, dropout=0.0)
    policy = make_policy(config)
    batch = make_batch(config, batch_size=2)
    train_steps(policy, batch, 20)
    losses = [o["offset_loss"] for o in train_steps(policy, batch, 60)]
    assert losses[-1] < 0.5 * losses[0]
    assert hasattr(policy.vqbet.action_head, "map_to_cbet_preds_secondary_bin")


# ---- inference ----------------------------------------------------------------------------------------
def test_greedy_decoding_is_deterministic_and_sampling_uses_multinomial(monkeypatch):
    config = vqbet_config(greedy_decoding=True)
    policy = make_policy(config)
    policy.vqbet.action_head.vqvae_model.discretized.fill_(True)
    obs = {k: v[:, -1] for k, v in make_batch(config, batch_size=2).items() if k != "action"}
    torch.manual_seed(1)
    a = policy.predict_action_chunk(obs)
    torch.manual_seed(2)
    policy.reset()
    assert torch.equal(a, policy.predict_action_chunk(obs)) and a.shape == (2, 3, ACTION_DIM)
    calls = []
    real = torch.multinomial
    monkeypatch.setattr(torch, "multinomial", lambda *args, **kw: calls.append(1) or real(*args, **kw))
    policy.config.greedy_decoding = False
    policy.predict_action_chunk(obs)
    assert len(calls) == 1  # one draw for every (query token, RVQ layer) row


def test_history_queue_and_each_frame_encoded_once():
    config = vqbet_config(image=True, greedy_decoding=True)
    policy = make_policy(config)
    policy.vqbet.action_head.vqvae_model.discretized.fill_(True)
    frames = [
        {k: v[:, 0] for k, v in make_batch(config, batch_size=1, seed=s).items() if k != "action"}
        for s in range(4)
    ]
    encoded = []
    policy.vqbet.rgb_encoder.register_forward_hook(lambda m, args, out: encoded.append(args[0].shape[0]))
    actions = [policy.select_action(f)["action"] for f in frames]
    # call 1: frame 0 once (it fills the whole history); call 4: frames 2 and 3; frame 1, gone from the
    # history by then, is never encoded
    assert encoded == [1, 2]
    # call 4 predicts from the history [frame 2, frame 3], exactly as a full-history prediction does
    history = {k: torch.stack([frames[2][k], frames[3][k]], dim=1) for k in frames[0]}
    torch.testing.assert_close(actions[3], policy.predict_action_chunk(history)[:, 0])


def test_policy_is_built_from_stock_modules_and_survives_cpu_acceleration():
    from lerobot.policies.cpu_acceleration import accelerate

    config = vqbet_config(image=True, greedy_decoding=True)
    policy = make_policy(config)
    for name, module in policy.named_modules():
        where = type(module).__module__
        assert where.startswith(("torch.nn.", "torchvision.", "lerobot.policies.")), (name, where)
        if where.startswith("lerobot."):
            stock = [b for b in type(module).__mro__[1:] if b.__module__.startswith("torch.nn.modules.")]
            assert stock == [nn.Module], (name, type(module).__mro__)
    batch = make_batch(config, batch_size=2)
    obs = {k: v[:, -1] for k, v in batch.items() if k != "action"}
    policy.vqbet.action_head.vqvae_model.discretized.fill_(True)
    stock_chunk = policy.predict_action_chunk(obs)
    accelerated = accelerate(make_policy(config))
    accelerated.vqbet.action_head.vqvae_model.discretized.fill_(True)
    torch.testing.assert_close(accelerated.predict_action_chunk(obs), stock_chunk, rtol=1e-5, atol=1e-5)
    accelerated.train()
    out = accelerated(batch)
    out["loss"].backward()
    assert torch.isfinite(out["loss"])


def test_optimiser_groups_cover_every_parameter_once():
    config = vqbet_config(image=True)
    policy = make_policy(config)
    groups = policy.get_optim_params()
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(policy.parameters()))
    tokenizer = {id(p) for p in policy.vqbet.action_head.vqvae_model.parameters()}
    assert {id(p) for p in groups[1]["params"]} == tokenizer
    assert groups[1]["lr"] == config.optimizer_vqvae_lr and groups[2]["weight_decay"] == 0.0
    no_decay = {id(p) for p in groups[2]["params"]}
    assert id(policy.vqbet.policy.transformer.wpe.weight) in no_decay
    assert id(policy.vqbet.policy.transformer.wte.weight) not in no_decay


# ---- what every policy does (tests/policies/test_policies.py's checks, on VQ-BeT's batch layout) -------
def test_save_load_gives_identical_actions_and_state(tmp_path):
    config = vqbet_config(image=True)
    policy = make_policy(config)
    train_steps(policy, make_batch(config), 4)  # past the tokenizer phase: its step count is saved too
    policy.save_pretrained(tmp_path)
    loaded = VQBeTPolicy.from_pretrained(tmp_path)
    assert loaded.config.to_dict() == config.to_dict()
    state, loaded_state = policy.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys() and all(
        torch.equal(v, loaded_state[k]) for k, v in state.items()
    )
    obs = {k: v[:, -1] for k, v in make_batch(config, batch_size=2, seed=3).items() if k != "action"}
    for p in (policy, loaded):
        p.reset()
    for _ in range(4):  # sampled codes: the same seed draws the same ones
        torch.manual_seed(7)
        want = policy.select_action(obs)["action"]
        torch.manual_seed(7)
        torch.testing.assert_close(loaded.select_action(obs)["action"], want, rtol=0, atol=0)


def test_call_in_eval_mode_returns_the_chunk_and_uint8_images_act_as_unit_range():
    config = vqbet_config(image=True, greedy_decoding=True)
    policy = make_policy(config)
    policy.vqbet.action_head.vqvae_model.discretized.fill_(True)
    batch = make_batch(config, batch_size=2)
    policy.eval()
    out = policy(batch)
    assert torch.isfinite(out["loss"]) and out["action"].shape == (2, 3, ACTION_DIM)
    obs = {k: v[:1, -1] for k, v in batch.items() if k != "action"}
    as_bytes = {k: (v * 255).round().to(torch.uint8) if v.dim() == 4 else v for k, v in obs.items()}
    as_unit = {k: v.float() / 255 if v.dtype == torch.uint8 else v for k, v in as_bytes.items()}
    policy.reset()
    a = policy.select_action(as_bytes)["action"]
    policy.reset()
    torch.testing.assert_close(a, policy.select_action(as_unit)["action"], rtol=0, atol=0)


def test_missing_or_misshapen_features_are_named():
    config = vqbet_config(image=True)
    policy = make_policy(config)
    batch = make_batch(config)
    del batch["observation.state"]
    with pytest.raises(ValueError, match=r"'observation\.state' is missing"):
        policy(batch)
    batch = make_batch(config)
    batch["action"] = batch["action"][
        :, :-1
    ]  # one action short of n_obs_steps + n_action_pred_token + chunk - 2
    with pytest.raises(ValueError, match=r"'action' has shape"):
        policy(batch)
    obs = {k: v[:, -1] for k, v in make_batch(config).items() if k != "action"}
    obs["observation.images.top"] = torch.rand(4, 3, 16, 16)
    with pytest.raises(ValueError, match=r"'observation\.images\.top' has shape"):
        policy.select_action(obs)
