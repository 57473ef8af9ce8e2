"""Diffusion Policy, readable top to bottom.

Chi et al. 2023, "Diffusion Policy: Visuomotor Policy Learning via Action Diffusion"
(https://arxiv.org/abs/2303.04137), the CNN variant. Parameter names are LeRobot's, so a LeRobot
``model.safetensors`` loads here.

Shapes (B batch, S = n_obs_steps, T = horizon, A action dim, N cameras)::

    observation.state             (B, S, state_dim)      (optional)
    observation.images.<cam>      (B, S, 3, H, W)        floats in [0, 1] (zero or more cameras)
    observation.environment_state (B, S, env_dim)        (optional)
    action                        (B, T, A)              training target, steps t-S+1 .. t-S+T
    action_is_pad                 (B, T) bool            (optional; used with do_mask_loss_for_padding)

Model::

    per step: [state, keypoints of each camera (ResNet -> spatial softmax -> linear), env state]
        -> flattened over the S steps = global conditioning c                        (B, S * cond_dim)
    noise (B, T, A) --(num_inference_steps x  U-Net(x_k, k, c) + DDPM/DDIM step)--> actions (B, T, A)
    executed: actions[:, S-1 : S-1+n_action_steps]   (the current step onwards)

U-Net: 1-D convolutions over time; every residual block is FiLM-conditioned on
[time-step embedding, c] (per-channel scale and bias). Loss = MSE between the U-Net output and the
noise (``prediction_type="epsilon"``) or the clean actions (``"sample"``) at a random time step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections import deque
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot.configs.types import ACTION, OBS_ENV_STATE, OBS_STATE
from lerobot.policies.backbones import make_resnet
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.layers import inference_layout, linear
from lerobot.policies.pretrained import PolicyAction, PreTrainedPolicy, inference_step


class DiffusionPolicy(PreTrainedPolicy):
    """Diffusion Policy with normalisation, observation history and action queue.

    ``select_action`` keeps the last ``n_obs_steps`` observations, and when its action queue is
    empty denoises a new ``horizon``-long sequence and queues ``n_action_steps`` of it. Each frame
    is encoded at most once (when a prediction first needs it) and its features are reused while
    it stays in the history: the ResNet is most of a batch-1 prediction's cost.
    With ``config.use_ema``, the training loop calls ``policy.update()`` after each optimiser step
    (the ``PolicyWithUpdate`` protocol); inference and ``save_pretrained`` then use the averaged
    weights, training keeps the live ones. ``policy.ema.state_dict()`` goes into training checkpoints.
    """

    config_class = DiffusionConfig
    name = "diffusion"

    def __init__(self, config: DiffusionConfig, dataset_stats: dict[str, dict[str, Any]] | None = None):
        super().__init__(config, dataset_stats)
        self.diffusion = DiffusionModel(config)
        self.ema = EMA(self.diffusion, config.ema_power, config.ema_max_decay) if config.use_ema else None
        self.reset()

    def reset(self) -> None:
        self._history: deque[_Frame] = deque(maxlen=self.config.n_obs_steps)
        self._action_queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)

    def update(self) -> None:
        """After each optimiser step: fold the new weights into the EMA (no-op without ``use_ema``)."""
        if self.ema is not None:
            self.ema.update()

    def _inference_weights(self) -> contextlib.AbstractContextManager:
        return self.ema.averaged() if self.ema is not None else contextlib.nullcontext()

    def save_pretrained(self, save_directory: Any, **kwargs: Any) -> Any:
        """As the base class; with EMA the averaged weights are the ones saved."""
        with self._inference_weights():
            return super().save_pretrained(save_directory, **kwargs)

    @inference_step
    def predict_action_chunk(self, observation: dict[str, Any]) -> Tensor:
        """Raw observation -> (B, n_action_steps, A) actions in robot units, from the current step.

        A single frame per feature ``(B, ...)`` joins the observation history (as in
        ``select_action``); a full history ``(B, n_obs_steps, ...)`` is used as given.
        """
        obs = self.prepare_observation(observation)
        cfg = self.config
        full_history = all(
            obs[k].dim() == len(f.shape) + 2 for k, f in cfg.input_features.items() if k in obs
        )
        if full_history:
            self.check_features(obs, cfg.input_features, time_steps=cfg.n_obs_steps)
        else:
            self._push_observation(obs)
        with self._inference_weights():
            if full_history:
                global_cond = self.diffusion.global_conditioning(self.normalize_inputs(obs))
            else:
                global_cond = self._history_conditioning()
            actions = self.diffusion.generate_actions(global_cond)
        return self.unnormalize_outputs({ACTION: actions})[ACTION]

    @inference_step
    def select_action(self, observation: dict[str, Any]) -> PolicyAction:
        """Raw observation -> ``{"action": (B, A)}`` in robot units for this control step."""
        self._push_observation(self.prepare_observation(observation))
        if not self._action_queue:
            with self._inference_weights():
                actions = self.diffusion.generate_actions(self._history_conditioning())  # normalised
            self._action_queue.extend(actions.transpose(0, 1))
        action = self._action_queue.popleft()
        return PolicyAction(action=self.unnormalize_outputs({ACTION: action})[ACTION])

    def _push_observation(self, obs: dict[str, Tensor]) -> None:
        """Append one normalised frame to the history (not encoded yet: it may never be needed).

        After ``reset`` the first frame fills the whole history (the robot was standing still).
        """
        self.check_features(obs, self.config.input_features)
        obs = self.normalize_inputs(obs)
        frame = _Frame({key: obs[key] for key in self.config.input_features})
        if self._history:
            self._history.append(frame)
        else:
            self._history.extend([frame] * self.config.n_obs_steps)

    def _history_conditioning(self) -> Tensor:
        """(B, n_obs_steps * cond_dim) conditioning of the history, encoding only new frames."""
        new = list({id(f): f for f in self._history if f.features is None}.values())
        if new:
            stacked = {key: torch.stack([f.obs[key] for f in new], dim=1) for key in new[0].obs}
            features = self.diffusion.step_features(stacked)  # (B, len(new), cond_dim)
            for i, frame in enumerate(new):
                frame.features, frame.obs = features[:, i], {}
        return torch.cat([f.features for f in self._history], dim=-1)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Raw training batch -> ``{"loss": scalar}`` (denoising MSE at random time steps)."""
        cfg = self.config
        self.check_features(batch, cfg.input_features, time_steps=cfg.n_obs_steps)
        self.check_features(batch, cfg.output_features, time_steps=cfg.horizon)
        batch = self.normalize_targets(self.normalize_inputs(batch))
        return {"loss": self.diffusion.compute_loss(batch)}


