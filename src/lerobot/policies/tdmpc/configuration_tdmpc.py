"""TD-MPC configuration (Hansen et al. 2022, "Temporal Difference Learning for Model Predictive Control",
https://arxiv.org/abs/2203.04955), with the offline-to-online losses of FOWM (Feng et al. 2023,
"Finetuning Offline World Models in the Real World", https://arxiv.org/abs/2310.16029).

Field names and defaults are LeRobot 0.6's, so a ``config.json`` written by either library builds the
same policy. ``td_n_steps`` is this library's addition (LeRobot's targets are one-step); it is written to
``config.json`` only when it is not 1, so default checkpoints stay loadable by LeRobot. Time layout of one training sample (``horizon=5``)::

    observations at t .. t+5      (observation_delta_indices = [0, ..., horizon])
    actions      at t .. t+4      (action_delta_indices = [0, ..., horizon - 1])
    rewards      at t .. t+4      (reward_delta_indices, the dataset's ``next.reward``)

At run time each planned action is repeated ``n_action_repeats`` times (TD-MPC's action repeat), and
``n_action_steps`` actions of each plan are executed before planning again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lerobot.configs.types import NormalizationMode
from lerobot.optim.optimizers import AdamConfig
from lerobot.policies.config import PreTrainedConfig


@PreTrainedConfig.register_subclass("tdmpc")
@dataclass
class TDMPCConfig(PreTrainedConfig):
    """A task-oriented latent dynamics model planned with MPPI, its value learned by n-step TD."""

    # Input / output structure
    n_action_repeats: int = 2
    """Environment steps each chosen action is repeated for."""
    horizon: int = 5
    """Planning horizon and the length of the latent rollout trained per sample."""
    n_action_steps: int = 1
    """Actions of each plan executed before planning again (> 1 needs n_action_repeats=1)."""
    normalization_mapping: dict[str, NormalizationMode] = field(
        default_factory=lambda: {
            "VISUAL": NormalizationMode.IDENTITY,
            "STATE": NormalizationMode.IDENTITY,
            "ENV": NormalizationMode.IDENTITY,
            "ACTION": NormalizationMode.MIN_MAX,
        }
    )
    """How each feature type is normalised (actions must be MIN_MAX: the policy acts in [-1, 1])."""

    # Network
    image_encoder_hidden_dim: int = 32
    """Channels of the four image convolutions."""
    state_encoder_hidden_dim: int = 256
    """Hidden width of the state (and environment-state) encoder MLPs."""
    latent_dim: int = 50
    """Size of the latent state z."""
    q_ensemble_size: int = 5
    """Q heads in the ensemble (targets and planning use their min / mean and spread)."""
    mlp_dim: int = 512
    """Hidden width of the dynamics, reward, policy, Q and V MLPs."""

    # Reinforcement learning
    discount: float = 0.9
    """Reward discount per (repeated) step."""
    td_n_steps: int = 1
    """Rewards summed before bootstrapping from V in the Q targets (n-step TD; at most horizon)."""

    # Planning (MPPI / CEM in latent space)
    use_mpc: bool = True
    """Plan with MPPI at inference; false: act with the policy prior's mean (deterministic)."""
    cem_iterations: int = 6
    """Refinement iterations of the action distribution per plan."""
    max_std: float = 2.0
    """Initial standard deviation of the sampled action sequences."""
    min_std: float = 0.05
    """Lower bound on that standard deviation, and the noise of the policy-prior trajectories."""
    n_gaussian_samples: int = 512
    """Action sequences sampled from the Gaussian per iteration."""
    n_pi_samples: int = 51
    """Action sequences proposed by the policy prior per plan (0: plain MPPI)."""
    uncertainty_regularizer_coeff: float = 1.0
    """Penalty on the Q ensemble's spread when scoring trajectories (pessimism for offline data)."""
    n_elites: int = 50
    """Best trajectories kept to refit the Gaussian."""
    elite_weighting_temperature: float = 0.5
    """Inverse temperature of the elites' softmax weights."""
    gaussian_mean_momentum: float = 0.1
    """Weight of the previous mean when refitting (0: no momentum)."""

    # Training
    max_random_shift_ratio: float = 0.0476
    """Random-shift image augmentation: padding as a fraction of the image side (0: off)."""
    reward_coeff: float = 0.5
    """Weight of the reward prediction loss."""
    expectile_weight: float = 0.9
    """Expectile of the V regression towards the target Q (IQL-style; 0.5 is plain MSE)."""
    value_coeff: float = 0.1
    """Weight of the Q and V losses."""
    consistency_coeff: float = 20.0
    """Weight of the latent consistency loss (dynamics vs the target encoder)."""
    advantage_scaling: float = 3.0
    """Inverse temperature of the advantage weights in the policy loss."""
    pi_coeff: float = 0.5
    """Weight of the policy (advantage-weighted regression) loss."""
    temporal_decay_coeff: float = 0.5
    """Each later step of the latent rollout weighs this much less (rho in the paper)."""
    target_model_momentum: float = 0.995
    """EMA momentum of the target network (updated after each optimiser step)."""
    optimizer_lr: float = 3e-4
    """Adam learning rate (guide: ``lr``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_obs_steps != 1:
            raise ValueError(f"TD-MPC uses one observation frame (n_obs_steps=1), got {self.n_obs_steps}.")
        if self.n_action_steps > 1 and self.n_action_repeats != 1:
            raise ValueError(
                "Executing several planned actions (n_action_steps > 1) needs n_action_repeats=1, got "
                f"n_action_steps={self.n_action_steps}, n_action_repeats={self.n_action_repeats}."
            )
        if not 1 <= self.td_n_steps <= self.horizon:
            raise ValueError(f"td_n_steps must be in [1, horizon={self.horizon}], got {self.td_n_steps}.")
        if self.n_action_steps > self.horizon:
            raise ValueError(f"n_action_steps={self.n_action_steps} exceeds horizon={self.horizon}.")
        if self.use_mpc and self.n_elites > self.n_gaussian_samples + self.n_pi_samples:
            raise ValueError(
                f"n_elites={self.n_elites} exceeds the {self.n_gaussian_samples + self.n_pi_samples} "
                "trajectories sampled per iteration (n_gaussian_samples + n_pi_samples)."
            )
        action_mode = NormalizationMode(self.normalization_mapping.get("ACTION", "IDENTITY"))
        if action_mode is not NormalizationMode.MIN_MAX:
            raise ValueError(
                "TD-MPC acts in [-1, 1] (tanh policy, clamped plans): set "
                f'normalization_mapping["ACTION"]="MIN_MAX" (got {action_mode.value}).'
            )

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        if self.td_n_steps == 1:
            del out["td_n_steps"]
        return out

    def validate_features(self) -> None:
        images = self.image_features
        if len(images) > 1:
            raise ValueError(f"TD-MPC takes at most one camera, got {sorted(images)}.")
        for name, ft in images.items():
            if len(ft.shape) != 3 or ft.shape[1] != ft.shape[2]:
                raise ValueError(
                    f"TD-MPC's image encoder takes square images (3, S, S); {name} has shape {tuple(ft.shape)}. "
                    "Crop or resize the camera to a square (e.g. --env.image_size='[64, 64]')."
                )
            side = ft.shape[1]
            for kernel in (7, 5, 3, 3):  # the encoder's stride-2 convolutions
                side = (side - kernel) // 2 + 1
            if side < 1:
                raise ValueError(
                    f"TD-MPC's image encoder needs images of at least 45x45 pixels; {name} is {tuple(ft.shape)}."
                )
        if not images and self.robot_state_feature is None and self.env_state_feature is None:
            raise ValueError(
                "TD-MPC needs a camera, observation.state or observation.environment_state among its inputs; "
                f"got {sorted(self.input_features)}."
            )
        if self.action_feature is None:
            raise ValueError(f"TD-MPC needs an 'action' output feature; got {sorted(self.output_features)}.")

    @property
    def draws_terminal_heads(self) -> bool:
        """Whether planning draws the two Q heads of its terminal value (with 2 heads it takes both)."""
        return self.q_ensemble_size > 2

    @property
    def observation_delta_indices(self) -> list[int]:
        return list(range(self.horizon + 1))

    @property
    def action_delta_indices(self) -> list[int]:
        return list(range(self.horizon))

    @property
    def reward_delta_indices(self) -> list[int]:
        return list(range(self.horizon))

    def get_optimizer_preset(self) -> AdamConfig:
        return self.adam_preset_from_fields(AdamConfig)
