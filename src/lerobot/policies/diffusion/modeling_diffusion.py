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

The network lives in this folder: the U-Net in ``unet.py`` (every residual block FiLM-conditioned on
[time-step embedding, c]), the camera encoder in ``vision_encoder.py``; the noise scheduler is
injected (diffusers DDPM/DDIM by default). Loss = MSE between the U-Net output and the
noise (``prediction_type="epsilon"``) or the clean actions (``"sample"``) at a random time step.
"""

from __future__ import annotations

import contextlib
from collections import deque
from typing import Any

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from lerobot.configs.types import ACTION, OBS_ENV_STATE, OBS_STATE
from lerobot.policies.diffusion.configuration_diffusion import DiffusionConfig
from lerobot.policies.diffusion.sampler import UnrolledSampler
from lerobot.policies.diffusion.unet import DiffusionConditionalUnet1d
from lerobot.policies.diffusion.vision_encoder import DiffusionRgbEncoder
from lerobot.policies.export_graph import GraphInput, PolicyGraph
from lerobot.policies.observation_history import EncodedHistory, is_full_history
from lerobot.policies.pretrained import PolicyAction, PreTrainedPolicy, inference_step
from lerobot.policies.rtc.modeling_rtc import RTCGuide, make_guide


class DiffusionPolicy(PreTrainedPolicy):
    """Diffusion Policy with normalisation, observation history and action queue.

    ``select_action`` keeps the last ``n_obs_steps`` observations, and when its action queue is
    empty denoises a new ``horizon``-long sequence and queues ``n_action_steps`` of it. Each frame
    is encoded at most once (when a prediction first needs it) and its features are reused while
    it stays in the history: the ResNet is most of a batch-1 prediction's cost.
    With ``config.use_ema`` it keeps ``self.ema``, which the base class wires in: the training loop's
    ``policy.update()`` after each optimiser step, averaged weights for inference and saving.
    """

    config_class = DiffusionConfig
    name = "diffusion"

    def __init__(self, config: DiffusionConfig, dataset_stats: dict[str, dict[str, Any]] | None = None):
        super().__init__(config, dataset_stats)
        self.diffusion = DiffusionModel(config)
        self.ema = config.make_ema(self.diffusion)
        self.reset()

    def reset(self) -> None:
        self._history = EncodedHistory(self.config.n_obs_steps)
        self._action_queue: deque[Tensor] = deque(maxlen=self.config.n_action_steps)
        rtc = self.config.rtc_config
        self.rtc_debug: deque[dict[str, float]] = deque(maxlen=rtc.debug_maxlen if rtc else 1)
        """With ``rtc_config.debug``: each guided denoising step's weight and prefix error."""

    @classmethod
    def supports_rtc(cls) -> bool:
        return True

    @inference_step
    def predict_action_chunk(
        self,
        observation: dict[str, Any],
        inference_delay: int | None = None,
        prev_chunk_left_over: Any = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Raw observation -> (B, n_action_steps, A) actions in robot units, from the current step.

        A single frame per feature ``(B, ...)`` joins the observation history (as in
        ``select_action``); a full history ``(B, n_obs_steps, ...)`` is used as given.
        With ``config.rtc_config`` enabled, ``prev_chunk_left_over`` ``(P, A)`` (robot units: the
        previous chunk's actions from this observation's step on) and ``inference_delay`` (control
        steps it takes to compute this chunk) make it a real-time-chunking inpainting of those actions
        (:mod:`lerobot.policies.rtc.modeling_rtc`); without them, or with RTC off, plain sampling.
        ``generator`` makes the draws reproducible (an export's parity check hands the same draws to both).
        """
        obs = self.prepare_observation(observation)
        cfg = self.config
        full_history = is_full_history(obs, cfg.input_features)
        if full_history:
            self.check_features(obs, cfg.input_features, time_steps=cfg.n_obs_steps)
        else:
            self._push_observation(obs)
        if full_history:
            global_cond = self.diffusion.global_conditioning(self.normalize_inputs(obs))
        else:
            global_cond = self._history_conditioning()
        guide = self._rtc_guide(prev_chunk_left_over, inference_delay)
        actions = self.diffusion.generate_actions(global_cond, generator, guide=guide)
        if guide is not None and guide.trace is not None:
            self.rtc_debug.extend(guide.trace)
        return self.unnormalize_outputs({ACTION: actions})[ACTION]

    def _rtc_guide(self, prev_chunk_left_over: Any, inference_delay: int | None) -> RTCGuide | None:
        """The previous chunk's remaining actions, normalised, as an RTC guide (None: plain sampling)."""
        if prev_chunk_left_over is None or self.config.rtc_config is None:
            return None
        prefix = torch.as_tensor(prev_chunk_left_over, dtype=torch.float32, device=self.device)
        if prefix.dim() == 2:
            prefix = prefix.unsqueeze(0)
        prefix = self.normalize_targets({ACTION: prefix})[ACTION]
        return make_guide(
            self.config, prefix, inference_delay, self.config.horizon, offset=self.config.n_obs_steps - 1
        )

    @inference_step
    def select_action(self, observation: dict[str, Any]) -> PolicyAction:
        """Raw observation -> ``{"action": (B, A)}`` in robot units for this control step."""
        self._push_observation(self.prepare_observation(observation))
        if not self._action_queue:
            actions = self.diffusion.generate_actions(self._history_conditioning())  # normalised
            self._action_queue.extend(actions.transpose(0, 1))
        action = self._action_queue.popleft()
        return PolicyAction(action=self.unnormalize_outputs({ACTION: action})[ACTION])

    def _push_observation(self, obs: dict[str, Tensor]) -> None:
        """Append one normalised frame to the history (not encoded yet: it may never be needed)."""
        self.check_features(obs, self.config.input_features)
        self._history.push(self.normalize_inputs(obs), self.config.input_features)

    def _history_conditioning(self) -> Tensor:
        """(B, n_obs_steps * cond_dim) conditioning of the history, encoding only new frames."""
        return torch.cat(self._history.encodings(self.diffusion.step_features), dim=-1)

    def _export_graph(self, camera_images: bool, draws: str, history: bool) -> DiffusionGraph:
        return DiffusionGraph(self, camera_images, draws, history)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Any]:
        """Raw training batch -> ``{"loss": scalar}`` (denoising MSE at random time steps)."""
        cfg = self.config
        self.check_features(batch, cfg.input_features, time_steps=cfg.n_obs_steps)
        self.check_features(batch, cfg.output_features, time_steps=cfg.horizon)
        batch = self.normalize_targets(self.normalize_inputs(batch))
        return {"loss": self.diffusion.compute_loss(batch)}


class DiffusionGraph(PolicyGraph):
    """Raw observation history (+ the draws) -> (B, n_action_steps, A) in robot units: ``predict_action_chunk``.

    Observation inputs are (B, n_obs_steps, ...) (``history=False``: the current frame (B, ...) stands
    for the whole history). With ``draws="input"`` two more inputs follow: ``noise`` (B, horizon, A),
    the initial sample, and for DDPM ``step_noise`` (B, K, horizon, A), the draw of each step with t > 0.
    """

    def __init__(self, policy: DiffusionPolicy, camera_images: bool, draws: str, history: bool):
        super().__init__(camera_images, draws)
        cfg = policy.config
        self.normalize_inputs, self.diffusion = policy.normalize_inputs, policy.diffusion
        self.unnormalize_outputs = policy.unnormalize_outputs
        self.n_obs_steps, self.n_action_steps = cfg.n_obs_steps, cfg.n_action_steps
        self.history = cfg.n_obs_steps if history else None
        self.cameras = set(cfg.image_features)
        self.observations = [
            self.observation_input(n, ft, self.history) for n, ft in cfg.input_features.items()
        ]
        if policy.diffusion.export_sampler is None:
            raise ValueError(
                f"This Diffusion Policy cannot be exported: {policy.diffusion.export_sampler_problem}."
            )
        self.sampler = policy.diffusion.export_sampler
        action_dim = cfg.action_feature.shape[0]
        self.sample_shape = (cfg.horizon, action_dim)
        self.step_noise_shape = (self.sampler.n_step_draws, *self.sample_shape)
        self.inputs = list(self.observations)
        if draws == "input":
            self.inputs.append(GraphInput("noise", self.sample_shape, torch.float32, random=True))
            if self.sampler.n_step_draws:
                self.inputs.append(
                    GraphInput("step_noise", self.step_noise_shape, torch.float32, random=True)
                )
        self.output = GraphInput(ACTION, (cfg.n_action_steps, action_dim), torch.float32)
        what = "the initial noise"
        if self.sampler.ddpm:
            what += f" and each step's noise ({self.sampler.n_step_draws} steps with t > 0)"
        where = "inputs (standard normal)" if draws == "input" else "drawn inside the model"
        self.random_draws = (
            f"{cfg.noise_scheduler_type}, {len(self.sampler.timesteps)} steps: {what}: {where}"
            + ("" if self.sampler.ddpm else "; DDIM with eta = 0 is otherwise deterministic")
        )

    def draw_inputs(self, batch_size: int, generator: torch.Generator) -> tuple[Tensor, ...]:
        """The initial noise, then each step's, one draw at a time as ``conditional_sample`` makes them."""
        draws = [
            torch.randn((batch_size, *self.sample_shape), generator=generator)
            for _ in range(1 + self.sampler.n_step_draws)
        ]
        return (draws[0], torch.stack(draws[1:], dim=1)) if len(draws) > 1 else (draws[0],)

    def forward(self, *inputs: Tensor) -> Tensor:
        batch = self.observation_batch(inputs, self.n_obs_steps)
        global_cond = self.diffusion.global_conditioning(self.normalize_inputs(batch))
        if self.draws == "input":
            draws = inputs[len(self.observations) :]
            noise, step_noise = draws[0], draws[1] if len(draws) > 1 else None
        else:
            noise = self.standard_normal(global_cond, self.sample_shape)
            step_noise = (
                self.standard_normal(global_cond, self.step_noise_shape) if self.sampler.ddpm else None
            )
        sample = self.sampler(self.diffusion.unet, global_cond, noise, step_noise)
        start = self.n_obs_steps - 1
        actions = sample[:, start : start + self.n_action_steps]
        return self.unnormalize_outputs({ACTION: actions})[ACTION]


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

    def __init__(self, config: DiffusionConfig, noise_scheduler: Any = None):
        """``noise_scheduler``: a diffusers-style scheduler (``add_noise``, ``set_timesteps``, ``step``);
        default :func:`make_noise_scheduler` of the config."""
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
        self.noise_scheduler = (
            noise_scheduler if noise_scheduler is not None else make_noise_scheduler(config)
        )
        self.num_inference_steps = config.num_inference_steps or config.num_train_timesteps
        # The export's sampler reads the scheduler's tensors: now, since an export that starts on a fresh
        # policy (torch.onnx.export(policy, ...)) cannot read tensor values inside its trace.
        self.export_sampler: UnrolledSampler | None = None
        self.export_sampler_problem = "the policy was built on the meta device"
        if torch.get_default_device().type != "meta":
            try:
                self.export_sampler = UnrolledSampler(self.noise_scheduler, self.num_inference_steps)
            except ValueError as e:  # a scheduler the export does not know: eager sampling still works
                self.export_sampler_problem = str(e)

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
        self,
        batch_size: int,
        global_cond: Tensor,
        generator: torch.Generator | None = None,
        guide: RTCGuide | None = None,
    ) -> Tensor:
        """Denoise pure noise into a (B, horizon, A) action sequence with the inference scheduler.

        With ``guide`` (real-time chunking) each step's model output is corrected towards the
        guide's prefix before the scheduler's step, by the variance-preserving form of the guidance
        (:mod:`lerobot.policies.rtc.modeling_rtc`): with ``alpha = sqrt(alphabar_k)`` and
        ``sigma = sqrt(1 - alphabar_k)`` of the step's time step, the clean estimate is
        ``(x - sigma eps) / alpha`` (epsilon prediction) or the output itself (sample prediction),
        and the correction ``w g`` enters as ``eps - alpha w g`` or ``x0 + sigma w g``. DDPM's
        fresh noise and the scheduler's clipping are untouched. After each step the prefix also
        replaces the sample's signal with the same weights (``RTCGuide.inpaint``): the guidance
        acts through the U-Net's Jacobian, which a sharply conditioned policy makes nearly zero
        (measured on the PushT recipe's policy: guidance alone left the prefix error where it was).
        """
        cfg = self.config
        sample = torch.randn(
            (batch_size, cfg.horizon, cfg.action_feature.shape[0]),
            dtype=global_cond.dtype,
            device=global_cond.device,
            generator=generator,
        )
        self.noise_scheduler.set_timesteps(self.num_inference_steps)
        timesteps = self.noise_scheduler.timesteps
        # The guided steps differentiate through the U-Net, which must then read no inference tensors.
        with torch.inference_mode(False) if guide is not None else contextlib.nullcontext():
            global_cond = global_cond.clone() if guide is not None else global_cond
            # The FiLM inputs do not depend on the sample: one batch for all denoising steps.
            film_table = self.unet.film(
                timesteps.to(sample.device, torch.long).repeat_interleave(batch_size),
                global_cond.repeat(len(timesteps), 1),
            )
            film_table = [f.unflatten(0, (len(timesteps), batch_size)).detach() for f in film_table]
        for i, t in enumerate(timesteps):
            film = [f[i] for f in film_table]
            if guide is None:
                model_output = self.unet(sample, film=film)
            else:
                model_output = self._guided_output(sample, film, int(t), guide)
            step = self.noise_scheduler.step(model_output, t, sample, generator=generator)
            sample = step.prev_sample
            if guide is not None:  # the signal level of the step just taken: that of the next time step
                alpha_bar = self._alpha_bar(timesteps[i + 1]) if i + 1 < len(timesteps) else 1.0
                sample = guide.inpaint(sample, alpha_bar**0.5, step.pred_original_sample)
        return sample

    def _alpha_bar(self, t: Any) -> float:
        return float(self.noise_scheduler.alphas_cumprod[int(t)])

    def _guided_output(self, sample: Tensor, film: list[Tensor], t: int, guide: RTCGuide) -> Tensor:
        """The U-Net's output at time step ``t``, corrected by real-time-chunking guidance."""
        alpha_bar = self._alpha_bar(t)
        alpha, sigma = alpha_bar**0.5, (1.0 - alpha_bar) ** 0.5
        epsilon = self.config.prediction_type == "epsilon"

        def clean_estimate(x: Tensor) -> tuple[Tensor, Tensor]:
            out = self.unet(x, film=film)
            return out, (x - sigma * out) / alpha if epsilon else out

        output, correction = guide.guide(sample, clean_estimate, alpha, sigma)
        return output - alpha * correction if epsilon else output + sigma * correction

    def generate_actions(
        self, global_cond: Tensor, generator: torch.Generator | None = None, guide: RTCGuide | None = None
    ) -> Tensor:
        """(B, S * cond_dim) conditioning -> (B, n_action_steps, A) normalised actions from step t."""
        options: dict[str, Any] = {"generator": generator} if generator is not None else {}
        if guide is not None:
            options["guide"] = guide
        actions = self.conditional_sample(global_cond.shape[0], global_cond, **options)
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
