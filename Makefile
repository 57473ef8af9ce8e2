# Thin wrappers; the README shows these commands.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

export MUJOCO_GL ?= egl
export HF_HUB_OFFLINE ?= 1
export WANDB_MODE ?= offline

.PHONY: install demo test lint bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -c constraints.txt -e ".[test]"  # exact tested torch; pyproject has ranges
	# Meta-World pins mujoco 3.3.0 but runs on [sim]'s 3.8.1 (docs/benchmark_envs.md): beside it, no deps.
	$(BIN)/pip install --no-deps metaworld==3.1.1

demo: install
	$(BIN)/lerobot-demo --overwrite

test:
	$(BIN)/lint-imports  # the layers contract in .importlinter
	$(BIN)/python -m pytest -q

lint:
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench:
	$(BIN)/python benchmarks/dataloader.py
