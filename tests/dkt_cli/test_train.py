"""``dkt train`` as a user runs it: config, run directory, errors that name what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from backends.base import LoadOptions
from backends.torch_backend import TorchBackend
from dkt.dktnet.checkpoint import read_checkpoint_info
from dkt_cli.app import app
from tests.conftest import TINY_TRAIN_SETS

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()


def flat(text: str) -> str:
    return "".join(text.split())


def train_args(data: Path, run_dir: Path, *extra: str, steps: int = 2) -> list[str]:
    args = [
        "train", "--paintings", str(data / "paintings"), "--photos", str(data / "photos"),
        "--masks", str(data / "masks"), "--steps", str(steps), "--run-dir", str(run_dir),
    ]  # fmt: skip
    for item in TINY_TRAIN_SETS:
        if not item.startswith("loss.network="):
            args += ["--set", item]
    if "--loss-network" not in extra:
        args += ["--loss-network", "random:0"]
    return args + list(extra)


def test_train_writes_a_run_directory_with_a_usable_model(train_data: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, train_args(train_data, run, "--set", "run.checkpoint_every=1"))
    assert result.exit_code == 0, result.output
    model = run / "model.safetensors"
    info = read_checkpoint_info(model)
    assert info.config.working_size == 32
    assert info.provenance["steps"] == 2
    assert info.provenance["loss_network"]["pretrained"] is False
    assert info.provenance["data"] == {"paintings": 6, "foregrounds": 3}
    assert info.provenance["config"]["loss"]["adversarial"] == 1.0
    # The resolved config is kept beside the checkpoints; old checkpoints are pruned to 3.
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["run"]["steps"] == 2 and saved["data"]["size"] == 32
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == [
        "step-00000001.safetensors", "step-00000001.state.safetensors",
        "step-00000002.safetensors", "step-00000002.state.safetensors",
    ]  # fmt: skip
    text = flat(result.stderr)
    assert "random-weightlossnetwork" in text
    assert "6paintings,3foregrounds" in text
    assert flat(f"run directory: {run}") in text
    assert flat(f"dkt harmonize COMPOSITE --mask MASK -o OUT --model {model}") in text
    # Plain log lines (not a terminal) carry every loss term once the adversary is on.
    assert "adversarial" in result.stderr and "discriminator" in result.stderr
    with TorchBackend.load(model, LoadOptions(device="cpu")) as engine:
        assert engine.working_size == 32


def test_print_config_shows_overrides_and_writes_nothing(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--config", "dktnet-vgg19", "--print-config", "--steps", "7",
              "--set", "optim.lr=1e-5", "--run-dir", str(tmp_path / "run")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    shown = yaml.safe_load(result.stdout)
    assert shown["model"]["encoder"] == "vgg19"
    assert shown["run"]["steps"] == 7
    assert shown["optim"]["lr"] == pytest.approx(1e-5)
    assert not (tmp_path / "run").exists()


def test_unknown_config_key_is_a_usage_error(train_data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, train_args(train_data, tmp_path / "run", "--set", "optim.lrr=1"))
    assert result.exit_code == 2, result.output
    assert "unknownkey(s)optim.lrr" in flat(result.stderr)


def test_missing_loss_network_file_is_a_usage_error(train_data: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pth"
    args = train_args(train_data, tmp_path / "run", "--loss-network", str(missing))
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert flat(f"{missing}: no such file") in flat(result.stderr)
    assert "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_no_pretrained_loss_network_says_how_to_get_one(
    train_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("DKT_VGG19_WEIGHTS", raising=False)
    args = train_args(train_data, tmp_path / "run", "--loss-network", "")
    args.remove("--loss-network")
    args.remove("")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    text = flat(result.stderr)
    for hint in ("--loss-networkPATH", "$DKT_VGG19_WEIGHTS", "--download-weights", "random:0"):
        assert hint in text


def test_missing_paintings_folder_is_a_usage_error(train_data: Path, tmp_path: Path) -> None:
    args = train_args(train_data, tmp_path / "run")
    args[args.index("--paintings") + 1] = str(tmp_path / "nope")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert flat(f"{tmp_path / 'nope'}: paintings folder not found") in flat(result.stderr)


def test_size_not_a_multiple_of_8_is_a_usage_error(train_data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, train_args(train_data, tmp_path / "run", "--size", "36"))
    assert result.exit_code == 2, result.output
    assert "data.size must be a multiple of 8" in result.stderr


def test_unreadable_photo_is_named_or_skipped_and_counted(train_data: Path, tmp_path: Path) -> None:
    bad = train_data / "photos" / "ph0.jpg"  # every epoch draws every object
    bad.write_bytes(b"not a jpeg")
    result = runner.invoke(app, train_args(train_data, tmp_path / "a", steps=6))
    assert result.exit_code == 2, result.output
    assert str(bad.name) in result.stderr
    skipping = train_args(train_data, tmp_path / "b", "--skip-bad", steps=6)
    result = runner.invoke(app, skipping)
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable file(s)" in result.stderr


def test_resume_refuses_data_options(train_data: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["train", "--resume", str(tmp_path), "--paintings", str(train_data)]
    )
    assert result.exit_code == 2, result.output
    assert "--resume keeps the run's config" in result.stderr
    assert "--paintings" in result.stderr


def test_init_from_a_model_of_another_shape_is_refused(
    train_data: Path, tmp_path: Path, tiny_model: Path
) -> None:
    extra = ["--init", str(tiny_model), "--set", "model.kernel_dim=2"]
    args = train_args(train_data, tmp_path / "run", *extra)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert str(tiny_model.name) in result.stderr and "differs" in result.stderr
