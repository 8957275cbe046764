"""The layout of a run directory, so ``--resume DIR`` and people find things in it.

    DIR/config.yaml                          the resolved config (what --resume reuses)
    DIR/checkpoints/step-00000200.safetensors        model weights (dkt harmonize --model)
    DIR/checkpoints/step-00000200.state.safetensors  everything --resume needs
    DIR/model.safetensors                    the final model (EMA weights when EMA is on)
    DIR/samples/step-00000200.png            composite | output | painting
    DIR/tensorboard/                         scalars and image grids

A checkpoint's state file is written after its model file, so a state file on disk means the
pair is complete; an interrupted write leaves only a temporary file, which is ignored.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from dkt.atomic import atomic_path
from dkt.errors import ConfigError
from training.config import TrainConfig, apply_overrides, load_config_data

__all__ = [
    "CONFIG_NAME",
    "MODEL_NAME",
    "checkpoint_paths",
    "latest_checkpoint",
    "new_run_dir",
    "prune_checkpoints",
    "read_run_config",
    "write_run_config",
]

CONFIG_NAME = "config.yaml"
MODEL_NAME = "model.safetensors"
_STATE = re.compile(r"^step-(\d+)\.state\.safetensors$")


def new_run_dir(base: Path, name: str) -> Path:
    """``base/name-YYYYmmdd-HHMMSS`` (with a counter if that exists already)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate = Path(base) / f"{name}-{stamp}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = Path(base) / f"{name}-{stamp}-{n}"
    return candidate


def checkpoint_paths(run_dir: Path, step: int) -> tuple[Path, Path]:
    """(model file, state file) of the checkpoint at ``step``."""
    folder = Path(run_dir) / "checkpoints"
    return folder / f"step-{step:08d}.safetensors", folder / f"step-{step:08d}.state.safetensors"


def _complete_steps(run_dir: Path) -> list[int]:
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    steps = [int(m[1]) for p in folder.iterdir() if (m := _STATE.match(p.name))]
    return sorted(steps)


def latest_checkpoint(run_dir: Path, at_most: int | None = None) -> tuple[int, Path] | None:
    """(step, state file) of the newest complete checkpoint (of step ``at_most`` or earlier,
    where given), or None."""
    steps = [s for s in _complete_steps(run_dir) if at_most is None or s <= at_most]
    if not steps:
        return None
    return steps[-1], checkpoint_paths(run_dir, steps[-1])[1]


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints (model and state files)."""
    for step in _complete_steps(run_dir)[:-keep]:
        for path in checkpoint_paths(run_dir, step):
            path.unlink(missing_ok=True)


def write_run_config(run_dir: Path, config: TrainConfig) -> Path:
    path = Path(run_dir) / CONFIG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Path(tmp).write_text(config.to_yaml(), encoding="utf-8")
    return path


def read_run_config(run_dir: Path, overrides: list[str] | None = None) -> TrainConfig:
    """The config a run was started with (plus ``run.*`` overrides, e.g. more steps)."""
    path = Path(run_dir) / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a run directory (no {CONFIG_NAME})")
    data, source = load_config_data(str(path))
    for item in overrides or []:
        if not item.startswith("run."):
            raise ConfigError(
                f"--set {item}: only run.* keys can change when resuming (the model, data and "
                "optimiser must stay as the run started)"
            )
    if overrides:
        data = apply_overrides(data, overrides)
    return TrainConfig.from_dict(data, source)
