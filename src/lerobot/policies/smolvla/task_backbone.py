"""A small SmolVLM backbone folder for training SmolVLA from scratch on a dataset's own instructions.

SmolVLA reads its backbone from the folder named by ``vlm_model_name``: a transformers
``SmolVLMConfig`` (``config.json``), a tokenizer and a processor. Pretrained SmolVLM2 is a 500 M
model with a 49 k-token vocabulary, far more than a task whose instructions use a dozen words needs,
and too slow to train on a CPU. :func:`build_task_backbone` writes a folder of the same architecture
at a chosen small size, with a word-level tokenizer whose vocabulary is the words of the dataset's
task strings (SmolVLM's special tokens first, so ``<image>`` keeps its role), and a
``SmolVLMProcessor`` sized to the images. No weights: with ``--policy.load_vlm_weights=false`` (the
default) the VLM starts from random weights, and a policy checkpoint copies this folder inside
itself, so ``lerobot-eval --policy.path=<checkpoint>`` needs nothing else.

    python -m lerobot.policies.smolvla.task_backbone --dataset.repo_id=local/so100_pick_color \\
        --dataset.root=outputs/recipes/data/so100_pick_color --output_dir=outputs/recipes/smolvlm_pick_color

Words are lower-cased and split on whitespace and punctuation, so "Pick up the red cube." and
"pick up the red cube" tokenise alike; a word no task used becomes ``<|endoftext|>`` (the unknown
token).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lerobot.configs.parser import parse_config, print_help_if_asked
from lerobot.utils.cli import console_main

# SmolVLM2's special tokens, at the ids its own tokenizer gives them (<image> = 4 is the config's image_token_id).
UNK, BOS, PAD, FAKE_IMAGE, IMAGE, GLOBAL_IMAGE, END_OF_UTTERANCE = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    "<end_of_utterance>",
)
SPECIAL_TOKENS = (UNK, BOS, PAD, FAKE_IMAGE, IMAGE, GLOBAL_IMAGE, END_OF_UTTERANCE)
NEWLINE = "\n"  # SmolVLA appends it to every task: a token of its own, as in SmolVLM's vocabulary
WORD = re.compile(r"\w+|[^\w\s]")


@dataclass
class TaskBackboneSizes:
    """The backbone's size. Image tokens per camera: ``(image_size / patch_size / scale_factor) ** 2``."""

    image_size: int = 96
    """Square side the vision encoder takes; set SmolVLA's ``resize_imgs_with_padding`` to it."""
    patch_size: int = 8
    scale_factor: int = 2
    """Pixel-shuffle factor of the connector: scale_factor**2 patches become one image token."""
    vision_hidden_size: int = 64
    vision_layers: int = 2
    vision_heads: int = 2
    text_hidden_size: int = 128
    text_layers: int = 4
    text_heads: int = 4
    text_kv_heads: int = 2
    max_position_embeddings: int = 512

    def validate(self) -> None:
        side = self.image_size // self.patch_size
        if self.image_size % self.patch_size or side % self.scale_factor:
            raise ValueError(
                f"image_size={self.image_size} must be a multiple of patch_size={self.patch_size}, and the "
                f"{side} patches per side a multiple of scale_factor={self.scale_factor} (the connector's "
                "pixel shuffle groups scale_factor x scale_factor patches)."
            )
        for hidden, heads, what in (
            (self.vision_hidden_size, self.vision_heads, "vision"),
            (self.text_hidden_size, self.text_heads, "text"),
        ):
            if hidden % heads:
                raise ValueError(f"{what}_hidden_size={hidden} must be a multiple of {what}_heads={heads}.")
        if self.text_heads % self.text_kv_heads:
            raise ValueError(
                f"text_heads={self.text_heads} must be a multiple of text_kv_heads={self.text_kv_heads}."
            )

    @property
    def image_seq_len(self) -> int:
        return (self.image_size // self.patch_size // self.scale_factor) ** 2


def task_words(tasks: Iterable[str]) -> list[str]:
    """The distinct lower-cased words and punctuation marks of ``tasks``, in order of first use."""
    words: dict[str, None] = {}
    for task in tasks:
        for word in WORD.findall(task.lower()):
            words.setdefault(word)
    if not words:
        raise ValueError("No words in the task strings: a task tokenizer needs at least one instruction.")
    return list(words)


def task_tokenizer(tasks: Iterable[str]) -> Any:
    """A ``PreTrainedTokenizerFast`` with SmolVLM's special tokens and the tasks' words (word-level)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate((*SPECIAL_TOKENS, NEWLINE, *task_words(tasks)))}
    raw = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    raw.normalizer = normalizers.Lowercase()
    raw.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(NEWLINE, behavior="isolated"),
            pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"),  # spaces and tabs, not newlines
            pre_tokenizers.Split(Regex(r"[^\w\s]"), behavior="isolated"),
        ]
    )
    raw.decoder = decoders.WordPiece(prefix="##", cleanup=True)  # joins words with spaces
    return PreTrainedTokenizerFast(
        tokenizer_object=raw,
        processor_class="SmolVLMProcessor",
        bos_token=BOS,
        eos_token=END_OF_UTTERANCE,
        pad_token=PAD,
        unk_token=UNK,
        extra_special_tokens={
            "fake_image_token": FAKE_IMAGE,
            "image_token": IMAGE,
            "global_image_token": GLOBAL_IMAGE,
            "end_of_utterance_token": END_OF_UTTERANCE,
        },
    )


def build_task_backbone(
    tasks: Iterable[str], output_dir: str | Path, sizes: TaskBackboneSizes | None = None
) -> Path:
    """Write a SmolVLM backbone folder (config, tokenizer, processor; no weights) for ``tasks``.

    The folder is written under a temporary name next to ``output_dir`` and renamed into place, so
    an interrupted build never leaves a half-written backbone; an existing ``output_dir`` is an error.
    """
    from transformers import SmolVLMConfig, SmolVLMImageProcessor, SmolVLMVideoProcessor

    sizes = sizes or TaskBackboneSizes()
    sizes.validate()
    output_dir = Path(output_dir)
    if output_dir.exists():
        raise FileExistsError(f"{output_dir} already exists: remove it or choose another --output_dir.")
    tokenizer = task_tokenizer(tasks)
    vocab = tokenizer.get_vocab()
    config = SmolVLMConfig(
        vision_config={
            "hidden_size": sizes.vision_hidden_size,
            "intermediate_size": 4 * sizes.vision_hidden_size,
            "num_hidden_layers": sizes.vision_layers,
            "num_attention_heads": sizes.vision_heads,
            "image_size": sizes.image_size,
            "patch_size": sizes.patch_size,
        },
        text_config={
            "model_type": "llama",
            "hidden_size": sizes.text_hidden_size,
            "intermediate_size": 4 * sizes.text_hidden_size,
            "num_hidden_layers": sizes.text_layers,
            "num_attention_heads": sizes.text_heads,
            "num_key_value_heads": sizes.text_kv_heads,
            "head_dim": sizes.text_hidden_size // sizes.text_heads,
            "vocab_size": len(vocab),
            "max_position_embeddings": sizes.max_position_embeddings,
            "bos_token_id": vocab[BOS],
            "eos_token_id": vocab[END_OF_UTTERANCE],
            "pad_token_id": vocab[PAD],
            "tie_word_embeddings": False,
        },
        scale_factor=sizes.scale_factor,
        image_token_id=vocab[IMAGE],
        pad_token_id=vocab[PAD],
        tie_word_embeddings=False,
    )
    edge = {"longest_edge": sizes.image_size}
    image_processor = SmolVLMImageProcessor(size=edge, max_image_size=edge, do_image_splitting=False)
    video_processor = SmolVLMVideoProcessor(size=edge, max_image_size=edge)
    # What SmolVLMProcessor.save_pretrained writes; built by hand because constructing that processor
    # needs the optional `num2words` package, which nothing here uses (SmolVLA reads only the tokenizer).
    processor_config = {
        "image_processor": json.loads(image_processor.to_json_string()),
        "image_seq_len": sizes.image_seq_len,
        "processor_class": "SmolVLMProcessor",
        "video_processor": json.loads(video_processor.to_json_string()),
    }
    output_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.", dir=output_dir.parent))
    try:
        config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "processor_config.json").write_text(json.dumps(processor_config, indent=2) + "\n")
        staging.rename(output_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return output_dir


@dataclass
class TaskDatasetConfig:
    repo_id: str = ""
    root: Path | None = None


@dataclass
class BuildTaskBackboneConfig:
    dataset: TaskDatasetConfig = field(default_factory=TaskDatasetConfig)
    """The dataset whose task strings make the vocabulary (its meta/tasks.parquet)."""
    tasks: list[str] = field(default_factory=list)
    """Extra instructions for the vocabulary (or the only ones, without --dataset.repo_id)."""
    output_dir: Path | None = None
    sizes: TaskBackboneSizes = field(default_factory=TaskBackboneSizes)


@console_main
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if print_help_if_asked(argv, __doc__, BuildTaskBackboneConfig):
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    cfg = parse_config(BuildTaskBackboneConfig, argv)
    if cfg.output_dir is None or not (cfg.dataset.repo_id or cfg.tasks):
        raise SystemExit(
            "Give --output_dir=<folder> and --dataset.repo_id=... (with --dataset.root=...) or --tasks."
        )
    tasks = list(cfg.tasks)
    if cfg.dataset.repo_id:
        from lerobot.datasets.lerobot_dataset import LeRobotDatasetMetadata

        tasks += list(LeRobotDatasetMetadata(cfg.dataset.repo_id, root=cfg.dataset.root).tasks.index)
    folder = build_task_backbone(tasks, cfg.output_dir, cfg.sizes)
    print(
        f"Wrote a SmolVLM backbone for {len(tasks)} task strings ({len(task_words(tasks))} words, "
        f"{cfg.sizes.image_seq_len} image tokens per camera) to {folder}; train with "
        f"--policy.vlm_model_name={folder} --policy.resize_imgs_with_padding=[{cfg.sizes.image_size},"
        f"{cfg.sizes.image_size}]"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
