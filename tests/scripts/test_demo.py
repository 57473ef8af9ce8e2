"""lerobot-demo, the README's main job, end to end at toy scale: every stage runs and writes its files."""

import json

import pytest
from tests.datasets.validate import validate_v30

from lerobot.datasets.lerobot_dataset import LeRobotDataset
from lerobot.scripts.demo import main


def test_demo_records_trains_evaluates_and_writes_its_files(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["--output_dir", str(out), "--num_episodes", "2", "--steps", "6", "--batch_size", "8",
                 "--eval_episodes", "2"]) == 0  # fmt: skip
    summary = json.loads((out / "demo_summary.json").read_text())
    validate_v30(out / "dataset")
    assert LeRobotDataset("lerobot/demo_so100_pick_cube", root=out / "dataset").num_episodes == 2
    assert summary["expert_success"] == 1.0 and 0.0 <= summary["policy_success"] <= 1.0
    eval_info = json.loads((out / "eval" / "eval_info.json").read_text())
    assert [e["seed"] for e in eval_info["per_episode"]] == [1000, 1001]  # held out: demos use seeds 0, 1
    for key in ("training_log", "training_curves", "success_plot", "checkpoint"):
        assert summary["files"][key] and (out / summary["files"][key]).exists()
    assert len(summary["files"]["videos"]) == 2
    assert "scripted expert (privileged state):   100.0% success" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # an existing output is never overwritten silently
        main(["--output_dir", str(out)])
