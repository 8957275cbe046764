"""Run directories: the newest complete checkpoint is found, old ones pruned, config kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkt.errors import ConfigError
from training.config import load_config
from training.rundir import (
    checkpoint_paths,
    latest_checkpoint,
    new_run_dir,
    prune_checkpoints,
    read_run_config,
    write_run_config,
)


def _write(run: Path, step: int, *, state: bool = True) -> None:
    model, st = checkpoint_paths(run, step)
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"m")
    if state:
        st.write_bytes(b"s")


def test_latest_complete_checkpoint_ignores_a_half_written_pair(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    _write(tmp_path, 200)
    _write(tmp_path, 400, state=False)  # killed between the model and the state file
    (tmp_path / "checkpoints" / ".step-00000600.state.safetensors.tmp123").write_bytes(b"x")
    assert latest_checkpoint(tmp_path) == (200, checkpoint_paths(tmp_path, 200)[1])


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        _write(tmp_path, step)
    prune_checkpoints(tmp_path, keep=2)
    left = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert left == [
        "step-00000003.safetensors", "step-00000003.state.safetensors",
        "step-00000004.safetensors", "step-00000004.state.safetensors",
    ]  # fmt: skip


def test_config_round_trip_and_resume_overrides(tmp_path: Path) -> None:
    cfg = load_config("dktnet-lite", ["run.steps=10"])
    write_run_config(tmp_path, cfg)
    assert read_run_config(tmp_path) == cfg
    assert read_run_config(tmp_path, ["run.steps=20"]).run.steps == 20
    with pytest.raises(ConfigError, match=r"only run\.\* keys can change"):
        read_run_config(tmp_path, ["optim.lr=1"])
    with pytest.raises(ConfigError, match="not a run directory"):
        read_run_config(tmp_path / "elsewhere")


def test_new_run_dirs_do_not_collide(tmp_path: Path) -> None:
    first = new_run_dir(tmp_path, "dktnet-lite")
    first.mkdir()
    second = new_run_dir(tmp_path, "dktnet-lite")
    assert second != first and second.name.startswith("dktnet-lite-")