@dataclasses.dataclass
class _Frame:
    """One normalised observation in the history and, once a prediction needed it, its features."""

    obs: dict[str, Tensor]
    features: Tensor | None = None


class EMA:
    """Exponential moving average of a module's trainable parameters (Polyak averaging).

    Decay warms up as ``1 - (1 + step) ** -power`` (capped at ``max_decay``) so early, poor
    weights are forgotten fast, as in the Diffusion Policy paper's training recipe.
    """

    def __init__(self, module: nn.Module, power: float = 0.75, max_decay: float = 0.9999):
        self.module, self.power, self.max_decay = module, power, max_decay
        self.step = 0
        self.shadow: dict[str, Tensor] | None = None  # created at the first update, from the weights then

    def _params(self) -> dict[str, Tensor]:
        return {n: p for n, p in self.module.named_parameters() if p.requires_grad}

    def decay(self) -> float:
        return min(self.max_decay, 1 - self.step**-self.power)

    @torch.no_grad()
    def update(self) -> None:
        self.step += 1
        params = self._params()
        if self.shadow is None:
            self.shadow = {n: p.detach().clone() for n, p in params.items()}
            return
        names = list(params)
        torch._foreach_lerp_(
            [self.shadow[n] for n in names], [params[n].detach() for n in names], 1 - self.decay()
        )

    @contextlib.contextmanager
    def averaged(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the module (no-op before the first update)."""
        if self.shadow is None:
            yield
            return
        params = self._params()
        live = {n: p.data for n, p in params.items()}
        for n, p in params.items():
            p.data = self.shadow[n].to(p.device)
        try:
            yield
        finally:
            for n, p in params.items():
                p.data = live[n]

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step, "shadow": self.shadow}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.shadow = int(state["step"]), state["shadow"]


def make_noise_scheduler(config: DiffusionConfig) -> Any:
    """diffusers' DDPM or DDIM scheduler with the config's beta schedule."""
    from diffusers.schedulers.scheduling_ddim import DDIMScheduler
    from diffusers.schedulers.scheduling_ddpm import DDPMScheduler

    scheduler_cls = {"DDPM": DDPMScheduler, "DDIM": DDIMScheduler}[config.noise_scheduler_type]
    return scheduler_cls(
        num_train_timesteps=config.num_train_timesteps,
        beta_start=config.beta_start,
        beta_end=config.beta_end,
        beta_schedule=config.beta_schedule,
        clip_sample=config.clip_sample,
        clip_sample_range=config.clip_sample_range,
        prediction_type=config.prediction_type,
    )


class DiffusionModel(nn.Module):
    """Normalised observations -> conditioning -> denoised action sequence; and the training loss."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        self.config = config
        cond_dim = 0  # per observation step
        if config.robot_state_feature:
            cond_dim += config.robot_state_feature.shape[0]
        if config.image_features:
            n_cams = len(config.image_features)
            if config.use_separate_rgb_encoder_per_camera:
                self.rgb_encoder = nn.ModuleList([DiffusionRgbEncoder(config) for _ in range(n_cams)])
                cond_dim += self.rgb_encoder[0].feature_dim * n_cams
            else:
                self.rgb_encoder = DiffusionRgbEncoder(config)
                cond_dim += self.rgb_encoder.feature_dim * n_cams
        if config.env_state_feature:
            cond_dim += config.env_state_feature.shape[0]
        self.unet = DiffusionConditionalUnet1d(config, global_cond_dim=cond_dim * config.n_obs_steps)
        self.noise_scheduler = make_noise_scheduler(config)
        self.num_inference_steps = config.num_inference_steps or config.num_train_timesteps

    def global_conditioning(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, S, ...) observations -> (B, S * cond_dim), the steps' features one after another."""
        return self.step_features(batch).flatten(1)

    def step_features(self, batch: dict[str, Tensor]) -> Tensor:
        """(B, S, ...) observations -> (B, S, cond_dim): per step [state, cameras' keypoints, env state]."""
        cfg = self.config
        feats = []
        if cfg.robot_state_feature:
            feats.append(batch[OBS_STATE])
        if cfg.image_features:
            images = [batch[key] for key in cfg.image_features]  # each (B, S, C, H, W)
            batch_size, n_steps = images[0].shape[:2]
            if cfg.use_separate_rgb_encoder_per_camera:
                per_cam = [enc(img.flatten(0, 1)) for enc, img in zip(self.rgb_encoder, images, strict=True)]
                feats.append(torch.cat(per_cam, dim=-1).unflatten(0, (batch_size, n_steps)))
            else:
                stacked = torch.stack(images, dim=2).flatten(0, 2)  # (B * S * N, C, H, W)
                feats.append(self.rgb_encoder(stacked).reshape(batch_size, n_steps, -1))
        if cfg.env_state_feature:
            feats.append(batch[OBS_ENV_STATE])
        return torch.cat(feats, dim=-1)

    def conditional_sample(
        self, batch_size: int, global_cond: Tensor, generator: torch.Generator | None = None
    ) -> Tensor:
        """Denoise pure noise into a (B, horizon, A) action sequence with the inference scheduler."""
        cfg = self.config
        sample = torch.randn(
            (batch_size, cfg.horizon, cfg.action_feature.shape[0]),
            dtype=global_cond.dtype,
            device=global_cond.device,
            generator=generator,
        )
        self.noise_scheduler.set_timesteps(self.num_inference_steps)
        timesteps = self.noise_scheduler.timesteps
        # The FiLM inputs do not depend on the sample: one batch for all denoising steps.
        film_table = self.unet.film(
            timesteps.to(sample.device, torch.long).repeat_interleave(batch_size),
            global_cond.repeat(len(timesteps), 1),
        )
        film_table = [f.unflatten(0, (len(timesteps), batch_size)) for f in film_table]
        for i, t in enumerate(timesteps):
            model_output = self.unet(sample, film=[f[i] for f in film_table])
            sample = self.noise_scheduler.step(model_output, t, sample, generator=generator).prev_sample
        return sample

    def generate_actions(self, global_cond: Tensor) -> Tensor:
        """(B, S * cond_dim) conditioning -> (B, n_action_steps, A) normalised actions from step t."""
        actions = self.conditional_sample(global_cond.shape[0], global_cond)
        start = self.config.n_obs_steps - 1
        return actions[:, start : start + self.config.n_action_steps]

    def compute_loss(self, batch: dict[str, Tensor]) -> Tensor:
        """Noise the target actions at a random time step; regress the noise (or the clean actions)."""
        cfg = self.config
        trajectory = batch[ACTION]  # (B, T, A)
        global_cond = self.global_conditioning(batch)
        noise = torch.randn_like(trajectory)
        timesteps = torch.randint(
            0, cfg.num_train_timesteps, (trajectory.shape[0],), device=trajectory.device, dtype=torch.long
        )
        noisy = self.noise_scheduler.add_noise(trajectory, noise, timesteps)
        pred = self.unet(noisy, timesteps, global_cond=global_cond)
        target = noise if cfg.prediction_type == "epsilon" else trajectory
        loss = F.mse_loss(pred, target, reduction="none")
        if cfg.do_mask_loss_for_padding and "action_is_pad" in batch:
            loss = loss * ~batch["action_is_pad"].unsqueeze(-1)
        return loss.mean()


class SpatialSoftmax(nn.Module):
    """Feature map -> expected (x, y) image position of each keypoint (Levine et al. 2016).

    A 1x1 convolution turns the C channels into K keypoint heat maps; a softmax over each map's
    pixels weights a grid of coordinates in [-1, 1]: (B, C, H, W) -> (B, K, 2).
    """

    def __init__(self, in_channels: int, height: int, width: int, num_kp: int | None = None):
        super().__init__()
        self.nets = nn.Conv2d(in_channels, num_kp, kernel_size=1) if num_kp is not None else None
        self.num_kp = num_kp or in_channels
        pos_x, pos_y = np.meshgrid(np.linspace(-1.0, 1.0, width), np.linspace(-1.0, 1.0, height))
        grid = np.stack([pos_x.reshape(-1), pos_y.reshape(-1)], axis=1)  # (H * W, 2), x then y
        self.register_buffer("pos_grid", torch.from_numpy(grid).float())

    def forward(self, features: Tensor) -> Tensor:
        if self.nets is not None:
            features = self.nets(features)
        attention = F.softmax(features.flatten(2), dim=-1)  # (B, K, H * W)
        return attention @ self.pos_grid  # (B, K, 2)


class DiffusionRgbEncoder(nn.Module):
    """(N, 3, H, W) normalised images -> (N, 2 * keypoints) features: resize, crop, ResNet, spatial softmax."""

    def __init__(self, config: DiffusionConfig):
        super().__init__()
        if config.use_group_norm:

            def norm_layer(c: int) -> nn.Module:
                return nn.GroupNorm(num_groups=c // 16, num_channels=c)
        else:
            norm_layer = nn.BatchNorm2d
        resnet = make_resnet(
            config.vision_backbone, config.pretrained_backbone_weights, norm_layer=norm_layer
        )
        self.backbone = nn.Sequential(*list(resnet.children())[:-2])  # up to layer4: drop pool and fc
        self.resize_shape = config.resize_shape
        self.crop_size = config.crop_size
        self.crop_is_random = config.crop_is_random

        channels = next(iter(config.image_features.values())).shape[0]
        height, width = self.crop_size or config.image_size
        self.backbone.eval()  # size probe only: leave the batch-norm running stats untouched
        with torch.no_grad():
            fmap = self.backbone(torch.zeros(1, channels, height, width))
        self.backbone.train()
        num_kp = config.spatial_softmax_num_keypoints
        self.pool = SpatialSoftmax(fmap.shape[1], fmap.shape[2], fmap.shape[3], num_kp=num_kp)
        self.feature_dim = num_kp * 2
        self.out = nn.Linear(num_kp * 2, self.feature_dim)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        if self.resize_shape is not None and tuple(x.shape[-2:]) != self.resize_shape:
            import torchvision.transforms.functional as TF  # noqa: N812

            x = TF.resize(x, list(self.resize_shape), antialias=True)
        if self.crop_size is not None:
            random = self.training and self.crop_is_random
            x = random_crop(x, self.crop_size) if random else center_crop(x, self.crop_size)
        keypoints = self.pool(self.backbone(inference_layout(x, self.training)))
        return self.relu(self.out(keypoints.flatten(1)))


def center_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Central (h, w) window of (..., H, W); offsets rounded as torchvision's CenterCrop does."""
    h, w = size
    top = int(round((x.shape[-2] - h) / 2.0))
    left = int(round((x.shape[-1] - w) / 2.0))
    return x[..., top : top + h, left : left + w]


def random_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """An independent random (h, w) window for every image of the (N, C, H, W) batch."""
    n, _, height, width = x.shape
    h, w = size
    top = torch.randint(0, height - h + 1, (n, 1), device=x.device) + torch.arange(h, device=x.device)
    left = torch.randint(0, width - w + 1, (n, 1), device=x.device) + torch.arange(w, device=x.device)
    rows = x.gather(2, top[:, None, :, None].expand(-1, x.shape[1], -1, width))  # (N, C, h, W)
    return rows.gather(3, left[:, None, None, :].expand(-1, x.shape[1], h, -1))  # (N, C, h, w)


class DiffusionSinusoidalPosEmb(nn.Module):
    """Diffusion time step (B,) -> (B, dim) sinusoidal embedding (sin half, then cos half)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=x.device) * -(math.log(10000) / (half - 1)))
        angles = x[:, None].float() * freqs[None, :]
        return torch.cat((angles.sin(), angles.cos()), dim=-1)


class WindowMatmulConv1d(nn.Conv1d):
    """An ``nn.Conv1d`` computed as one matrix product over the unfolded time windows.

    Action sequences are short (horizon 16 -> 4 steps at the deepest level) while channels are wide;
    at those sizes oneDNN spends more time setting up than computing. Training on CPU, the product
    is faster for every U-Net convolution, narrow, 1x1 and strided ones included (forward +
    backward at batch 8: 1.2-2.4x); at batch-1 inference, and on other devices, only from 512
    inputs x taps on. Same parameters and state-dict keys as ``nn.Conv1d``; the result differs
    only by float32 summation order.
    """

    def forward(self, x: Tensor) -> Tensor:
        (k,), (stride,), (pad,) = self.kernel_size, self.stride, self.padding
        if (
            self.groups != 1
            or self.dilation != (1,)
            or self.padding_mode != "zeros"
            or isinstance(self.padding, str)
            or (self.in_channels * k < 512 and (x.device.type != "cpu" or not torch.is_grad_enabled()))
        ):
            return super().forward(x)
        windows = F.pad(x, (pad, pad)).unfold(2, k, stride)  # (B, C_in, L_out, k)
        windows = windows.transpose(1, 2).flatten(2)  # (B, L_out, C_in * k)
        out = linear(windows, self.weight.reshape(self.out_channels, -1), self.bias)  # (B, L_out, C_out)
        return out.transpose(1, 2)


class DiffusionConv1dBlock(nn.Module):
    """Conv1d -> GroupNorm -> Mish."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, n_groups: int = 8):
        super().__init__()
        self.block = nn.Sequential(
            WindowMatmulConv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(n_groups, out_channels),
            nn.Mish(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class DiffusionConditionalResidualBlock1d(nn.Module):
    """Two conv blocks with FiLM in between: ``out = scale(c) * conv1(x) + bias(c)``, plus a skip."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        cond_dim: int,
        kernel_size: int = 3,
        n_groups: int = 8,
        use_film_scale_modulation: bool = False,
    ):
        super().__init__()
        self.use_film_scale_modulation = use_film_scale_modulation
        self.out_channels = out_channels
        self.conv1 = DiffusionConv1dBlock(in_channels, out_channels, kernel_size, n_groups=n_groups)
        cond_channels = out_channels * 2 if use_film_scale_modulation else out_channels
        self.cond_encoder = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, cond_channels))
        self.conv2 = DiffusionConv1dBlock(out_channels, out_channels, kernel_size, n_groups=n_groups)
        self.residual_conv = (
            WindowMatmulConv1d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        )

    def forward(self, x: Tensor, film: Tensor) -> Tensor:
        """x (B, in_channels, T), film = ``cond_encoder(cond)`` as (B, cond_channels, 1) -> (B, out_channels, T)."""
        out = self.conv1(x)
        if self.use_film_scale_modulation:
            out = film[:, : self.out_channels] * out + film[:, self.out_channels :]
        else:
            out = out + film
        return self.conv2(out) + self.residual_conv(x)


class DiffusionConditionalUnet1d(nn.Module):
    """1-D U-Net over the time axis of an action sequence, FiLM-conditioned on (time step, observations).

    Down: per level two residual blocks then a stride-2 conv (not after the last level); middle: two
    blocks; up: concatenate the matching skip, two blocks, a transposed conv back up.
    """

    def __init__(self, config: DiffusionConfig, global_cond_dim: int):
        super().__init__()
        embed_dim = config.diffusion_step_embed_dim
        self.diffusion_step_encoder = nn.Sequential(
            DiffusionSinusoidalPosEmb(embed_dim),
            nn.Linear(embed_dim, embed_dim * 4),
            nn.Mish(),
            nn.Linear(embed_dim * 4, embed_dim),
        )
        common = {
            "cond_dim": embed_dim + global_cond_dim,
            "kernel_size": config.kernel_size,
            "n_groups": config.n_groups,
            "use_film_scale_modulation": config.use_film_scale_modulation,
        }
        dims = [config.action_feature.shape[0], *config.down_dims]
        in_out = list(zip(dims[:-1], dims[1:], strict=True))

        self.down_modules = nn.ModuleList()
        for level, (dim_in, dim_out) in enumerate(in_out):
            is_last = level == len(in_out) - 1
            self.down_modules.append(
                nn.ModuleList(
                    [
                        DiffusionConditionalResidualBlock1d(dim_in, dim_out, **common),
                        DiffusionConditionalResidualBlock1d(dim_out, dim_out, **common),
                        WindowMatmulConv1d(dim_out, dim_out, 3, 2, 1) if not is_last else nn.Identity(),
                    ]
                )
            )
        mid = config.down_dims[-1]
        self.mid_modules = nn.ModuleList(
            [
                DiffusionConditionalResidualBlock1d(mid, mid, **common),
                DiffusionConditionalResidualBlock1d(mid, mid, **common),
            ]
        )
        self.up_modules = nn.ModuleList()
        for dim_out, dim_in in reversed(in_out[1:]):
            self.up_modules.append(
                nn.ModuleList(
                    [
                        DiffusionConditionalResidualBlock1d(dim_in * 2, dim_out, **common),
                        DiffusionConditionalResidualBlock1d(dim_out, dim_out, **common),
                        nn.ConvTranspose1d(dim_out, dim_out, 4, 2, 1),
                    ]
                )
            )
        self.final_conv = nn.Sequential(
            DiffusionConv1dBlock(config.down_dims[0], config.down_dims[0], kernel_size=config.kernel_size),
            WindowMatmulConv1d(config.down_dims[0], config.action_feature.shape[0], 1),
        )

    def residual_blocks(self) -> list[DiffusionConditionalResidualBlock1d]:
        """The FiLM-conditioned blocks in the order ``forward`` runs them."""
        levels = [*self.down_modules, self.mid_modules, *self.up_modules]
        return [m for level in levels for m in level if isinstance(m, DiffusionConditionalResidualBlock1d)]

    def film(self, timestep: Tensor, global_cond: Tensor) -> list[Tensor]:
        """Each residual block's FiLM input (N, cond_channels, 1) for N rows of (time step, conditioning).

        Independent of the noisy actions, so a sampler computes it once for all its denoising steps
        instead of 12 small matrix products per step (a sixth of a batch-1 U-Net call).
        """
        cond = torch.cat([self.diffusion_step_encoder(timestep), global_cond], dim=-1)
        return [block.cond_encoder(cond).unsqueeze(-1) for block in self.residual_blocks()]

    def forward(
        self,
        x: Tensor,
        timestep: Tensor | None = None,
        global_cond: Tensor | None = None,
        film: list[Tensor] | None = None,
    ) -> Tensor:
        """x (B, T, A) noisy actions, timestep (B,), global_cond (B, G) -> (B, T, A).

        ``film`` (from :meth:`film`) replaces ``timestep`` and ``global_cond`` when already computed.
        """
        films = iter(film if film is not None else self.film(timestep, global_cond))
        x = x.transpose(1, 2)  # convolve over time: (B, A, T)
        skips = []
        for block1, block2, downsample in self.down_modules:
            x = block1(x, next(films))
            x = block2(x, next(films))
            skips.append(x)
            x = downsample(x)
        for block in self.mid_modules:
            x = block(x, next(films))
        for block1, block2, upsample in self.up_modules:
            x = torch.cat([x, skips.pop()], dim=1)
            x = block1(x, next(films))
            x = upsample(block2(x, next(films)))
        return self.final_conv(x).transpose(1, 2)
