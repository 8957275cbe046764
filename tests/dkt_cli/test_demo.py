"""``dkt demo``: a fresh install shows the tool working, with no data of its own."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dkt.imaging.imageio import read_image
from dkt_cli.app import app

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()


def test_demo_writes_a_figure_and_reports_the_result(tmp_path: Path, tiny_model: Path) -> None:
    out = tmp_path / "figs" / "out.png"
    result = runner.invoke(
        app, ["demo", "-o", str(out), "--model", str(tiny_model), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    figure = read_image(out)
    assert figure.shape[1] == 3 * 512 + 4 * 8  # composite | mask | result, 8 px gaps
    assert figure.shape[0] >= 384 + 2 * 8
    text = " ".join(result.stderr.split())
    match = re.search(r"colour distance: (\d+\.\d{3}) -> (\d+\.\d{3})", text)
    assert match, text
    assert float(match[1]) > 0.2  # the generated object clearly does not belong
    assert "painting outside the object unchanged: yes" in text
    assert "wrote" in text and "".join(str(out).split()) in "".join(text.split())
    assert str(tiny_model.name) in "".join(text.split())


def test_demo_with_a_missing_model_is_a_usage_error(tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    missing = tmp_path / "missing.safetensors"
    result = runner.invoke(app, ["demo", "-o", str(out), "--model", str(missing)])
    assert result.exit_code == 2
    assert "".join(f"{missing}: no such file".split()) in "".join(result.stderr.split())
    assert not out.exists()
