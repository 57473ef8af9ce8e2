"""lerobot-deploy: a policy drives a robot through the safety layer, synchronously or asynchronously."""

import socket
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lerobot.async_inference.policy_server import PolicyServer
from lerobot.async_inference.robot_client import ActionScheduler, RemotePredictor
from lerobot.async_inference.transport import ProtocolError, recv_message, send_message
from lerobot.configs.types import FeatureType, PolicyFeature
from lerobot.policies.act.configuration_act import ACTConfig
from lerobot.policies.act.modeling_act import ACTPolicy
from lerobot.robots.myrobot import MyRobot, MyRobotConfig
from lerobot.robots.safety import SafetyConfig
from lerobot.scripts.deploy import deploy_policy, parse_deploy_config

CHUNK = 6


class OffsetPolicy:
    """Predicts ``state + 0.01 * (i + 1)`` for the i-th action of a chunk: easy to check what ran."""

    def __init__(self, step: float = 0.01):
        self.step = step
        self.config = SimpleNamespace(
            type="offset",
            input_features={"observation.state": PolicyFeature(FeatureType.STATE, (4,))},
            output_features={"action": PolicyFeature(FeatureType.ACTION, (4,))},
        )
        self.queue: list[torch.Tensor] = []
        self.chunks = 0

    def reset(self) -> None:
        self.queue = []

    def predict_action_chunk(self, obs):
        self.chunks += 1
        state = torch.as_tensor(obs["observation.state"], dtype=torch.float32).reshape(1, 4)
        offsets = self.step * torch.arange(1, CHUNK + 1, dtype=torch.float32).reshape(1, CHUNK, 1)
        return state.unsqueeze(1) + offsets

    def select_action(self, obs):
        if not self.queue:
            self.queue = list(self.predict_action_chunk(obs)[0])
        return {"action": self.queue.pop(0).unsqueeze(0)}


def fast_robot() -> MyRobot:
    return MyRobot(
        MyRobotConfig(id="deploy", max_speed_deg_s=1e7, joints=["joint_1", "joint_2", "joint_3", "gripper"])
    )


def test_sync_deploy_runs_the_policy_and_disconnects():
    robot, policy = fast_robot(), OffsetPolicy()
    report = deploy_policy(policy, robot, safety_checks=False, control_frequency=200, max_steps=12)
    assert report.steps == 12 and policy.chunks == 2  # one chunk per CHUNK steps
    assert not robot.is_connected  # deploy connected it, so deploy disconnected it (torque off)
    assert len(report.inference_ms) == 12 and report.loop["cycles"] == 12


def test_safety_layer_clamps_every_step():
    robot, policy = fast_robot(), OffsetPolicy(step=5.0)  # asks for jumps of 5..30 per step
    robot.connect()
    report = deploy_policy(
        policy,
        robot,
        SafetyConfig(max_relative_target=0.5, estop_key=None),
        control_frequency=200,
        max_steps=8,
    )
    assert robot.is_connected  # the caller's connection is left as it was
    assert report.interventions >= 8
    # Never more than 0.5 per step: after 8 steps no joint is past 8 * 0.5.
    assert np.all(np.abs(robot._goal) <= 8 * 0.5 + 1e-9)
    robot.disconnect()


def test_async_local_inference_sends_only_predicted_actions():
    robot, policy = fast_robot(), OffsetPolicy(step=0.0)  # every predicted action equals the state (0)
    sent = []
    original = robot._send_action
    robot._send_action = lambda a: sent.append(dict(a)) or original(a)
    report = deploy_policy(
        policy, robot, safety_checks=False, control_frequency=100, max_steps=30, async_inference=True,
        chunk_size_threshold=0.5, aggregate_fn_name="latest_only",
    )  # fmt: skip
    assert report.steps == 30 and len(sent) == 30 - report.starved_steps
    assert policy.chunks >= 30 // CHUNK  # chunks were requested in the background as the queue ran low
    assert all(v == 0.0 for a in sent for v in a.values())


