"""``dkt train`` on a tiny synthetic folder: a checkpoint that says how it was made."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from backends.torch_backend import TorchBackend
from dkt_cli.app import app
from dktnet.checkpoint import read_checkpoint_info
from dktnet.imageio import write_image

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()


def flat(text: str) -> str:
    return "".join(text.split())


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """6 paintings (48x48) and 3 photos, each with one ``_obj01`` instance mask."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    yy, xx = np.mgrid[0:48, 0:48]
    for i in range(6):
        painting = rng.integers(0, 256, (1, 1, 3)) * 0.6 + rng.integers(0, 100, (48, 48, 3))
        write_image(root / "paintings" / f"p{i}.png", painting.clip(0, 255).astype(np.uint8))
    for i in range(3):
        write_image(root / "photos" / f"ph{i}.jpg", rng.integers(0, 256, (48, 48, 3), np.uint8))
        blob = ((yy - 24) ** 2 + (xx - 20 - 2 * i) ** 2 < (10 + i) ** 2).astype(np.uint8) * 255
        write_image(root / "masks" / f"ph{i}_obj01.png", blob)
    return root


def _train_args(data: Path, output: Path, loss_network: str) -> list[str]:
    return [
        "train", "--paintings", str(data / "paintings"), "--photos", str(data / "photos"),
        "--masks", str(data / "masks"), "--steps", "2", "--batch-size", "2", "--size", "32",
        "--loss-network", loss_network, "-o", str(output),
    ]  # fmt: skip


def test_train_writes_a_checkpoint_with_provenance(data: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.safetensors"
    result = runner.invoke(app, _train_args(data, output, "random:0"))
    assert result.exit_code == 0, result.output
    info = read_checkpoint_info(output)
    assert info.config.working_size == 32
    assert info.provenance["steps"] == 2
    assert info.provenance["loss_network"]["pretrained"] is False
    assert info.provenance["loss_network"]["seed"] == 0
    assert info.provenance["data"] == {"paintings": 6, "foregrounds": 3}
    # The user is warned about the stand-in and told how to use the result.
    text = flat(result.stderr)
    assert "random-weightlossnetwork" in text
    assert "6paintings,3foregrounds" in text
    assert flat(f"dkt harmonize COMPOSITE --mask MASK -o OUT --model {output}") in text
    # ... and the checkpoint really loads for harmonizing.
    with TorchBackend.load(output, device="cpu") as engine:
        assert engine.working_size == 32
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_missing_loss_network_file_is_a_usage_error(data: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.safetensors"
    missing = tmp_path / "missing.pth"
    result = runner.invoke(app, _train_args(data, output, str(missing)))
    assert result.exit_code == 2, result.output
    assert flat(f"{missing}: no such file") in flat(result.stderr)
    assert "Traceback" not in result.output
    assert not output.exists()


def test_missing_paintings_folder_is_a_usage_error(data: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.safetensors"
    args = _train_args(data, output, "random:0")
    args[args.index("--paintings") + 1] = str(tmp_path / "nope")
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert flat(f"{tmp_path / 'nope'}: paintings folder not found") in flat(result.stderr)
    assert not output.exists()


def test_size_not_a_multiple_of_8_is_a_usage_error(data: Path, tmp_path: Path) -> None:
    """Refused up front, not as a traceback once data and loss network are loaded."""
    output = tmp_path / "out.safetensors"
    args = _train_args(data, output, "random:0")
    args[args.index("--size") + 1] = "30"
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "--size 30 must be a multiple of 8" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not output.exists()


def test_bad_random_seed_names_the_option(data: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, _train_args(data, tmp_path / "out.safetensors", "random:abc"))
    assert result.exit_code == 2, result.output
    assert "random:abc" in result.stderr or "--loss-network" in result.stderr
