"""Helpers for the real arm drivers on emulated servo chains: known calibrations, hand sweeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from lerobot.motors import MotorCalibration, save_calibration
from lerobot.motors.emulator import EmulatedBus

RANGE = (500, 3500)  # calibrated range of every swept joint: centre 2000 raw steps
REST = [2048, 1100, 3000, 2200, 2048, 1900]  # the emulator's rest pose (raw = actual, offsets are 0)


def known_calibration(full_turn: tuple[str, ...] = ("wrist_roll",)) -> dict[str, MotorCalibration]:
    names = ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
    return {
        name: MotorCalibration(i, 0, 0, *((0, 4095) if name in full_turn else RANGE))
        for i, name in enumerate(names, start=1)
    }


def write_calibration_file(directory: Path, device_id: str, full_turn=("wrist_roll",)) -> Path:
    path = directory / f"{device_id}.json"
    save_calibration(path, known_calibration(full_turn))
    return path


def raw_to_degrees(raw: float, full_turn: bool = False) -> float:
    return (raw - (4095 / 2 if full_turn else sum(RANGE) / 2)) * 360 / 4095


def scripted_calibration_input(emulator: EmulatedBus, centre: list[int], spread: int) -> Callable[[str], str]:
    """Answers the calibration prompts like a person: centre the arm, then sweep every joint by hand."""
    prompts: list[str] = []

    def answer(prompt: str) -> str:
        prompts.append(prompt)
        if "middle" in prompt:
            for motor_id, actual in enumerate(centre, start=1):
                emulator.move_by_hand(motor_id, actual)
        elif "ranges of motion" in prompt:
            for sign in (-1, 1, 0):
                for motor_id, actual in enumerate(centre, start=1):
                    emulator.move_by_hand(motor_id, actual + sign * spread)
                time.sleep(0.2)  # several samples of the recording loop (every 20 ms) see this pose
        return ""

    answer.prompts = prompts  # type: ignore[attr-defined]
    return answer
