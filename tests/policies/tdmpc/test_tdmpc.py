"""TD-MPC: the planner, the loss on a sequence batch, n-step targets, the target network, save/load."""

import pytest
import torch
from tests.policies.conftest import ACTION_DIM
from tests.policies.conftest import tdmpc_config as tiny

from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.tdmpc.modeling_tdmpc import TDMPCPolicy, n_step_returns, random_shift

H, A = 3, ACTION_DIM  # the tiny config's horizon and action size
STATS = {"action": {"min": torch.tensor([-2.0, 0.0]), "max": torch.tensor([2.0, 1.0])}}


def batch(b: int = 5, image: bool = False) -> dict[str, torch.Tensor]:
    out = {
        "observation.state": torch.randn(b, H + 1, 4),
        "action": torch.rand(b, H, A) * torch.tensor([4.0, 1.0]) - torch.tensor([2.0, 0.0]),
        "next.reward": torch.randn(b, H),
        "action_is_pad": torch.zeros(b, H, dtype=torch.bool),
    }
    out["action_is_pad"][0, 1:] = True  # sample 0's episode ends after its first step
    if image:
        out["observation.image"] = torch.rand(b, H + 1, 3, 48, 48)
    return out


@pytest.mark.parametrize("image", [False, True])
def test_loss_trains_every_network_but_the_target(image):
    torch.manual_seed(0)
    policy = TDMPCPolicy(tiny(image), dataset_stats=STATS).train()
    out = policy(batch(image=image))
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])
    assert {"consistency_loss", "reward_loss", "q_loss", "v_loss", "pi_loss"} <= out.keys()
    out["loss"].backward()
    for name, p in policy.model.named_parameters():
        assert p.grad is not None, (
            name
        )  # (the reward and Q heads' zero last layers block deeper grads at first)
    for head in (policy.model._reward[-1], policy.model._Qs[0][-1], policy.model._pi[0], policy.model._V[0]):
        assert head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in policy.model_target.parameters())
    assert {id(p) for p in policy.get_optim_params()} == {id(p) for p in policy.model.parameters()}


def test_padded_steps_do_not_count():
    torch.manual_seed(0)
    policy = TDMPCPolicy(tiny(), dataset_stats=STATS).train()
    data = batch()
    torch.manual_seed(1)
    base = policy(data)["loss"]
    changed = {**data, "next.reward": data["next.reward"].clone()}
    changed["next.reward"][0, 1:] = 1e3  # rewards past sample 0's episode end
    torch.manual_seed(1)
    assert torch.allclose(policy(changed)["loss"], base)


def test_missing_reward_is_one_clear_error():
    policy = TDMPCPolicy(tiny(), dataset_stats=STATS)
    data = batch()
    del data["next.reward"]
    with pytest.raises(ValueError, match="next.reward"):
        policy(data)


def test_n_step_returns():
    reward = torch.tensor([[1.0], [2.0], [4.0]])
    value = torch.tensor([[10.0], [20.0], [40.0]])  # V of the frame after each step
    valid = torch.ones(3, 1, dtype=torch.bool)
    one = n_step_returns(reward, value, valid, 0.5, 1)
    assert torch.allclose(one[:, 0], torch.tensor([1 + 5.0, 2 + 10.0, 4 + 20.0]))
    two = n_step_returns(reward, value, valid, 0.5, 2)
    assert torch.allclose(two[:, 0], torch.tensor([1 + 1 + 5.0, 2 + 2 + 10.0, 4 + 20.0]))
    valid[2] = False  # the episode ends after step 1: step 1's return stops there
    assert torch.allclose(n_step_returns(reward, value, valid, 0.5, 2)[1, 0], torch.tensor(12.0))


def test_update_moves_the_target_towards_the_model():
    policy = TDMPCPolicy(tiny(target_model_momentum=0.75), dataset_stats=STATS)
    with torch.no_grad():
        for p in policy.model.parameters():
            p.add_(1.0)
    before = [p.clone() for p in policy.model_target.parameters()]
    policy.update()
    for b, t, m in zip(before, policy.model_target.parameters(), policy.model.parameters(), strict=True):
        assert torch.allclose(t, 0.75 * b + 0.25 * m)


def test_planning_acts_in_range_repeats_and_warm_starts():
    torch.manual_seed(0)
    policy = TDMPCPolicy(tiny(n_action_repeats=2), dataset_stats=STATS)
    obs = {"observation.state": torch.randn(3, 4)}
    first, second = policy.select_action(obs)["action"], policy.select_action(obs)["action"]
    assert first.shape == (3, A) and torch.equal(first, second)  # each action is repeated
    assert ((first >= STATS["action"]["min"]) & (first <= STATS["action"]["max"])).all()
    assert policy._prev_mean is not None and policy._prev_mean.shape == (H, 3, A)
    explored = policy.select_action(obs, explore=True)["action"]
    assert explored.shape == (3, A)
    policy.reset()
    assert policy._prev_mean is None
    chunk = TDMPCPolicy(tiny(n_action_repeats=1, n_action_steps=2), dataset_stats=STATS).predict_action_chunk(
        obs
    )
    assert chunk.shape == (3, 2, A)