def test_action_scheduler_drops_stale_actions_and_blends_overlaps():
    sched = ActionScheduler("weighted_average")
    sched.add_chunk(0, np.full((4, 2), 1.0))
    assert sched.pop(0).tolist() == [1.0, 1.0]
    assert sched.pop(1).tolist() == [1.0, 1.0]
    sched.add_chunk(1, np.full((4, 2), 2.0))  # computed from the observation at step 1: step 1 is past
    np.testing.assert_allclose(sched.pop(2), [0.3 * 1 + 0.7 * 2] * 2)
    assert sched.remaining(3) == 2  # steps 3 (blended) and 4 (new only)
    np.testing.assert_allclose(sched.pop(4), [2.0, 2.0])  # step 3 skipped -> dropped
    assert sched.remaining(5) == 0 and sched.pop(5) is None
    with pytest.raises(ValueError, match="Unknown aggregate_fn_name 'mean'"):
        ActionScheduler("mean")


def test_remote_policy_server_round_trip_and_bad_clients():
    policy = OffsetPolicy()
    server = PolicyServer(policy, port=0).start()
    try:
        predictor = RemotePredictor(f"127.0.0.1:{server.port}")
        assert predictor.info["type"] == "ready"
        chunk = predictor.predict_chunk({"observation.state": np.array([1, 2, 3, 4], dtype=np.float32)})
        np.testing.assert_allclose(chunk[0], [1.01, 2.01, 3.01, 4.01], rtol=1e-6)
        assert chunk.shape == (CHUNK, 4)
        # A peer speaking another protocol is dropped; the server keeps serving.
        with socket.create_connection(("127.0.0.1", server.port)) as bad:
            bad.sendall(b"GET / HTTP/1.1\r\n\r\n")
        robot = fast_robot()
        report = deploy_policy(
            policy, robot, safety_checks=False, control_frequency=100, max_steps=10,
            server_address=f"127.0.0.1:{server.port}",
        )  # fmt: skip
        assert report.steps == 10
        predictor.close()
    finally:
        server.stop()


def test_unreachable_server_and_garbage_bytes_give_clear_errors():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with pytest.raises(ConnectionError, match="No policy server answers at 127.0.0.1:.*policy_server"):
        RemotePredictor(f"127.0.0.1:{port}", timeout_s=1.0)
    a, b = socket.socketpair()
    with a, b:
        a.sendall(b"HTTP/1.1 200 OK\r\n")
        with pytest.raises(ProtocolError, match="not a lerobot policy server"):
            recv_message(b)
    a, b = socket.socketpair()
    with a, b:
        send_message(a, {"type": "x"}, {"img": np.arange(12, dtype=np.uint8).reshape(3, 4)})
        header, arrays = recv_message(b)
        assert header == {"type": "x"} and arrays["img"].shape == (3, 4) and arrays["img"][2, 3] == 11


def test_policy_that_does_not_fit_the_robot_is_refused_before_connecting():
    cfg = ACTConfig(
        input_features={
            "observation.state": PolicyFeature(FeatureType.STATE, (4,)),
            "observation.images.front": PolicyFeature(FeatureType.VISUAL, (3, 32, 32)),
        },
        output_features={"action": PolicyFeature(FeatureType.ACTION, (5,))},
        dim_model=16, n_heads=2, dim_feedforward=32, n_encoder_layers=1, n_decoder_layers=1, chunk_size=4,
        n_action_steps=4, pretrained_backbone_weights=None,
    )  # fmt: skip
    robot = fast_robot()
    with pytest.raises(ValueError) as err:
        deploy_policy(ACTPolicy(cfg), robot, max_steps=1)
    msg = str(err.value)
    assert "reads 'observation.images.front', which myrobot does not provide" in msg
    assert "outputs (5,) actions but myrobot takes (4,)" in msg
    assert not robot.is_connected


def test_both_flag_spellings_parse_to_the_same_config(tmp_path):
    guide = parse_deploy_config(
        ["--robot-type=myrobot", "--policy-path=ckpt", "--control-frequency=15", "--max_relative_target=5"]
    )
    lerobot = parse_deploy_config(
        ["--robot.type=myrobot", "--policy.path=ckpt", "--control_frequency=15", "--max-relative-target=5"]
    )
    assert guide == lerobot and guide.robot.type == "myrobot" and guide.control_frequency == 15.0
    cfg_file = tmp_path / "robot.json"
    cfg_file.write_text('{"type": "myrobot", "max_speed_deg_s": 90}')
    from_file = parse_deploy_config([f"--robot-config={cfg_file}", "--policy.path=ckpt"])
    assert from_file.robot.max_speed_deg_s == 90
