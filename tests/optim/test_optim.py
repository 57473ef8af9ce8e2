"""Optimizer presets + overrides, the three schedules, and their checkpoint state round trips."""

import dataclasses
import json
import math

import pytest
import torch

from lerobot.optim import (
    AdamConfig,
    AdamWConfig,
    CosineSchedule,
    OptimizerConfig,
    SchedulerConfig,
    SGDConfig,
    load_optimizer_state,
    load_scheduler_state,
    make_optimizer,
    make_scheduler,
    resolve_optimizer,
    resolve_scheduler,
    save_optimizer_state,
    save_scheduler_state,
)
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig


def lrs(kind: str, steps: int = 100, **fields) -> list[float]:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = make_scheduler(opt, resolve_scheduler(SchedulerConfig(type=kind, **fields), None, steps))
    out = []
    for _ in range(steps):
        out.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    return out


def test_policy_preset_with_overrides():
    preset = ACTConfig().get_optimizer_preset()
    plain = resolve_optimizer(OptimizerConfig(), preset)
    assert plain == AdamWConfig(lr=1e-5, weight_decay=1e-4, grad_clip_norm=10.0)
    tuned = resolve_optimizer(OptimizerConfig(lr=3e-4, grad_clip_norm=1.0), preset)
    assert (tuned.lr, tuned.grad_clip_norm, tuned.weight_decay) == (3e-4, 1.0, 1e-4)
    with pytest.raises(ValueError, match="adamw"):
        resolve_optimizer(OptimizerConfig(type="adamx"), preset)


# Each policy's preset from its optimizer_* fields (config.json keys): the defaults, and set values.
POLICY_PRESETS = {
    "act": AdamWConfig(lr=1e-5, weight_decay=1e-4, grad_clip_norm=10.0),
    "diffusion": AdamConfig(lr=1e-4, betas=(0.95, 0.999), eps=1e-8, weight_decay=1e-6),
    "vqbet": AdamConfig(lr=1e-4, betas=(0.95, 0.999), eps=1e-8, weight_decay=1e-6),
    "tdmpc": AdamConfig(lr=3e-4),
    "smolvla": AdamWConfig(lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=1e-10),
    "pi0": AdamWConfig(lr=2.5e-5, betas=(0.9, 0.95), weight_decay=0.01, grad_clip_norm=1.0),
    "pi05": AdamWConfig(lr=2.5e-5, betas=(0.9, 0.95), weight_decay=0.01, grad_clip_norm=1.0),
}
SET_FIELDS = {
    "optimizer_lr": ("lr", 3e-3),
    "optimizer_betas": ("betas", (0.5, 0.75)),
    "optimizer_eps": ("eps", 1e-6),
    "optimizer_weight_decay": ("weight_decay", 0.25),
    "optimizer_grad_clip_norm": ("grad_clip_norm", 2.0),
}


@pytest.mark.parametrize("kind", sorted(POLICY_PRESETS))
def test_each_policy_preset_reads_its_optimizer_fields(kind):
    """Adam or AdamW from whichever optimizer_* fields the policy has; the others keep the preset's default
    (ACT's and TD-MPC's betas, VQ-BeT's clip norm...); a policy's other optimizer_* fields are its own."""
    from lerobot.policies.config import PreTrainedConfig

    cls = PreTrainedConfig.get_choice_class(kind)
    expected = POLICY_PRESETS[kind]
    assert cls().get_optimizer_preset() == expected
    names = {f.name for f in dataclasses.fields(cls)}
    values = {name: value for name, (_, value) in SET_FIELDS.items() if name in names}
    tuned = {SET_FIELDS[name][0]: value for name, value in values.items()}
    assert cls(**values).get_optimizer_preset() == dataclasses.replace(expected, **tuned)


def test_presets_are_typed_per_optimizer_kind(caplog):
    """Switching kind keeps the shared settings; a setting the kind lacks is ignored with a warning."""
    sgd = resolve_optimizer(OptimizerConfig(type="sgd", betas=(0.5, 0.5)), AdamWConfig(lr=3e-3))
    assert sgd == SGDConfig(lr=3e-3) and "--optimizer.betas does not apply to the sgd" in caplog.text
    assert isinstance(make_optimizer(torch.nn.Linear(2, 2).parameters(), sgd), torch.optim.SGD)
    adam = make_optimizer(torch.nn.Linear(2, 2).parameters(), AdamConfig(betas=[0.95, 0.999]))
    assert type(adam) is torch.optim.Adam and adam.defaults["betas"] == (0.95, 0.999)
    with pytest.raises(ValueError, match="positive"):
        AdamWConfig(lr=0.0)


