"""Asynchronous inference: the control loop never waits for the policy.

A chunking policy (ACT, Diffusion, ...) predicts ``T`` actions from one observation. Run
synchronously, the loop stalls for the whole inference every ``n_action_steps`` cycles; at 30 Hz a
100 ms inference costs three missed cycles. Here the loop executes queued actions at a fixed rate
while a background thread asks a :class:`Predictor` for the next chunk as soon as the queue falls
below ``chunk_size_threshold`` x the chunk length. Each chunk is indexed by the timestep of the
observation it was computed from, so actions whose time has passed are dropped and overlapping
actions of consecutive chunks are blended by ``aggregate_fn_name``:

- ``weighted_average``: 0.3 x queued + 0.7 x new (the default: fresher observation, smooth joins)
- ``latest_only``: the new chunk replaces the queue
- ``average``: 0.5 / 0.5
- ``conservative``: 0.7 x queued + 0.3 x new

With real-time chunking (a policy whose config has ``rtc_config`` enabled, see
:mod:`lerobot.policies.rtc`) each request also carries the queued actions from the observation's
step on and the inference delay in control steps (the last inference times, rounded up to whole
periods); the policy inpaints its new chunk from them, and the new chunk replaces the queue instead of
being blended (``aggregate_fn_name`` is not used). A policy that reads ``n_obs_steps > 1`` frames
(Diffusion) gets the last ``n_obs_steps`` observations of consecutive control steps with each request.
Any policy works: a chunking one through ``predict_action_chunk``, a single-step one (no chunk
method) through ``select_action`` as a chunk of one action.

The predictor is local (:class:`LocalPredictor`, a policy in this process on its own thread) or
remote (:class:`RemotePredictor`, a :mod:`~lerobot.async_inference.policy_server` on another machine,
typically the GPU box). Shapes: observations are dataset-keyed arrays (``observation.state`` (S,),
``observation.images.<cam>`` (H, W, 3) uint8); a chunk is ``(T, A)`` float32 in robot units.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from lerobot.async_inference.transport import (
    DEFAULT_MAX_MESSAGE_BYTES,
    TOKEN_ENV,
    ProtocolError,
    parse_address,
    recv_message,
    send_message,
)
from lerobot.datasets.feature_utils import action_from_vector, build_observation_frame, hw_to_dataset_features
from lerobot.robots.robot import Robot
from lerobot.utils.control_loop import RateLoop
from lerobot.utils.net_security import hmac_hex, resolve_token

logger = logging.getLogger(__name__)

PREFIX_KEY = "rtc.prev_chunk_left_over"
"""Array name of the queued actions sent with a real-time-chunking request (not an observation key)."""
MAX_OBS_STEPS = 64
MAX_STALE_REPLIES = 8

AGGREGATE_FNS: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "weighted_average": lambda old, new: 0.3 * old + 0.7 * new,
    "latest_only": lambda old, new: new,
    "average": lambda old, new: 0.5 * old + 0.5 * new,
    "conservative": lambda old, new: 0.7 * old + 0.3 * new,
}


class Predictor(Protocol):
    rtc: bool
    """Whether the policy inpaints from ``prev_chunk_left_over`` (real-time chunking is on)."""
    n_obs_steps: int
    """Observation frames of consecutive steps the policy reads per prediction."""

    def predict_chunk(
        self,
        observation: dict[str, np.ndarray],
        task: str = "",
        timestep: int = 0,
        inference_delay: int | None = None,
        prev_chunk_left_over: np.ndarray | None = None,
    ) -> np.ndarray:
        """Observation (of control step ``timestep``) -> ``(T, A)`` actions in robot units, the first
        for that step."""


def policy_chunk(
    policy: Any,
    observation: dict[str, Any],
    inference_delay: int | None = None,
    prev_chunk_left_over: np.ndarray | None = None,
) -> np.ndarray:
    """``(T, A)`` float32 actions of any policy for one observation (the server's and the local path).

    Chunking policies answer through ``predict_action_chunk`` (with the RTC arguments when the
    policy has real-time chunking on); a single-step policy (no chunk method, or one that raises
    ``NotImplementedError``) through ``select_action``, as a chunk of one action.
    """
    from lerobot.policies.rtc.modeling_rtc import rtc_enabled

    chunk = None
    predict = getattr(policy, "predict_action_chunk", None)
    with torch.no_grad():
        if predict is not None:
            kwargs = {}
            if rtc_enabled(policy) and prev_chunk_left_over is not None:
                kwargs = {"inference_delay": inference_delay, "prev_chunk_left_over": prev_chunk_left_over}
            try:
                chunk = predict(observation, **kwargs)
            except NotImplementedError:
                chunk = None
        if chunk is None:
            chunk = policy.select_action(observation)
            chunk = chunk["action"] if isinstance(chunk, dict) else chunk
    chunk = torch.as_tensor(chunk).detach().cpu().float()
    if chunk.dim() == 3:  # (1, T, A)
        chunk = chunk[0]
    elif chunk.dim() == 1:  # (A,): one unbatched action
        chunk = chunk.unsqueeze(0)
    if chunk.dim() != 2:  # (1, A) from select_action is a chunk of one
        raise ValueError(f"{type(policy).__name__} returned actions of shape {tuple(chunk.shape)}.")
    return chunk.numpy()


class LocalPredictor:
    """A policy in this process, asked on the client's worker thread (one request at a time)."""

    def __init__(self, policy: Any):
        from lerobot.policies.rtc.modeling_rtc import rtc_enabled

        self.policy = policy
        self.rtc = rtc_enabled(policy)
        self.n_obs_steps = int(getattr(policy.config, "n_obs_steps", 1) or 1)

    def predict_chunk(
        self,
        observation: dict[str, np.ndarray],
        task: str = "",
        timestep: int = 0,
        inference_delay: int | None = None,
        prev_chunk_left_over: np.ndarray | None = None,
    ) -> np.ndarray:
        obs = {**observation, "task": task} if task else observation
        return policy_chunk(self.policy, obs, inference_delay, prev_chunk_left_over)


class RemotePredictor:
    """A :class:`~lerobot.async_inference.policy_server.PolicyServer` at ``host:port``.

    ``policy`` picks one of the server's policies by name (the path the operator gave it); ``None``
    takes its default. ``auth_token`` (else ``$LEROBOT_POLICY_SERVER_TOKEN``) answers the server's
    challenge. Replies are bounded like the server's requests, and a chunk that is not a finite
    ``(T, A)`` array is refused before it can reach a robot.
    """

    def __init__(
        self,
        address: str,
        policy: str | None = None,
        timeout_s: float = 10.0,
        auth_token: str | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ):
        host, port = parse_address(address)
        token = resolve_token(auth_token, TOKEN_ENV)
        self.timeout_s, self.max_message_bytes = timeout_s, max_message_bytes
        try:
            self._sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as e:
            raise ConnectionError(
                f"No policy server answers at {address} ({e}). Start one with "
                "`python -m lerobot.scripts.policy_server --policy.path=... --port=...`."
            ) from e
        self._lock = threading.Lock()
        try:
            self.info = self._handshake(policy, token)
        except BaseException:
            self._sock.close()
            raise
        self.rtc = self.info.get("rtc") is True
        n_obs_steps = self.info.get("n_obs_steps", 1)
        if not isinstance(n_obs_steps, int) or not 1 <= n_obs_steps <= MAX_OBS_STEPS:
            self._sock.close()
            raise ProtocolError(f"The policy server announced n_obs_steps={str(n_obs_steps)[:40]}.")
        self.n_obs_steps = n_obs_steps

    def _handshake(self, policy: str | None, token: str | None) -> dict[str, Any]:
        challenge, _ = recv_message(self._sock, 1 << 16, self.timeout_s)
        if challenge["type"] == "error":
            raise RuntimeError(f"The policy server refused the session: {challenge.get('message')}")
        if challenge["type"] != "challenge" or not isinstance(challenge.get("nonce"), str):
            raise ProtocolError(f"Expected the server's challenge, got {challenge['type'][:40]!r}.")
        if challenge.get("auth_required") and token is None:
            raise RuntimeError(f"The policy server requires a token: set ${TOKEN_ENV} (or pass auth_token).")
        auth = hmac_hex(token, challenge["nonce"]) if token is not None else None
        send_message(self._sock, {"type": "hello", "policy": policy, "auth": auth})
        info, _ = recv_message(self._sock, 1 << 16, self.timeout_s)
        if info["type"] != "ready":
            raise RuntimeError(f"The policy server refused the session: {str(info.get('message'))[:500]}")
        return info

    def predict_chunk(
        self,
        observation: dict[str, np.ndarray],
        task: str = "",
        timestep: int = 0,
        inference_delay: int | None = None,
        prev_chunk_left_over: np.ndarray | None = None,
    ) -> np.ndarray:
        """Send the observation of control step ``timestep``; the reply names the step it is for, and
        a reply for another step (left over from an earlier request) is discarded."""
        request = {"type": "observation", "task": task, "timestep": int(timestep), "timestamp": time.time()}
        arrays = dict(observation)
        if prev_chunk_left_over is not None:
            request["inference_delay"] = int(inference_delay or 0)
            arrays[PREFIX_KEY] = np.asarray(prev_chunk_left_over, dtype=np.float32)
        with self._lock:  # one request in flight per connection
            try:
                send_message(self._sock, request, arrays)
                for _ in range(MAX_STALE_REPLIES + 1):
                    header, arrays = recv_message(self._sock, self.max_message_bytes, self.timeout_s)
                    if header.get("timestep", timestep) == timestep or header["type"] == "error":
                        break
                    logger.warning(
                        "Discarded a stale reply (for step %s, asked %d).", header.get("timestep"), timestep
                    )
                else:
                    raise ProtocolError(
                        f"The policy server sent {MAX_STALE_REPLIES + 1} replies for other steps."
                    )
            except (EOFError, BrokenPipeError, ConnectionResetError) as e:
                raise ConnectionError(
                    f"The policy server closed the connection ({type(e).__name__}): it stopped, or this "
                    "client was silent longer than its --idle_timeout_s. Reconnect to go on."
                ) from e
        if header["type"] == "error":
            raise RuntimeError(
                f"The policy server failed on this observation: {str(header.get('message'))[:500]}"
            )
        chunk = arrays.get("actions")
        if header["type"] != "actions" or chunk is None or chunk.ndim != 2 or chunk.dtype.kind != "f":
            raise ProtocolError("The policy server's reply is not a (T, A) float action chunk.")
        if not np.isfinite(chunk).all():
            raise RuntimeError("The policy server returned non-finite actions (NaN or infinity); refused.")
        return chunk

    def close(self) -> None:
        self._sock.close()


class ActionScheduler:
    """Actions keyed by the timestep they are for; thread-safe (the inference thread adds, the loop pops)."""

    def __init__(self, aggregate_fn_name: str = "weighted_average"):
        if aggregate_fn_name not in AGGREGATE_FNS:
            raise ValueError(
                f"Unknown aggregate_fn_name {aggregate_fn_name!r}; choose from {sorted(AGGREGATE_FNS)}."
            )
        self._aggregate = AGGREGATE_FNS[aggregate_fn_name]
        self._actions: dict[int, np.ndarray] = {}
        self._now = 0
        self._lock = threading.Lock()

    def add_chunk(self, start_timestep: int, chunk: np.ndarray, replace: bool = False) -> None:
        """Queue ``chunk[i]`` for step ``start_timestep + i``; ``replace``: drop the queued actions
        from ``start_timestep`` on instead of blending (a real-time-chunking chunk already joins them)."""
        with self._lock:
            if replace:
                for t in [t for t in self._actions if t >= start_timestep]:
                    del self._actions[t]
            for i, action in enumerate(np.asarray(chunk, dtype=np.float32)):
                t = start_timestep + i
                if t < self._now:
                    continue  # its moment passed while the chunk was being computed
                self._actions[t] = self._aggregate(self._actions[t], action) if t in self._actions else action

    def pending(self, timestep: int) -> np.ndarray | None:
        """``(P, A)`` queued actions for ``timestep``, ``timestep + 1``, ... up to the first gap; None if none."""
        with self._lock:
            rows = []
            while timestep + len(rows) in self._actions:
                rows.append(self._actions[timestep + len(rows)])
            return np.stack(rows) if rows else None

    def pop(self, timestep: int) -> np.ndarray | None:
        with self._lock:
            self._now = timestep + 1
            for stale in [t for t in self._actions if t < timestep]:
                del self._actions[stale]
            return self._actions.pop(timestep, None)

    def remaining(self, timestep: int) -> int:
        with self._lock:
            return sum(t >= timestep for t in self._actions)


@dataclass
class ControlReport:
    """What a deployment did: cycles, timing, starvation, safety interventions, inference time."""

    steps: int = 0
    starved_steps: int = 0
    """Cycles with no action ready (the robot held its last goal)."""
    loop: dict[str, float] = field(default_factory=dict)
    inference_ms: list[float] = field(default_factory=list)
    interventions: int = 0

    def summary(self) -> str:
        inf = f"{np.mean(self.inference_ms):.1f} ms mean" if self.inference_ms else "n/a"
        on_time = self.loop.get("on_time_share")
        return (
            f"{self.steps} steps, {100 * on_time:.1f}% on time"
            if on_time is not None
            else f"{self.steps} steps"
        ) + f", {self.starved_steps} starved, inference {inf}, {self.interventions} safety interventions"


class RobotClient:
    """Runs ``robot`` at ``fps`` on actions from ``predictor``, inferring in the background."""

    def __init__(
        self,
        robot: Robot,
        predictor: Predictor,
        fps: float = 30,
        chunk_size_threshold: float = 0.5,
        aggregate_fn_name: str = "weighted_average",
        task: str = "",
    ):
        if not 0.0 <= chunk_size_threshold <= 1.0:
            raise ValueError(f"chunk_size_threshold must be in [0, 1], got {chunk_size_threshold}.")
        self.robot, self.predictor, self.fps, self.task = robot, predictor, fps, task
        self.threshold = chunk_size_threshold
        self.scheduler = ActionScheduler(aggregate_fn_name)
        self.features = hw_to_dataset_features(robot.observation_features, robot.action_features)
        self.chunk_len = 0
        self.rtc = bool(getattr(predictor, "rtc", False))
        self.n_obs_steps = int(getattr(predictor, "n_obs_steps", 1) or 1)
        self._frames: deque[dict[str, np.ndarray]] = deque(maxlen=self.n_obs_steps)
        if self.rtc:
            logger.info(
                "Real-time chunking on: each chunk continues the queued actions and replaces them "
                "(aggregate_fn_name=%s is not used).",
                aggregate_fn_name,
            )
        self._request: tuple[int, dict[str, Any], np.ndarray | None, int] | None = None
        self._busy = False
        self._cv = threading.Condition()
        self._error: BaseException | None = None
        self._stop = threading.Event()

    def _infer(
        self,
        timestep: int,
        observation: dict[str, Any],
        report: ControlReport,
        prefix: np.ndarray | None = None,
        inference_delay: int = 0,
    ) -> None:
        start = time.perf_counter()
        chunk = self.predictor.predict_chunk(
            observation,
            self.task,
            timestep=timestep,
            inference_delay=inference_delay,
            prev_chunk_left_over=prefix,
        )
        report.inference_ms.append(1e3 * (time.perf_counter() - start))
        self.chunk_len = len(chunk)
        self.scheduler.add_chunk(timestep, chunk, replace=self.rtc)

    def _observation(self, robot_observation: dict[str, Any]) -> dict[str, np.ndarray]:
        """This step's frame; with ``n_obs_steps > 1`` remembered, and the request is ``(1, S, ...)``
        arrays of the last S steps (the first frame repeated until there are S, as the policies do)."""
        frame = build_observation_frame(self.features, robot_observation)
        if self.n_obs_steps == 1:
            return frame
        self._frames.extend([frame] * (self.n_obs_steps if not self._frames else 1))
        return {key: np.stack([f[key] for f in self._frames])[None] for key in frame}

    def _inference_delay(self, report: ControlReport) -> int:
        """Control steps the next chunk will take: the slowest of the last inferences, in whole periods."""
        recent = report.inference_ms[-5:]
        return math.ceil(max(recent) / 1e3 * self.fps) if recent else 0

    def _worker(self, report: ControlReport) -> None:
        while not self._stop.is_set():
            with self._cv:
                while self._request is None and not self._stop.is_set():
                    self._cv.wait(0.1)
                if self._stop.is_set():
                    return
                timestep, observation, prefix, delay = self._request
                self._request = None
            try:
                self._infer(timestep, observation, report, prefix, delay)
            except BaseException as e:  # surfaced on the control thread, which stops the robot
                self._error = e
                return
            finally:
                with self._cv:
                    self._busy = False

    def run(
        self,
        duration_s: float | None = None,
        max_steps: int | None = None,
        stop: threading.Event | None = None,
    ) -> ControlReport:
        """Control until ``duration_s`` / ``max_steps`` / ``stop`` (or Ctrl-C). The robot must be connected."""
        report = ControlReport()
        # The first chunk is computed before the clock starts, so the loop does not begin starved.
        self._infer(0, self._observation(self.robot.get_observation()), report)
        worker = threading.Thread(target=self._worker, args=(report,), daemon=True, name="inference")
        worker.start()
        loop = RateLoop(self.fps)
        end = None if not duration_s else time.perf_counter() + duration_s
        step = 0
        try:
            while (max_steps is None or step < max_steps) and (end is None or time.perf_counter() < end):
                if (stop is not None and stop.is_set()) or self._error is not None:
                    break
                observation = self._observation(self.robot.get_observation())
                with self._cv:
                    low = self.scheduler.remaining(step) <= self.threshold * max(self.chunk_len, 1)
                    if low and not self._busy:
                        prefix = self.scheduler.pending(step) if self.rtc else None
                        self._request = (step, observation, prefix, self._inference_delay(report))
                        self._busy = True
                        self._cv.notify()
                action = self.scheduler.pop(step)
                if action is None:
                    report.starved_steps += 1
                else:
                    self.robot.send_action(action_from_vector(self.features, action))
                step += 1
                loop.wait()
        finally:
            self._stop.set()
            with self._cv:
                self._cv.notify_all()
            worker.join(timeout=5.0)
        if self._error is not None:
            raise RuntimeError(f"Inference failed; the robot was stopped: {self._error}") from self._error
        report.steps, report.loop = step, loop.stats()
        return report
