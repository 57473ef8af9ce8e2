"""Asynchronous inference with every registered policy type, locally and through the policy server.

The test is parametrised over the policy registry: a new policy type joins by itself and only needs a
tiny ``<type>_config()`` in ``tests/policies/conftest.py`` (as ``act_config`` / ``diffusion_config``).
A robot is made to fit each policy's features (its state size, cameras and action size); policies that
take a language instruction are given a task, which must reach them locally and through the server.
"""

from __future__ import annotations

import socket
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from tests.policies import conftest as tiny

import lerobot.policies  # noqa: F401  (registers the built-in policy types)
from lerobot.async_inference.policy_server import PolicyServer
from lerobot.async_inference.robot_client import (
    PREFIX_KEY,
    ActionScheduler,
    LocalPredictor,
    RemotePredictor,
    RobotClient,
)
from lerobot.async_inference.transport import recv_message, send_message
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.config import POLICY_CONFIGS
from lerobot.policies.factory import get_policy_class
from lerobot.policies.rtc.configuration_rtc import RTCConfig
from lerobot.robots.myrobot import MyRobot, MyRobotConfig
from lerobot.scripts.deploy import deploy_policy

IMAGES = "observation.images."


class FeatureRobot(MyRobot):
    """An emulated robot whose state, cameras and action match a policy's features."""

    def __init__(self, config):
        self.policy_config = config
        action_dim = config.output_features["action"].shape[0]
        super().__init__(MyRobotConfig(id="async", joints=[f"a{i}" for i in range(action_dim)]))
        self.sent: list[dict[str, float]] = []
        self.rng = np.random.default_rng(0)

    @property
    def observation_features(self):
        out = {}
        for name, ft in self.policy_config.input_features.items():
            if name == "observation.state":
                out.update({f"s{i}.pos": float for i in range(ft.shape[0])})
            elif name.startswith(IMAGES):
                out[name.removeprefix(IMAGES)] = (ft.shape[1], ft.shape[2], ft.shape[0])
            else:
                raise AssertionError(f"a robot cannot provide {name}: give the tiny config a robot's inputs")
        return out

    def _get_observation(self):
        obs = {}
        for key, kind in self.observation_features.items():
            obs[key] = self.rng.integers(0, 256, kind, dtype=np.uint8) if isinstance(kind, tuple) else 0.1
        return obs

    def _send_action(self, action):
        self.sent.append(dict(action))
        return action


def tiny_policy(policy_type: str, **overrides):
    factory = getattr(tiny, f"{policy_type}_config", None)
    if factory is None:
        pytest.fail(
            f"No tiny config for policy type {policy_type!r}: add {policy_type}_config() to "
            "tests/policies/conftest.py so the async inference test covers it."
        )
    config = factory(**overrides)
    features = {**config.input_features, **config.output_features}
    torch.manual_seed(0)
    return get_policy_class(policy_type)(config, dataset_stats=tiny.make_stats(features))


@pytest.mark.filterwarnings("ignore:VQ-BeT's action tokenizer is still untrained")
@pytest.mark.parametrize("remote", [False, True], ids=["local", "server"])
@pytest.mark.parametrize("policy_type", sorted(POLICY_CONFIGS.names()))
def test_every_policy_type_drives_a_robot_asynchronously(policy_type, remote):
    policy = tiny_policy(policy_type)
    task = "pick up the red cube" if policy.takes_instruction else ""
    tasks_seen = []
    original = policy.predict_action_chunk

    def spy(obs, **kwargs):
        tasks_seen.append(obs.get("task", ""))
        return original(obs, **kwargs)

    policy.predict_action_chunk = spy
    robot = FeatureRobot(policy.config)
    server = PolicyServer(policy, port=0).start() if remote else None
    try:
        report = deploy_policy(
            policy, robot, safety_checks=False, control_frequency=50, max_steps=12, async_inference=True,
            server_address=f"127.0.0.1:{server.port}" if server else None, task=task,
        )  # fmt: skip
    finally:
        if server is not None:
            server.stop()
    assert report.steps == 12 and len(robot.sent) == 12 - report.starved_steps >= 1
    assert len(report.inference_ms) >= 2  # the first chunk, then at least one in the background
    values = np.array([[a[k] for k in sorted(a)] for a in robot.sent])
    assert np.isfinite(values).all() and values.shape[1] == policy.config.output_features["action"].shape[0]
    assert len(tasks_seen) == len(report.inference_ms) and set(tasks_seen) == {task}  # every request's task


class SingleStepPolicy:
    """A policy without a chunk method: one action per observation (state + 1)."""

    def __init__(self):
        self.config = SimpleNamespace(
            type="single",
            n_obs_steps=1,
            input_features={"observation.state": PolicyFeature(FeatureType.STATE, (2,))},
            output_features={"action": PolicyFeature(FeatureType.ACTION, (2,))},
        )
        self.calls = 0

    def reset(self):
        pass

    def select_action(self, obs):
        self.calls += 1
        return {"action": torch.as_tensor(obs["observation.state"]).reshape(1, 2) + 1}


def test_single_step_policy_is_served_as_chunks_of_one():
    policy = SingleStepPolicy()
    server = PolicyServer(policy, port=0).start()
    try:
        predictor = RemotePredictor(f"127.0.0.1:{server.port}")
        chunk = predictor.predict_chunk({"observation.state": np.array([1.0, 2.0], np.float32)}, timestep=5)
        np.testing.assert_allclose(chunk, [[2.0, 3.0]])
        predictor.close()
    finally:
        server.stop()
    local = LocalPredictor(SingleStepPolicy())
    assert local.predict_chunk({"observation.state": np.zeros(2, np.float32)}).shape == (1, 2)