def test_cosine_with_warmup():
    values = lrs("cosine", 100, num_warmup_steps=10, min_lr_ratio=0.1)
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(values[10:], values[11:]))
    assert values[-1] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 89 / 90)))


def test_onecycle_and_constant():
    values = lrs("onecycle", 100)
    peak = max(range(100), key=values.__getitem__)
    assert peak == 30 and values[peak] == pytest.approx(1.0)
    assert values[0] == pytest.approx(1 / 25) and values[-1] < 1 / 25
    assert lrs("constant", 10) == [1.0] * 10
    assert lrs("constant", 10, num_warmup_steps=5)[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])


def test_preset_names_of_other_libraries():
    diffusion = DiffusionConfig().get_scheduler_preset()
    assert resolve_scheduler(SchedulerConfig(), diffusion, 10) == CosineSchedule(
        num_warmup_steps=500, num_decay_steps=10
    )
    assert resolve_scheduler(SchedulerConfig(type="cosine_decay_with_warmup"), None, 10).type == "cosine"
    assert resolve_scheduler(SchedulerConfig(), None, 10).type == "constant"
    with pytest.raises(ValueError, match="onecycle"):
        resolve_scheduler(SchedulerConfig(type="linear_warmup_exp"), None, 10)


def test_optimizer_and_scheduler_state_round_trip(tmp_path):
    def build():
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
        groups = [{"params": model[0].parameters()}, {"params": model[1].parameters(), "lr": 1e-4}]
        opt = make_optimizer(groups, resolve_optimizer(OptimizerConfig(lr=1e-2), None))
        sched = make_scheduler(
            opt, resolve_scheduler(SchedulerConfig(type="cosine", num_warmup_steps=2), None, 10)
        )
        return model, opt, sched

    def train(model, opt, sched, n):
        for i in range(n):
            model(torch.full((5, 3), float(i))).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
            sched.step()

    model, opt, sched = build()
    train(model, opt, sched, 3)
    save_optimizer_state(opt, tmp_path)
    save_scheduler_state(sched, tmp_path)
    groups = json.loads((tmp_path / "optimizer_param_groups.json").read_text())
    assert [g["params"] for g in groups] == [[0, 1], [2, 3]] and groups[1]["lr"] != groups[0]["lr"]

    model2, opt2, sched2 = build()
    model2.load_state_dict(model.state_dict())
    load_optimizer_state(opt2, tmp_path)
    load_scheduler_state(sched2, tmp_path)
    train(model, opt, sched, 3)
    train(model2, opt2, sched2, 3)
    for a, b in zip(model.parameters(), model2.parameters()):
        assert torch.equal(a, b)
    assert sched.get_last_lr() == sched2.get_last_lr()

    other = make_optimizer(torch.nn.Linear(3, 4).parameters(), resolve_optimizer(OptimizerConfig(), None))
    with pytest.raises(ValueError, match="another model"):
        load_optimizer_state(other, tmp_path)


def test_adam_uses_the_fused_kernel_with_the_same_updates():
    settings = resolve_optimizer(OptimizerConfig(lr=1e-2, weight_decay=1e-2), None)

    def train(make) -> torch.Tensor:
        torch.manual_seed(0)
        model = torch.nn.Linear(8, 3)
        opt = make(model.parameters())
        for i in range(5):
            model(torch.full((4, 8), float(i))).pow(2).mean().backward()
            opt.step()
            opt.zero_grad()
        return model.weight.detach()

    assert make_optimizer(torch.nn.Linear(2, 2).parameters(), settings).defaults["fused"] is True
    fused = train(lambda params: make_optimizer(params, settings))
    multi_tensor = train(lambda params: torch.optim.AdamW(params, lr=1e-2, weight_decay=1e-2, foreach=True))
    torch.testing.assert_close(fused, multi_tensor, rtol=1e-6, atol=1e-7)
