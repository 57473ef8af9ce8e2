"""TD-MPC's task-oriented latent dynamics model (TOLD): every network the planner and the losses use.

Shapes (B batch, D = latent_dim, A = action dim, E = q_ensemble_size)::

    encode(obs)                     {name: (B, ...)} -> z (B, D)       mean of the per-input encoders
    latent_dynamics_and_reward(z, a)  (B, D), (B, A) -> z' (B, D), r (B,)
    latent_dynamics(z, a)           -> z' (B, D)
    reward(z, a)                    -> r (B,)
    pi(z, std=0)                    -> a (B, A) in [-1, 1]             tanh policy prior (+ clamped noise)
    Qs(z, a, return_min=False)      -> (E, B), or (B,) the minimum of two random heads
    V(z)                            -> (B,)

Every latent goes through LayerNorm and a sigmoid, so z lives in (0, 1)^D whatever encoded it.
Module names (``_encoder``, ``_dynamics``, ``_reward``, ``_pi``, ``_Qs``, ``_V``) and layer indices are
the ones LeRobot's checkpoints use. The last layers of the reward and Q heads start at zero, so that
neither predicts anything before it has seen data.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot.configs.types import OBS_ENV_STATE, OBS_STATE
from lerobot.policies.tdmpc.configuration_tdmpc import TDMPCConfig


def _mlp(in_dim: int, hidden: int, out_dim: int) -> nn.Sequential:
    """Two LayerNorm + Mish hidden layers: the dynamics, reward and policy heads."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.LayerNorm(hidden),
        nn.Mish(),
        nn.Linear(hidden, hidden),
        nn.LayerNorm(hidden),
        nn.Mish(),
        nn.Linear(hidden, out_dim),
    )


