"""Tests for dkt_cli.app: the lazy root group lists every command and loads only the one used."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.testing import CliRunner

from dkt_cli.app import COMMANDS, app, fill_optional_values, load_command

runner = CliRunner()


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n")[0].split())


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_listed_summary_is_the_command_s_own_first_line(name: str) -> None:
    command = load_command(name)
    assert command.name == name
    assert _first_paragraph(command.help or "") == COMMANDS[name].summary


def test_root_help_lists_every_command_in_order() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    positions = [result.output.find(f" {name} ") for name in COMMANDS]
    assert -1 not in positions and positions == sorted(positions)


def test_a_subcommand_still_parses_and_an_unknown_one_is_named() -> None:
    assert runner.invoke(app, ["harmonize", "--help"]).exit_code == 0
    unknown = runner.invoke(app, ["harmonise"])
    assert unknown.exit_code == 2 and "harmonise" in unknown.output


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["harmonize", "--help"]])
def test_answering_help_imports_neither_torch_nor_the_training_code(args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dkt_cli", *args],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert not imported & {"torch", "training", "dkt.evaluation"}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["harmonize", "--ray"], ["harmonize", "--ray", "local"]),
        (["harmonize", "--ray", "--quiet"], ["harmonize", "--ray", "local", "--quiet"]),
        (["harmonize", "--ray", "auto", "-q"], ["harmonize", "--ray", "auto", "-q"]),
        (["harmonize", "--ray", "ray://head:10001"], ["harmonize", "--ray", "ray://head:10001"]),
        (["train", "--ray"], ["train", "--ray"]),  # only harmonize declares it
    ],
)
def test_ray_without_an_address_means_a_local_instance(
    args: list[str], expected: list[str]
) -> None:
    assert fill_optional_values(args) == expected


def test_ray_alone_reaches_the_command_as_a_local_instance(monkeypatch, tmp_path) -> None:
    """Parsed for real: ``--ray`` with no address runs on Ray with no cluster address."""
    from PIL import Image

    from dkt.errors import ClusterError

    for folder, mode, colour in (("c", "RGB", (200, 10, 10)), ("m", "L", 255)):
        (tmp_path / folder).mkdir()
        Image.new(mode, (16, 16), colour).save(tmp_path / folder / "a.png")
    seen = {}

    def fake_ray(planned, model, load, options, cluster, *args, **kwargs):
        seen["address"] = cluster.address
        raise ClusterError("stop here")

    monkeypatch.setattr("dkt.inference.run.run_on_ray", fake_ray)
    folders = ["--composites", tmp_path / "c", "--masks", tmp_path / "m", "--out", tmp_path / "o"]
    runner.invoke(app, ["harmonize", *map(str, folders), "--ray", "-q"])
    assert seen == {"address": None}