class FirstActionReward(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x = [z (latent_dim 8), action]
        return x[..., 8:9] * 10


def test_planner_prefers_rewarded_actions():
    """With the reward head fixed to +first action coordinate, plans push that coordinate to its maximum."""
    torch.manual_seed(0)
    policy = TDMPCPolicy(tiny(uncertainty_regularizer_coeff=0.0, n_pi_samples=0, cem_iterations=4,
                              n_gaussian_samples=64, n_elites=8), dataset_stats=STATS)  # fmt: skip
    with torch.no_grad():
        for q in policy.model._Qs:
            q[-1].weight.zero_()
            q[-1].bias.zero_()
    policy.model._reward = FirstActionReward()
    action = policy.predict_action_chunk({"observation.state": torch.randn(2, 4)})
    assert (action[..., 0] > 1.5).all()  # robot units: max 2


def test_terminal_value_is_the_smaller_of_the_two_drawn_q_heads():
    torch.manual_seed(0)
    policy = TDMPCPolicy(tiny(uncertainty_regularizer_coeff=0.0), dataset_stats=STATS)  # 3 Q heads
    model, cfg = policy.model, policy.config
    z, actions = torch.randn(4, 2, cfg.latent_dim), torch.rand(H, 4, 2, A) * 2 - 1
    noise = torch.randn(4, 2, A)
    with torch.no_grad():
        rollout = z
        for a in actions:
            rollout = model.latent_dynamics(rollout, a)
        terminal = model.Qs(rollout, model.pi(rollout, cfg.min_std, noise))  # (3, N, B)
        for draw, heads in (((0.1, 0.9), (0, 2)), ((0.5, 0.4), (1, 1)), ((0.99, 0.7), (2, 2))):
            value = policy.estimate_value(z, actions, noise, torch.tensor(draw)[:, None].expand(2, 2))
            without_terminal = (
                policy.estimate_value(z, actions, noise, torch.zeros(2, 2)) - cfg.discount**H * (terminal[0])
            )
            want = without_terminal + cfg.discount**H * terminal[list(heads)].min(0).values
            torch.testing.assert_close(value, want)


def test_save_load_round_trip_keeps_weights_and_writes_loadable_config(tmp_path):
    policy = TDMPCPolicy(tiny(td_n_steps=2), dataset_stats=STATS)
    policy.save_pretrained(tmp_path)
    assert '"td_n_steps": 2' in (tmp_path / "config.json").read_text()
    loaded = TDMPCPolicy.from_pretrained(tmp_path)
    assert loaded.config.td_n_steps == 2
    for (k, a), b in zip(policy.state_dict().items(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    TDMPCPolicy(tiny(), dataset_stats=STATS).save_pretrained(tmp_path / "default")
    assert (
        "td_n_steps" not in (tmp_path / "default" / "config.json").read_text()
    )  # LeRobot reads it unchanged


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="square"):
        TDMPCPolicy(
            tiny(input_features={"observation.image": PolicyFeature(FeatureType.VISUAL, (3, 32, 48))})
        )
    with pytest.raises(ValueError, match="at least 45"):
        TDMPCPolicy(
            tiny(input_features={"observation.image": PolicyFeature(FeatureType.VISUAL, (3, 32, 32))})
        )
    with pytest.raises(ValueError, match="MIN_MAX"):
        tiny(normalization_mapping={"ACTION": "MEAN_STD"})
    with pytest.raises(ValueError, match="n_action_repeats=1"):
        tiny(n_action_steps=2)


def test_random_shift_keeps_shape_and_moves_content():
    torch.manual_seed(0)
    images = torch.rand(2, 3, 3, 21, 21)
    shifted = random_shift(images, 0.1)  # up to 2 pixels
    assert shifted.shape == images.shape and not torch.equal(shifted, images)
    assert torch.equal(random_shift(images, 0.0), images)


def test_elites_are_the_top_k_with_ties_in_index_order():
    """The planner's elites: topk's choice where values differ, the lower index first where they tie
    (as ONNX's TopK, so an exported planner picks the same elites as the eager one)."""
    from lerobot.policies.tdmpc.modeling_tdmpc import top_k_first_on_ties

    values = torch.randn(50, 3)
    got_values, got_index = top_k_first_on_ties(values, 5)
    want_values, want_index = values.topk(5, dim=0)
    assert torch.equal(got_values, want_values) and torch.equal(got_index, want_index)
    tied = torch.tensor([[1.0, 0.0, 2.0, 2.0, 0.0, 1.0]]).T
    assert top_k_first_on_ties(tied, 4)[1].flatten().tolist() == [2, 3, 0, 5]
