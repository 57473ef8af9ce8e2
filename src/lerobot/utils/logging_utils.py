"""Where training metrics go: ``train_log.csv``, TensorBoard, Weights & Biases, and a PNG of the curves.

``train_log.csv`` has one row per step that logged anything, with the columns of :data:`CSV_COLUMNS`
(empty cells where a metric was not measured at that step: ``val_loss`` only every ``val_freq`` steps,
``success_rate`` -- a fraction in [0, 1] -- only every ``eval_freq`` steps; ``inference_ms``, the time
of one ``select_action`` on one sample at each logging step, as on a robot). It reads straight into
pandas (``pd.read_csv(path)``). ``loss`` repeats ``train_loss`` under the short name the user guide
plots (``logs["loss"]``). A resumed run drops the rows after its checkpoint and appends.
"""

from __future__ import annotations

import csv
import logging
import math
import uuid
from pathlib import Path
from typing import Any

from lerobot.utils.io_utils import atomic_path

logger = logging.getLogger(__name__)

CSV_NAME = "train_log.csv"
PLOT_NAME = "train_curves.png"
CSV_COLUMNS = [
    "step",
    "train_loss",
    "val_loss",
    "success_rate",
    "learning_rate",
    "grad_norm",
    "samples_per_s",
    "avg_sum_reward",
    "inference_ms",
    "loss",
]


class TrainLogger:
    """Sends each step's metrics to the CSV and whichever trackers are enabled (main process only)."""

    def __init__(
        self,
        output_dir: Path,
        config: dict[str, Any],
        resume_step: int | None,
        tensorboard: bool,
        wandb_cfg: Any,
    ):
        self.output_dir = Path(output_dir)
        self.csv_path = self.output_dir / CSV_NAME
        self._start_csv(resume_step)
        self.tb = _tensorboard_writer(self.output_dir / "tensorboard") if tensorboard else None
        self.wandb = _wandb_run(self.output_dir, config, wandb_cfg) if wandb_cfg.enable else None

    def _start_csv(self, resume_step: int | None) -> None:
        rows: list[dict[str, str]] = []
        if resume_step is not None and self.csv_path.is_file():
            with self.csv_path.open(newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= resume_step]
        with atomic_path(self.csv_path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(rows)

    def log(self, step: int, metrics: dict[str, float | None]) -> None:
        row = {k: v for k, v in metrics.items() if v is not None}
        csv_row = {"step": step, **row}
        if "train_loss" in row:
            csv_row["loss"] = row["train_loss"]
        with self.csv_path.open("a", newline="") as f:
            csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore").writerow(csv_row)
        if self.tb is not None:
            for key, value in row.items():
                self.tb.add_scalar(f"train/{key}", value, step)
        if self.wandb is not None:
            self.wandb.log({f"train/{k}": v for k, v in row.items()}, step=step)

    def close(self) -> Path:
        """Flush the trackers and draw the curves; returns the PNG's path."""
        if self.tb is not None:
            self.tb.close()
        if self.wandb is not None:
            self.wandb.finish()
        return plot_training_curves(self.csv_path, self.output_dir / PLOT_NAME)


def _tensorboard_writer(log_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        logger.info("TensorBoard logging off: pip install tensorboard to enable it.")
        return None
    return SummaryWriter(log_dir=str(log_dir))


def _wandb_run(output_dir: Path, config: dict[str, Any], cfg: Any) -> Any:
    try:
        import wandb
    except ImportError as e:
        raise ImportError("--wandb.enable=true needs Weights & Biases: pip install wandb") from e
    # The run id is kept next to the outputs so a resumed training continues the same W&B run.
    id_file = output_dir / "wandb_run_id.txt"
    run_id = id_file.read_text().strip() if id_file.is_file() else uuid.uuid4().hex[:12]
    id_file.write_text(run_id)
    return wandb.init(
        project=cfg.project,
        entity=cfg.entity,
        name=cfg.run_name or config.get("job_name"),
        notes=cfg.notes,
        mode=cfg.mode,
        dir=str(output_dir),
        config=config,
        id=run_id,
        resume="allow",
    )


def read_log(csv_path: Path) -> dict[str, list[tuple[int, float]]]:
    """Column -> [(step, value)] for the cells that hold a number."""
    series: dict[str, list[tuple[int, float]]] = {c: [] for c in CSV_COLUMNS[1:]}
    with Path(csv_path).open(newline="") as f:
        for row in csv.DictReader(f):
            for key in series:
                if row.get(key) not in (None, ""):
                    series[key].append((int(row["step"]), float(row[key])))
    return series


def plot_training_curves(csv_path: Path, png_path: Path) -> Path:
    """Loss (train and val, log scale), learning rate and success rate against the step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_log(csv_path)
    panels = [("loss", ["train_loss", "val_loss"]), ("learning rate", ["learning_rate"])]
    if series["success_rate"]:
        panels.append(("success rate", ["success_rate"]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6))
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            if series[key]:
                steps, values = zip(*series[key])
                ax.plot(steps, values, marker="o" if len(steps) < 30 else None, label=key)
        if (
            title == "loss"
            and all(v > 0 for k in keys for _, v in series[k])
            and any(series[k] for k in keys)
        ):
            ax.set_yscale("log")
        if title == "success rate":
            ax.set_ylim(-0.02, 1.02)
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend()
    fig.tight_layout()
    return save_figure(fig, png_path)


def save_figure(fig: Any, path: Path) -> Path:
    """Save a matplotlib figure under a temporary name, then rename: a reader never sees half a PNG."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
    return path


def format_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
