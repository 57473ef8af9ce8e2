"""``--help`` of every ``lerobot-*`` CLI: exit 0, and every flag shown with its type, default and docstring."""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import re
import subprocess
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lerobot.configs.parser import choice_registry, config_help, field_docs, format_value

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def _console_scripts() -> dict[str, str]:
    """``[project.scripts]`` of pyproject.toml, read by hand (tomllib needs Python >= 3.11)."""
    section = PYPROJECT.read_text().split("[project.scripts]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^([\w-]+)\s*=\s*"([^"]+)"', section, re.M))


SCRIPTS = _console_scripts()

# CLI -> the config dataclass its flags fill; None: an argparse tool, checked through its parser.
CONFIGS: dict[str, str | None] = {
    "lerobot-train": "lerobot.scripts.train_config:TrainPipelineConfig",
    "lerobot-eval": "lerobot.scripts.eval_config:EvalPipelineConfig",
    "lerobot-record": "lerobot.scripts.record:RecordConfig",
    "lerobot-replay": "lerobot.scripts.replay:ReplayConfig",
    "lerobot-teleoperate": "lerobot.scripts.teleoperate:TeleoperateConfig",
    "lerobot-deploy": "lerobot.scripts.deploy:DeployConfig",
    "lerobot-export": "lerobot.scripts.export:ExportConfig",
    "lerobot-calibrate": "lerobot.scripts.calibrate:CalibrateConfig",
    "lerobot-setup-motors": "lerobot.scripts.setup_motors:SetupMotorsConfig",
    "lerobot-find-port": "lerobot.scripts.find_port:FindPortConfig",
    "lerobot-edit-dataset": "lerobot.scripts.edit_dataset:EditDatasetConfig",
    "lerobot-lekiwi-host": "lerobot.scripts.lekiwi_host:LeKiwiHostMainConfig",
    "lerobot-policy-server": "lerobot.scripts.policy_server:PolicyServerConfig",
    "lerobot-info": None,
    "lerobot-demo": None,
    "lerobot-convert-dataset": None,
    "lerobot-find-cameras": None,
    "lerobot-emulate-arm": None,
    "lerobot-dataset-viz": None,
    "lerobot-dataset-info": None,
}


def _load(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


def _run_help(cli: str, capsys, monkeypatch, extra: tuple[str, ...] = ()) -> tuple[str, list]:
    """Call the CLI's main with ``--help``; returns (stdout, the argparse parsers that printed help)."""
    parsers: list[argparse.ArgumentParser] = []
    original = argparse.ArgumentParser.print_help

    def recording_print_help(self, file=None):
        parsers.append(self)
        original(self, file)

    monkeypatch.setattr(argparse.ArgumentParser, "print_help", recording_print_help)
    try:
        code = _load(SCRIPTS[cli])([*extra, "--help"])
    except SystemExit as e:
        code = e.code
    assert code in (0, None), f"{cli} --help exited with {code!r}"
    return capsys.readouterr().out, parsers


def _flat(text: str) -> str:
    return " ".join(text.split())


def _expected_flags(cls: type, prefix: str = "") -> list[tuple[str, str, str]]:
    """(flag, default as shown, docstring) of every flag ``--help`` must list, walked independently.

    Choice sections (``--robot.*``) list ``--robot.type`` and the fields every type shares.
    """
    out = []
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        union = typing.get_origin(tp) in (typing.Union, types.UnionType)
        args = [a for a in (typing.get_args(tp) if union else (tp,)) if a is not type(None)]
        if len(args) == 1 and dataclasses.is_dataclass(args[0]):
            out.append((f"{prefix}{f.name}.*", "", docs.get(f.name, "")))
            if choice_registry(args[0]) is not None:
                own = getattr(args[0], "type", "")
                unset = "default=None" if f.default is None else "(required)"
                out.append((f"{prefix}{f.name}.type", f"default={own}" if own else unset, ""))
            out += _expected_flags(args[0], f"{prefix}{f.name}.")
            continue
        if f.default is not dataclasses.MISSING:
            default = f"default={format_value(f.default)}"
        elif f.default_factory is not dataclasses.MISSING:
            default = f"default={format_value(f.default_factory())}"
        else:
            default = "(required)"
        out.append((f"{prefix}{f.name}", default, docs.get(f.name, "")))
    return out


def test_every_console_script_is_checked():
    assert set(SCRIPTS) == set(CONFIGS)


@pytest.mark.parametrize("cli", [c for c, spec in CONFIGS.items() if spec is not None])
def test_dataclass_cli_help_lists_every_flag_with_type_default_and_docstring(cli, capsys, monkeypatch):
    text, _ = _run_help(cli, capsys, monkeypatch)
    lines, flat = text.splitlines(), _flat(text)
    expected = _expected_flags(_load(CONFIGS[cli]))
    assert expected
    for flag, default, doc in expected:
        assert doc or flag.endswith((".type", ".*")), f"{cli}: --{flag} has no docstring to show"
        if flag.endswith(".*"):
            assert f"(--{flag}):" in text, f"{cli}: no section for --{flag}"
        else:
            line = next((ln for ln in lines if ln.startswith(f"  --{flag} ")), None)
            assert line is not None, f"{cli} --help does not list --{flag}"
            assert default in line, f"{cli}: --{flag} shows no {default!r}: {line!r}"
            assert line.split()[1], f"{cli}: --{flag} shows no type"
        assert _flat(doc) in flat, f"{cli}: the docstring of --{flag} is missing: {doc!r}"


@pytest.mark.parametrize("cli", [c for c, spec in CONFIGS.items() if spec is None])
def test_argparse_cli_help_lists_every_flag_with_text_and_default(cli, capsys, monkeypatch):
    text, parsers = _run_help(cli, capsys, monkeypatch)
    assert parsers, f"{cli} printed its help without argparse"
    flat = _flat(text)
    for action in parsers[-1]._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        assert action.help, f"{cli}: {action.option_strings or action.dest} has no help text"
        assert _flat(action.help % {"default": action.default}) in flat
        for name in action.option_strings:
            assert name in text
        explained = "(default" in action.help or action.default is None or action.required
        assert explained or f"(default: {action.default})" in flat, f"{cli}: {action.dest} hides its default"


def test_train_help_details_the_chosen_policy_and_shows_guide_spellings(capsys, monkeypatch):
    text, _ = _run_help("lerobot-train", capsys, monkeypatch, ("--policy=act",))
    from lerobot.policies import POLICY_CONFIGS

    assert f"--policy.type {{{', '.join(POLICY_CONFIGS.names())}}}  default=act (chosen)" in text
    assert "  --policy.chunk_size int  default=100" in text
    assert "Actions predicted per forward pass (the chunk)." in text
    assert "  --steps int  default=100000  (also --training.num_steps, --training.steps)" in text
    assert "  --dataset.root Path | None  default=None" in text
    plain, _ = _run_help("lerobot-train", capsys, monkeypatch)
    assert "--policy.chunk_size" not in plain and "add --policy.type=NAME --help" in plain


def test_record_help_details_the_chosen_robot(capsys, monkeypatch):
    text, _ = _run_help("lerobot-record", capsys, monkeypatch, ("--robot.type=so100_follower",))
    assert "  --robot.port " in text and "so100_follower (chosen)" in text


@dataclass
class _Base:
    steps: int = 10
    """Optimizer updates."""
    name: str = "x"
    """The base's words."""
    seed: int = field(default=0, metadata={"help": "From metadata."})


@dataclass
class _Child(_Base):
    name: str = "y"
    """The child's words win."""
    ratio: float = 0.5
    """A multi-line
    docstring."""
    bare: bool = False


def test_field_docs_follow_inheritance_and_overrides():
    assert field_docs(_Child) == {
        "steps": "Optimizer updates.",
        "name": "The child's words win.",
        "ratio": "A multi-line\ndocstring.",
        "seed": "From metadata.",
    }
    text = "\n".join(config_help(_Child))
    assert "  --name str  default='y'\n        The child's words win." in text
    assert "  --bare bool  default=false" in text and "  --ratio float  default=0.5" in text


def test_field_docs_of_a_class_without_source_is_empty():
    made = dataclasses.make_dataclass("Made", [("a", int, 1)])
    assert field_docs(made) == {}
    assert config_help(made) == ["  --a int  default=1"]


def test_help_into_a_closed_pipe_is_not_an_error():
    """``lerobot-x --help | head``: the reader leaving early ends the tool quietly with status 0."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "lerobot.scripts.calibrate", "--help"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # before the tool has imported, let alone printed
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and b"error" not in err, err.decode()


def test_every_registered_robot_teleoperator_and_camera_field_is_documented():
    """``--robot.type=X --help`` details X's own fields: each needs its docstring."""
    from lerobot.cameras.camera import CAMERA_CONFIGS
    from lerobot.robots.robot import ROBOT_CONFIGS
    from lerobot.robots.safety import SafetyConfig
    from lerobot.teleoperators.teleoperator import TELEOPERATOR_CONFIGS

    undocumented = []
    for registry in (ROBOT_CONFIGS, TELEOPERATOR_CONFIGS, CAMERA_CONFIGS):
        for name in registry.names():
            cls = registry.get(name)
            if not cls.__module__.startswith("lerobot."):
                continue  # a test's own stand-in device
            docs = field_docs(cls)
            undocumented += [
                f"{cls.__name__}.{f.name}" for f in dataclasses.fields(cls) if f.name not in docs
            ]
    docs = field_docs(SafetyConfig)
    undocumented += [f"SafetyConfig.{f.name}" for f in dataclasses.fields(SafetyConfig) if f.name not in docs]
    assert not undocumented, f"fields without a docstring: {sorted(set(undocumented))}"
