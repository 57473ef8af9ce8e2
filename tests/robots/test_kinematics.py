"""Forward kinematics of small serial chains, the ready SO-100 / Koch chains, and the DLS inverse."""

import numpy as np
import pytest

from lerobot.robots.kinematics import (
    KOCH_CHAIN,
    SO100_CHAIN,
    Joint,
    KinematicChain,
    forward_kinematics,
    get_chain,
    inverse_kinematics,
    link_frames,
)


@pytest.mark.parametrize("chain", [SO100_CHAIN, KOCH_CHAIN], ids=lambda c: c.name)
def test_zero_pose_tip_is_the_sum_of_offsets(chain):
    pose = forward_kinematics(chain, [0.0] * len(chain.joints))
    expected = np.sum([j.offset for j in chain.joints], axis=0) + np.asarray(chain.tip)
    np.testing.assert_allclose(pose[:3, 3], expected, atol=1e-12)
    np.testing.assert_allclose(pose[:3, :3], np.eye(3), atol=1e-12)


def test_single_joint_quarter_turn_moves_the_tip_as_expected():
    arm = KinematicChain("one", (Joint("j", axis=(0, 0, 1), offset=(0, 0, 0.1)),), tip=(0.2, 0, 0))
    pose = forward_kinematics(arm, [90.0])
    np.testing.assert_allclose(pose[:3, 3], [0.0, 0.2, 0.1], atol=1e-12)
    np.testing.assert_allclose(pose[:3, 0], [0, 1, 0], atol=1e-12)  # the tool x axis turned with it
    # sign and zero_deg map the robot's reading onto the kinematic angle
    mirrored = KinematicChain("m", (Joint("j", (0, 0, 1), (0, 0, 0.1), sign=-1, zero_deg=10),), (0.2, 0, 0))
    np.testing.assert_allclose(forward_kinematics(mirrored, [100.0])[:3, 3], [0.0, -0.2, 0.1], atol=1e-12)


def test_so100_shoulder_moves():
    zero = forward_kinematics(SO100_CHAIN, [0] * 5)[:3, 3]
    panned = forward_kinematics(SO100_CHAIN, [90, 0, 0, 0, 0])[:3, 3]
    np.testing.assert_allclose(panned, [-zero[1], zero[0], zero[2]], atol=1e-12)  # turned to the left
    # shoulder_lift +90: the whole arm above the shoulder axis swings forward and down, below the table
    lifted = forward_kinematics(
        SO100_CHAIN,
        {
            "shoulder_lift.pos": 90,
            **{f"{j}": 0 for j in ("shoulder_pan", "elbow_flex", "wrist_flex", "wrist_roll")},
        },
    )[:3, 3]
    shoulder = np.array([0.0306, 0.0, 0.0165 + 0.1025])
    rel = zero - shoulder
    np.testing.assert_allclose(lifted, shoulder + [rel[2], 0, -rel[0]], atol=1e-12)
    assert lifted[2] < 0


def test_link_frames_and_input_checks():
    frames = link_frames(SO100_CHAIN, np.zeros(5))
    assert len(frames) == 6
    np.testing.assert_allclose(frames[1][:3, 3], [0.0306, 0, 0.119], atol=1e-12)  # shoulder-lift axis
    np.testing.assert_allclose(frames[-1], forward_kinematics(SO100_CHAIN, np.zeros(5)))
    with pytest.raises(ValueError, match="has 5 joints, got 4"):
        forward_kinematics(SO100_CHAIN, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="lack 'wrist_roll'"):
        forward_kinematics(
            SO100_CHAIN, {"shoulder_pan": 0, "shoulder_lift": 0, "elbow_flex": 0, "wrist_flex": 0}
        )
    assert get_chain("so101_follower") is SO100_CHAIN and get_chain(KOCH_CHAIN) is KOCH_CHAIN
    with pytest.raises(ValueError, match="Unknown kinematic chain 'ur5'"):
        get_chain("ur5")


@pytest.mark.parametrize("chain", [SO100_CHAIN, KOCH_CHAIN], ids=lambda c: c.name)
def test_fk_ik_round_trip(chain):
    rng = np.random.default_rng(0)
    for _ in range(5):
        q = rng.uniform(-60, 60, size=len(chain.joints))
        target = forward_kinematics(chain, q)[:3, 3]
        solved = inverse_kinematics(chain, target, q + rng.uniform(-15, 15, size=len(q)))
        np.testing.assert_allclose(forward_kinematics(chain, solved)[:3, 3], target, atol=1e-4)


def test_ik_respects_joint_limits_and_stays_finite_out_of_reach():
    limits = [(-90, 90)] * 5
    solved = inverse_kinematics(SO100_CHAIN, [2.0, 0.0, 0.2], np.zeros(5), joint_limits_deg=limits)
    assert np.all(np.isfinite(solved)) and np.all(np.abs(solved) <= 90)
    reach = np.linalg.norm(forward_kinematics(SO100_CHAIN, solved)[:3, 3] - [2.0, 0.0, 0.2])
    assert reach < 2.0 - 0.3  # stretched toward the target
