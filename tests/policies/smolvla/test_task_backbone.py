"""The task backbone builder: a word-level tokenizer from a dataset's task strings, a small SmolVLM config
and processor files, in a folder a SmolVLA policy trains from and carries inside its checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tests.policies.smolvla.conftest import IMAGE_HW, TASKS, tiny_config, write_language_dataset

from lerobot.policies.smolvla.modeling_smolvla import SmolVLAPolicy
from lerobot.policies.smolvla.task_backbone import (
    SPECIAL_TOKENS,
    TaskBackboneSizes,
    build_task_backbone,
    main,
    task_tokenizer,
    task_words,
)
from lerobot.policies.vla_common import load_backbone_config, load_tokenizer

TINY = TaskBackboneSizes(
    image_size=16,
    patch_size=4,
    scale_factor=2,
    vision_hidden_size=16,
    vision_layers=1,
    vision_heads=2,
    text_hidden_size=32,
    text_layers=2,
    text_heads=4,
    text_kv_heads=2,
)


def test_tokenizer_knows_the_task_words_and_smolvlms_special_tokens() -> None:
    assert task_words(["Pick up the red cube.", "pick up the blue cube"]) == [
        *("pick", "up", "the", "red", "cube", ".", "blue")
    ]
    tok = task_tokenizer(TASKS)
    vocab = tok.get_vocab()
    assert [vocab[t] for t in SPECIAL_TOKENS] == list(range(len(SPECIAL_TOKENS)))
    assert vocab["<image>"] == 4 and tok.image_token == "<image>"  # SmolVLM's id for the image placeholder
    red = tok("Pick up the RED cube\n")["input_ids"]
    assert tok.convert_ids_to_tokens(red) == ["pick", "up", "the", "red", "cube", "\n"]
    blue = tok("pick up the blue cube\n")["input_ids"]
    assert [a != b for a, b in zip(red, blue, strict=True)] == [False, False, False, True, False, False]
    assert tok("pick up the green cube")["input_ids"][3] == tok.unk_token_id
    with pytest.raises(ValueError, match="No words"):
        task_tokenizer([" "])


def test_backbone_folder_trains_a_policy_that_reloads_from_its_checkpoint(tmp_path: Path) -> None:
    folder = build_task_backbone(TASKS, tmp_path / "smolvlm_tasks", TINY)
    assert sorted(p.name for p in folder.iterdir()) == [
        "config.json",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]
    assert not list(tmp_path.glob(".smolvlm_tasks.*"))  # no staging folder left behind
    config = load_backbone_config(folder)
    assert config.model_type == "smolvlm" and config.image_token_id == 4
    assert config.vision_config.image_size == 16 and config.text_config.hidden_size == 32
    assert config.text_config.vocab_size == len(load_tokenizer(folder))
    processor = json.loads((folder / "processor_config.json").read_text())
    assert processor["image_seq_len"] == 4 and processor["image_processor"]["size"] == {"longest_edge": 16}
    with pytest.raises(FileExistsError, match="already exists"):
        build_task_backbone(TASKS, folder, TINY)
    with pytest.raises(ValueError, match="scale_factor"):
        build_task_backbone(TASKS, tmp_path / "bad", TaskBackboneSizes(image_size=24, patch_size=8))

    torch.manual_seed(0)
    policy = SmolVLAPolicy(
        tiny_config(folder, freeze_vision_encoder=False, train_expert_only=False, num_vlm_layers=2)
    )
    batch = {
        "observation.state": torch.randn(2, 3),
        "observation.images.front": torch.rand(2, 3, *IMAGE_HW),
        "action": torch.randn(2, 4, 2),
        "action_is_pad": torch.zeros(2, 4, dtype=torch.bool),
        "task": TASKS,
    }
    out = policy.forward(batch)
    loss = out[0] if isinstance(out, tuple) else out["loss"]
    loss.backward()  # from scratch: the vision encoder and the VLM train too
    assert (
        policy.model.vlm_with_expert.vlm.model.vision_model.embeddings.patch_embedding.weight.grad is not None
    )
    ckpt = policy.save_pretrained(tmp_path / "ckpt")
    assert json.loads((ckpt / "config.json").read_text())["vlm_model_name"] == "smolvlm_tasks"
    assert (ckpt / "smolvlm_tasks" / "processor_config.json").is_file()
    obs = {k: v[:1] for k, v in batch.items() if k.startswith("observation")} | {"task": TASKS[0]}
    noise = torch.randn(1, 4, 4)
    torch.testing.assert_close(
        SmolVLAPolicy.from_pretrained(ckpt).predict_action_chunk(obs, noise=noise),
        policy.predict_action_chunk(obs, noise=noise),
        rtol=0,
        atol=0,
    )


def test_cli_reads_the_datasets_task_strings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_language_dataset(tmp_path / "ds")
    out = tmp_path / "backbone"
    flags = [f"--{k}={v}" for k, v in vars(TINY).items()]
    sizes = [f.replace("--", "--sizes.", 1) for f in flags]
    args = ["--dataset.repo_id=test/lang", f"--dataset.root={tmp_path / 'ds'}", f"--output_dir={out}"]
    assert main([*args, "--tasks=[put the cube down]", *sizes]) == 0
    assert "--policy.vlm_model_name=" in capsys.readouterr().out
    vocab = load_tokenizer(out).get_vocab()
    assert {"red", "blue", "pick", "put", "down"} <= set(vocab)
    with pytest.raises(FileExistsError):  # one clear error (exit 1 from the console), nothing overwritten
        main([*args, *sizes])


def test_camera_free_policy_trains_on_so100_state_vector_and_evaluates(tmp_path: Path) -> None:
    """Only padding cameras (``empty_cameras=1``): the prefix is the task and the state, here the joints and
    both cubes' poses (``--env.obs_type=state_vector``), from recording through training to evaluation."""
    from lerobot.envs import resolve_env_config
    from lerobot.envs.recording import record_expert_dataset
    from lerobot.scripts.eval import main as eval_main
    from lerobot.scripts.train import main as train_main

    env = resolve_env_config("so100", task="pick_color", obs_type="state_vector", render_mode=None)
    assert (
        env.features["observation.state"]["shape"] == (20,)
        and "observation.environment_state" not in env.features
    )
    ds, _ = record_expert_dataset(
        env, "test/pick_color_sv", tmp_path / "ds", num_episodes=2, use_videos=False
    )
    first = ds[0]
    assert first["observation.state"].shape == (20,) and not ds.meta.camera_keys
    folder = build_task_backbone(sorted(set(ds.meta.tasks.index)), tmp_path / "smolvlm_pc", TINY)
    flags = [
        "--policy.type=smolvla", "--policy.device=cpu", f"--policy.vlm_model_name={folder}",
        "--policy.load_vlm_weights=false", "--policy.empty_cameras=1", "--policy.resize_imgs_with_padding=[16,16]",
        "--policy.num_vlm_layers=2", "--policy.expert_width_multiplier=1.0", "--policy.chunk_size=4",
        "--policy.n_action_steps=4", "--policy.max_state_dim=20", "--policy.max_action_dim=6",
        "--policy.num_steps=2", "--dataset.repo_id=test/pick_color_sv", f"--dataset.root={tmp_path / 'ds'}",
        "--dataset.val_split=0", "--dataset.first_frames=3", "--dataset.first_frames_repeat=2",
        "--batch_size=2", "--steps=2", "--num_workers=0", "--eval_freq=0", "--save_freq=2", "--tensorboard=false",
        f"--output_dir={tmp_path / 'train'}",
    ]  # fmt: skip
    assert train_main(flags) == 0
    ckpt = tmp_path / "train" / "checkpoints" / "last" / "pretrained_model"
    saved = json.loads((ckpt / "config.json").read_text())
    assert saved["input_features"]["observation.state"]["shape"] == [20]
    assert sorted(saved["input_features"]) == ["observation.images.empty_camera_0", "observation.state"]
    policy = SmolVLAPolicy.from_pretrained(ckpt)
    obs = {"observation.state": first["observation.state"][None], "task": [first["task"]]}
    noise = torch.randn(1, 4, 6)
    red = policy.predict_action_chunk({**obs, "task": [TASKS[0]]}, noise=noise)
    blue = policy.predict_action_chunk({**obs, "task": [TASKS[1]]}, noise=noise)
    assert red.shape == (1, 4, 6) and not torch.equal(red, blue)  # the instruction reaches the actions
    evaluated = [
        f"--policy.path={ckpt}", "--env.type=so100", "--env.task=pick_color", "--env.obs_type=state_vector",
        "--env.episode_length=8", "--eval.n_episodes=2", "--eval.batch_size=2", "--eval.max_videos=0",
        f"--output_dir={tmp_path / 'eval'}",
    ]  # fmt: skip
    assert eval_main(evaluated) == 0
    info = json.loads((tmp_path / "eval" / "eval_info.json").read_text())
    assert len(info["per_episode"]) == 2 and "pc_wrong_cube" in info["aggregated"]
