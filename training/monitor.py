"""What a training run shows while it runs: progress, log lines, TensorBoard, sample grids.

On a terminal a rich progress bar carries the losses and images/s; anywhere else (a log
file, a cluster job) the same figures are printed as plain lines every ``log_every`` steps,
because progress bars in log files are unreadable. TensorBoard gets the same scalars and an
image grid (composite | output | painting) every ``image_every`` steps; the grid is also
written as a PNG in the run directory so it can be looked at without TensorBoard.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dkt.atomic import atomic_path

__all__ = ["Monitor", "sample_grid"]


def sample_grid(*rows: torch.Tensor, limit: int = 4) -> torch.Tensor:
    """(3, n*H, k*W) grid: one line per sample, one column per tensor given (B,3,H,W)."""
    columns = [r[:limit].detach().float().clamp(0, 1).cpu() for r in rows]
    lines = [torch.cat([col[i] for col in columns], dim=2) for i in range(columns[0].shape[0])]
    return torch.cat(lines, dim=1)


def _summary_writer(folder: Path) -> Any | None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "TensorBoard logging is off: the tensorboard package is not installed "
            "(pip install 'dkt[train]')",
            stacklevel=3,
        )
        return None
    return SummaryWriter(log_dir=str(folder))


class Monitor:
    """Rank 0's view of a run; other ranks get ``Monitor(None, ...)``, which does nothing."""

    def __init__(
        self,
        run_dir: Path | None,
        *,
        total_steps: int,
        start_step: int = 0,
        log_every: int = 20,
        tensorboard: bool = True,
        console: Console | None = None,
        progress_bar: bool | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.active = run_dir is not None
        self.total = total_steps
        self.log_every = log_every
        self.console = console or Console(stderr=True)
        bar = self.console.is_terminal if progress_bar is None else progress_bar
        self.writer = (
            _summary_writer(run_dir / "tensorboard")
            if run_dir is not None and tensorboard
            else None
        )
        self.progress: Progress | None = None
        if self.active and bar:
            self.progress = Progress(
                TextColumn("[bold]train"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[status]}"),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._task = self.progress.add_task(
                "train", total=total_steps, completed=start_step, status=""
            )
            self.progress.start()

    def message(self, text: str) -> None:
        if self.active:
            self.console.print(text, soft_wrap=True, highlight=False)

    def step(self, step: int, losses: dict[str, float], lr: float, images_per_s: float) -> None:
        """Called at every step; prints or tabulates only every ``log_every`` steps."""
        if not self.active:
            return
        logged = step % self.log_every == 0 or step == self.total
        if self.progress is not None:
            status = f"loss {losses.get('total', float('nan')):.4f} {images_per_s:.2f} img/s"
            self.progress.update(self._task, completed=step, status=status)
        if not logged:
            return
        if self.writer is not None:
            for name, value in losses.items():
                self.writer.add_scalar(f"loss/{name}", value, step)
            self.writer.add_scalar("train/lr", lr, step)
            self.writer.add_scalar("train/images_per_s", images_per_s, step)
        if self.progress is None:
            parts = " ".join(f"{k} {v:.4f}" for k, v in losses.items())
            self.message(f"step {step}/{self.total} {parts} lr {lr:.2e} {images_per_s:.2f} img/s")

    def images(self, step: int, grid: torch.Tensor) -> Path | None:
        """Log a sample grid to TensorBoard and write it as ``samples/step-N.png``."""
        if not self.active or self.run_dir is None:
            return None
        if self.writer is not None:
            self.writer.add_image("samples/composite|output|painting", grid, step)
        path = self.run_dir / "samples" / f"step-{step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        pixels = (grid.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
        with atomic_path(path) as tmp:
            Image.fromarray(pixels).save(tmp, format="PNG")
        return path

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self.writer is not None:
            self.writer.close()
            self.writer = None
