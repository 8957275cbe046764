"""``dkt info``: what a model file is, without running it."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dkt.dktnet.checkpoint import load_checkpoint
from dkt_cli.app import app

runner = CliRunner()


def test_info_shows_parameters_hash_and_provenance(tiny_model: Path, tiny_provenance) -> None:
    result = runner.invoke(app, ["info", str(tiny_model)])
    assert result.exit_code == 0, result.output
    text = result.stderr
    parameters = load_checkpoint(tiny_model).parameter_count()
    assert re.search(rf"parameters\s+│?\s*{parameters:,}\b", text), text
    sha = hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    assert sha[:32] in text  # the table may fold the rest onto the next line
    assert "config.working_size" in text and "64" in text
    assert "trained.note" in text and str(tiny_provenance["note"]) in text
    assert result.stdout == ""


def test_info_json_has_the_full_sha256_and_provenance(tiny_model: Path, tiny_provenance) -> None:
    result = runner.invoke(app, ["info", str(tiny_model), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert re.fullmatch(r"[0-9a-f]{64}", data["sha256"])
    assert data["sha256"] == hashlib.sha256(tiny_model.read_bytes()).hexdigest()
    assert data["parameters"] == load_checkpoint(tiny_model).parameter_count()
    assert data["file_size"] == tiny_model.stat().st_size
    assert data["provenance"] == tiny_provenance
    assert data["config"]["working_size"] == 64
    assert data["config"]["lite_channels"] == [4, 8, 8, 16]
    assert data["path"] == str(tiny_model)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("vgg_normalised.pth", b"\x80\x02pickle data", "pickle-based .pth/.pt files are never"),
        ("notes.safetensors", b"hello world, not a model", "not a safetensors checkpoint"),
        ("absent.safetensors", None, "no such file"),
    ],
)
def test_info_refuses_a_non_checkpoint_in_one_line(
    tmp_path: Path, name: str, content: bytes | None, reason: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert str(path) in lines[0] and reason in lines[0]
    assert "Traceback" not in result.output


def test_info_names_the_loss_networks_taps(tmp_path: Path) -> None:
    """A model trained on a truncated VGG-19 says relu3_1 is its deepest tap, on one row."""
    from dkt.dktnet.checkpoint import save_checkpoint
    from dkt.dktnet.model import DKTNet
    from tests.tiny import tiny_config

    lossnet = {"kind": "vgg19", "pretrained": True, "file": "vgg_normalised_conv3_1.pth",
               "taps": ["relu1_1", "relu2_1", "relu3_1"]}  # fmt: skip
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, DKTNet(tiny_config()), provenance={"loss_network": lossnet, "steps": 1})
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.replace("│", " ").split())  # the table may fold the row
    assert "loss network taps relu1_1, relu2_1, relu3_1 (vgg19 pretrained" in text
    assert "relu4_1" not in text


def test_info_names_the_network_of_each_tap(tmp_path: Path) -> None:
    """Exact VGG-19 to relu3_1 plus the distilled relu4_1/relu5_1: each run of taps with its
    own network, the distilled one as an approximation (provenance as load_loss_network
    records it, on self-made weight files)."""
    from safetensors.torch import save_file

    from dkt.dktnet.checkpoint import save_checkpoint
    from dkt.dktnet.encoders import VGG19Encoder
    from dkt.dktnet.model import DKTNet
    from tests.cd16x_files import write_cd16x_encoder
    from tests.tiny import tiny_config
    from training.lossnet import load_loss_network

    exact = tmp_path / "vgg_normalised_conv3_1.safetensors"
    state = VGG19Encoder(depth="relu3_1").state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(exact))
    deep = write_cd16x_encoder(tmp_path / "cd16x_encoder_relu5_1.pth", depth="relu5_1")
    lossnet = load_loss_network(str(exact), deep=str(deep)).provenance
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, DKTNet(tiny_config()), provenance={"loss_network": lossnet, "steps": 1})
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.replace("│", " ").split())  # the table may fold the row
    assert (
        "loss network taps relu1_1, relu2_1, relu3_1 (vgg19 pretrained, "
        "vgg_normalised_conv3_1.safetensors); relu4_1, relu5_1 (distilled-vgg19-cd16x "
        "approximation, cd16x_encoder_relu5_1.pth)" in text
    ), text


def test_old_provenance_prints_as_before() -> None:
    from dkt_cli.info import loss_network_line

    old = {"kind": "vgg19", "pretrained": True, "file": "vgg_normalised_conv3_1.pth",
           "taps": ["relu1_1", "relu2_1", "relu3_1"]}  # fmt: skip
    assert loss_network_line({"loss_network": old}) == (
        "taps relu1_1, relu2_1, relu3_1 (vgg19 pretrained, vgg_normalised_conv3_1.pth)"
    )
    random = {"kind": "random-vgg19", "pretrained": False, "taps": ["relu1_1", "relu4_1"]}
    assert loss_network_line({"loss_network": random}) == (
        "taps relu1_1, relu4_1 (random-vgg19 NOT pretrained (random weights))"
    )
    unknown = "taps (not recorded) (? NOT pretrained (random weights))"
    assert loss_network_line({"loss_network": {}}) == unknown
    assert loss_network_line({}) is None