def test_history_policy_gets_consecutive_frames():
    """Diffusion reads n_obs_steps=2 frames: the client sends the last two control steps' observations."""
    policy = tiny_policy("diffusion", image=False)
    seen = []
    original = policy.predict_action_chunk

    def spy(obs, **kwargs):
        seen.append(np.asarray(obs["observation.state"]).copy())
        return original(obs, **kwargs)

    policy.predict_action_chunk = spy
    robot = FeatureRobot(policy.config)
    states = iter(range(1000))
    robot._get_observation = lambda: {f"s{i}.pos": float(next(states)) if i == 0 else 0.0 for i in range(4)}
    deploy_policy(
        policy, robot, safety_checks=False, control_frequency=50, max_steps=10, async_inference=True
    )
    assert seen[0].shape == (1, 2, 4) and seen[0][0, 0, 0] == seen[0][0, 1, 0] == 0  # first frame repeated
    for history in seen[1:]:
        assert history[0, 1, 0] - history[0, 0, 0] == 1  # two consecutive steps


def test_rtc_requests_carry_the_queue_and_the_new_chunk_replaces_it():
    policy = tiny_policy("diffusion", image=False, rtc_config=RTCConfig(execution_horizon=3))
    calls = []
    original = policy.predict_action_chunk

    def spy(obs, **kwargs):
        calls.append(kwargs)
        return original(obs, **kwargs)

    policy.predict_action_chunk = spy
    server = PolicyServer(policy, port=0).start()
    try:
        predictor = RemotePredictor(f"127.0.0.1:{server.port}")
        assert predictor.rtc and predictor.n_obs_steps == 2
        client = RobotClient(FeatureRobot(policy.config), predictor, fps=50, chunk_size_threshold=0.5)
        client.robot.connect()
        report = client.run(max_steps=12)
        predictor.close()
    finally:
        server.stop()
    assert report.steps == 12 and len(calls) >= 2
    assert calls[0] == {}  # the first chunk has nothing to continue
    later = calls[1]
    assert later["prev_chunk_left_over"].shape[1] == 2 and later["prev_chunk_left_over"].shape[0] >= 1
    assert isinstance(later["inference_delay"], int) and later["inference_delay"] >= 0

    sched = ActionScheduler("weighted_average")
    sched.add_chunk(0, np.full((4, 2), 1.0))
    sched.pop(0)
    np.testing.assert_array_equal(sched.pending(1), np.full((3, 2), 1.0))
    sched.add_chunk(1, np.full((2, 2), 2.0), replace=True)  # steps 1, 2 replaced; step 3 dropped
    assert sched.pop(1).tolist() == [2.0, 2.0] and sched.remaining(2) == 1


def test_the_client_discards_a_stale_reply():
    """A reply stamped with another request's step is dropped; the one for this step is used."""
    listener = socket.create_server(("127.0.0.1", 0))

    def fake_server():
        conn, _ = listener.accept()
        with conn:
            send_message(conn, {"type": "challenge", "nonce": "00", "auth_required": False})
            recv_message(conn)
            send_message(conn, {"type": "ready", "policy": "default", "n_obs_steps": 1, "rtc": False})
            header, _ = recv_message(conn)
            stale = np.full((3, 2), 9.0, np.float32)
            send_message(conn, {"type": "actions", "timestep": header["timestep"] - 4}, {"actions": stale})
            fresh = np.full((3, 2), 1.0, np.float32)
            send_message(conn, {"type": "actions", "timestep": header["timestep"]}, {"actions": fresh})

    thread = threading.Thread(target=fake_server, daemon=True)
    thread.start()
    predictor = RemotePredictor(f"127.0.0.1:{listener.getsockname()[1]}")
    chunk = predictor.predict_chunk({"observation.state": np.zeros(2, np.float32)}, timestep=7)
    np.testing.assert_array_equal(chunk, np.ones((3, 2)))
    predictor.close()
    thread.join(2)
    listener.close()


def test_server_refuses_a_bad_rtc_prefix():
    policy = tiny_policy("diffusion", image=False, rtc_config=RTCConfig())
    server = PolicyServer(policy, port=0).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as conn:
            recv_message(conn)
            send_message(conn, {"type": "hello", "policy": None, "auth": None})
            assert recv_message(conn)[0]["rtc"] is True
            obs = {
                "observation.state": np.zeros(4, np.float32),
                PREFIX_KEY: np.full((3, 2), np.nan, np.float32),
            }
            send_message(conn, {"type": "observation", "task": "", "timestep": 3, "inference_delay": 1}, obs)
            header, _ = recv_message(conn)
            assert (
                header["type"] == "error" and "finite (P, A)" in header["message"] and header["timestep"] == 3
            )
    finally:
        server.stop()


def test_deploy_flags_set_rtc_and_a_policy_without_it_refuses(tmp_path):
    from lerobot.async_inference.policy_server import load_policy
    from lerobot.scripts.deploy import parse_deploy_config

    cfg = parse_deploy_config(
        ["--robot.type=myrobot", "--policy.path=ckpt", "--policy.rtc_config.execution_horizon=8"]
    )
    assert cfg.policy.rtc_config == RTCConfig(execution_horizon=8)
    assert parse_deploy_config(["--robot.type=myrobot", "--policy.path=ckpt"]).policy.rtc_config is None
    act = tiny_policy("act")
    act.save_pretrained(tmp_path / "act")
    with pytest.raises(ValueError, match="act policies have no real-time chunking"):
        load_policy(str(tmp_path / "act"), rtc_config=RTCConfig())
    diffusion = tiny_policy("diffusion", image=False)
    diffusion.save_pretrained(tmp_path / "dp")
    loaded = load_policy(str(tmp_path / "dp"), rtc_config=RTCConfig(execution_horizon=4))
    assert loaded.config.rtc_config.execution_horizon == 4