def _value_head(in_dim: int, hidden: int) -> nn.Sequential:
    """LayerNorm + tanh, then ELU: the Q and V heads (a bounded first layer keeps values stable)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.LayerNorm(hidden),
        nn.Tanh(),
        nn.Linear(hidden, hidden),
        nn.ELU(),
        nn.Linear(hidden, 1),
    )


def _heads_as_one(heads: Sequence[nn.Module], x: Tensor) -> Tensor:
    """Several :func:`_value_head` s on the same ``x`` (..., in) -> (E, ...), as one chain of batched
    matrix products over their stacked weights: one op per layer instead of one per layer and head,
    which is most of the cost at the ensemble's small widths. The same math as calling each head.

    Heads whose layers are not the stock modules (a quantized copy, a test's stand-in) are called one
    by one."""
    stock = (nn.Linear, nn.LayerNorm, nn.Tanh, nn.Linear, nn.ELU, nn.Linear)
    if any(
        not isinstance(h, nn.Sequential) or tuple(map(type, h)) != stock or h[4].alpha != 1.0 for h in heads
    ):
        return torch.stack([h(x).squeeze(-1) for h in heads])

    def stacked(layer: int, name: str) -> Tensor:  # (E, ...) one parameter of every head
        return torch.stack([getattr(h[layer], name) for h in heads])

    lead, norm = x.shape[:-1], heads[0][1]
    y = x.reshape(1, -1, x.shape[-1]).expand(len(heads), -1, -1)  # (E, M, in)
    y = torch.baddbmm(stacked(0, "bias").unsqueeze(1), y, stacked(0, "weight").transpose(1, 2))
    y = F.layer_norm(y, norm.normalized_shape, eps=norm.eps)
    y = torch.tanh(y * stacked(1, "weight").unsqueeze(1) + stacked(1, "bias").unsqueeze(1))
    y = F.elu(torch.baddbmm(stacked(3, "bias").unsqueeze(1), y, stacked(3, "weight").transpose(1, 2)))
    y = torch.baddbmm(stacked(5, "bias").unsqueeze(1), y, stacked(5, "weight").transpose(1, 2))
    return y.reshape(len(heads), *lead)


def _vector_encoder(in_dim: int, hidden: int, latent_dim: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(in_dim, hidden),
        nn.ELU(),
        nn.Linear(hidden, latent_dim),
        nn.LayerNorm(latent_dim),
        nn.Sigmoid(),
    )


class TDMPCObservationEncoder(nn.Module):
    """One encoder per input (camera, robot state, environment state); the latent is their mean."""

    def __init__(self, config: TDMPCConfig):
        super().__init__()
        d = config.latent_dim
        self.image_key: str | None = next(iter(config.image_features), None)
        if self.image_key is not None:
            channels, side, _ = config.image_features[self.image_key].shape
            h = config.image_encoder_hidden_dim
            convs = nn.Sequential(
                nn.Conv2d(channels, h, 7, stride=2),
                nn.ReLU(),
                nn.Conv2d(h, h, 5, stride=2),
                nn.ReLU(),
                nn.Conv2d(h, h, 3, stride=2),
                nn.ReLU(),
                nn.Conv2d(h, h, 3, stride=2),
                nn.ReLU(),
            )
            with torch.device("meta"):  # the flattened size, without computing anything
                flat = convs(torch.empty(1, channels, side, side, device="meta")).numel()
            self.image_enc_layers = nn.Sequential(
                *convs, nn.Flatten(), nn.Linear(flat, d), nn.LayerNorm(d), nn.Sigmoid()
            )
        if config.robot_state_feature is not None:
            dim = config.robot_state_feature.shape[0]
            self.state_enc_layers = _vector_encoder(dim, config.state_encoder_hidden_dim, d)
        if config.env_state_feature is not None:
            dim = config.env_state_feature.shape[0]
            self.env_state_enc_layers = _vector_encoder(dim, config.state_encoder_hidden_dim, d)

    def forward(self, obs: dict[str, Tensor]) -> Tensor:
        """``{name: (..., *feature_shape)}`` -> (..., D); leading dims (batch, time) are kept."""
        features = []
        if self.image_key is not None:
            image = obs[self.image_key]
            lead = image.shape[:-3]
            flat = self.image_enc_layers(image.reshape(-1, *image.shape[-3:]))
            features.append(flat.reshape(*lead, -1))
        if hasattr(self, "state_enc_layers"):
            features.append(self.state_enc_layers(obs[OBS_STATE]))
        if hasattr(self, "env_state_enc_layers"):
            features.append(self.env_state_enc_layers(obs[OBS_ENV_STATE]))
        return torch.stack(features).mean(0)


class TOLD(nn.Module):
    """Encoder, latent dynamics, reward, policy prior, Q ensemble and V, all over the latent z."""

    def __init__(self, config: TDMPCConfig):
        super().__init__()
        self.config = config
        d, a, h = config.latent_dim, config.action_feature.shape[0], config.mlp_dim
        self._encoder = TDMPCObservationEncoder(config)
        self._dynamics = nn.Sequential(*_mlp(d + a, h, d), nn.LayerNorm(d), nn.Sigmoid())
        self._reward = _mlp(d + a, h, 1)
        self._pi = _mlp(d, h, a)
        self._Qs = nn.ModuleList([_value_head(d + a, h) for _ in range(config.q_ensemble_size)])
        self._V = _value_head(d, h)
        self._init_weights()

    def _init_weights(self) -> None:
        """Orthogonal weights, zero biases; the reward and Q heads' last layers start at zero."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.orthogonal_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Conv2d):
                nn.init.orthogonal_(m.weight, nn.init.calculate_gain("relu"))
                nn.init.zeros_(m.bias)
        for last in [self._reward[-1], *(q[-1] for q in self._Qs)]:
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)

    def encode(self, obs: dict[str, Tensor]) -> Tensor:
        return self._encoder(obs)

    def latent_dynamics_and_reward(self, z: Tensor, a: Tensor) -> tuple[Tensor, Tensor]:
        x = torch.cat([z, a], dim=-1)
        return self._dynamics(x), self._reward(x).squeeze(-1)

    def latent_dynamics(self, z: Tensor, a: Tensor) -> Tensor:
        return self._dynamics(torch.cat([z, a], dim=-1))

    def reward(self, z: Tensor, a: Tensor) -> Tensor:
        """The reward of action ``a`` in ``z``; leading dims are kept, so a whole rollout (H, B) is one call."""
        return self._reward(torch.cat([z, a], dim=-1)).squeeze(-1)

    def pi(self, z: Tensor, std: float = 0.0, noise: Tensor | None = None) -> Tensor:
        """The policy prior's action; with ``std`` > 0, Gaussian noise added and the sum clamped to [-1, 1].

        ``noise``: that standard-normal draw, given (the planner's draws, an export's inputs)."""
        action = torch.tanh(self._pi(z))
        if std > 0:
            action = action + (torch.randn_like(action) if noise is None else noise) * std
        return action.clamp(-1, 1)

    def V(self, z: Tensor) -> Tensor:  # noqa: N802  (the paper's and the checkpoint's name)
        return self._V(z).squeeze(-1)

    def Qs(self, z: Tensor, a: Tensor, return_min: bool = False) -> Tensor:  # noqa: N802
        """Every head's Q (E, ...), or the minimum of two heads drawn at random (the TD target's pessimism)."""
        x = torch.cat([z, a], dim=-1)
        if not return_min:
            return _heads_as_one(self._Qs, x)
        heads = [self._Qs[i] for i in torch.randperm(len(self._Qs))[:2].tolist()]
        return _heads_as_one(heads, x).min(0).values
