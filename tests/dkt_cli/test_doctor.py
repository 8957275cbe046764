"""``dkt --version`` and ``dkt doctor``: the environment report on the command line.

The weight variables are cleared and the cache pointed at the test's own empty folder, so
what the machine happens to hold never decides a result.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dkt import dktnet, doctor
from dkt._version import __version__
from dkt_cli.app import app

runner = CliRunner()

_VARIABLES = ("DKT_WEIGHTS_DIR", "DKT_VGG19_WEIGHTS", "DKT_INCEPTION_WEIGHTS")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No weight variables, an empty cache, no shared folder: returns the cache folder."""
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(doctor, "SHARED_WEIGHTS", tmp_path / "no-shared")
    return tmp_path / "cache" / "dkt"


def _squashed(text: str) -> str:
    """Text without whitespace: a long path folds across lines at 80 columns."""
    return re.sub(r"\s+", "", text)


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["doctor", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # the whole of stdout: nothing else may be printed there


def test_version_prints_the_release_and_exits_0() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "dkt 0.1.0\n"
    assert __version__ == "0.1.0"  # if the release moves, this test and the line above move


def test_version_wins_over_a_command() -> None:
    """Eager: it answers before the command runs (or is asked for)."""
    result = runner.invoke(app, ["--version", "info", "/no/such/model.safetensors"])
    assert result.exit_code == 0, result.output
    assert result.stdout == f"dkt {__version__}\n"


def test_json_has_the_bundled_models_real_sha256() -> None:
    data = _json()
    model = data["bundled_model"]
    assert model["path"] == str(dktnet.BUNDLED_MODEL)
    assert model["sha256"] == hashlib.sha256(dktnet.BUNDLED_MODEL.read_bytes()).hexdigest()
    assert model["size"] == dktnet.BUNDLED_MODEL.stat().st_size
    assert data["versions"]["dkt"] == __version__
    assert data["versions"]["python"] == "{}.{}.{}".format(*sys.version_info[:3])


def test_json_reports_a_missing_optional_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    data = _json()
    assert data["versions"]["tensorrt"] == "not installed"
    assert data["versions"]["onnxruntime"] == "not installed"
    assert data["onnxruntime_providers"] == "not installed"
    assert data["versions"]["torch"] != "not installed"


def test_weights_found_through_a_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "mine" / "pt_inception.pth"
    weights.parent.mkdir()
    weights.write_bytes(b"stand-in weights")
    monkeypatch.setenv("DKT_INCEPTION_WEIGHTS", str(weights))
    data = _json()
    assert data["weights"]["inception"]["path"] == str(weights)
    assert data["weights"]["inception"]["source"] == "$DKT_INCEPTION_WEIGHTS"
    assert data["weights"]["vgg19"]["path"] == "not found"


def test_human_output_has_every_section(clean_env: Path) -> None:
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # human output goes to stderr, as for `dkt info`
    text = result.stderr
    for title in ("versions", "cuda", "cpu", "weights", "bundled model"):
        assert re.search(rf"^{title}\s*$", text, re.MULTILINE), (title, text)
    for label in ("python", "torch", "numpy", "onnx", "onnxruntime", "onnxscript", "tensorrt",
                  "onnxruntime providers", "devices", "torch threads", "vgg_relu3_1",
                  "inverter_relu3_1", "vgg19", "inception", "sha256"):  # fmt: skip
        assert re.search(rf"^  {label}\s", text, re.MULTILINE), (label, text)
    assert "not found" in text and "looked in:" in text
    assert str(clean_env) in _squashed(text)  # where it looked
    sha = hashlib.sha256(dktnet.BUNDLED_MODEL.read_bytes()).hexdigest()
    assert sha in text


def test_human_output_shows_a_found_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    monkeypatch.setenv("DKT_VGG19_WEIGHTS", str(weights))
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert _squashed(f"{weights} (from $DKT_VGG19_WEIGHTS)") in _squashed(result.stderr)


@pytest.mark.parametrize("content", [None, b"version https://git-lfs.github.com/spec/v1\n"])
@pytest.mark.parametrize("json_output", [False, True])
def test_a_missing_or_unreadable_bundled_model_exits_1_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes | None, json_output: bool
) -> None:
    path = tmp_path / "dktnet-relu3.safetensors"
    if content is not None:
        path.write_bytes(content)
    monkeypatch.setattr(dktnet, "BUNDLED_MODEL", path)
    result = runner.invoke(app, ["doctor", *(["--json"] if json_output else [])])
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: bundled model") and str(path) in last, result.stderr
    assert "Traceback" not in result.output
    if json_output:  # the report still comes, for the issue the user is about to open
        assert json.loads(result.stdout)["bundled_model"]["path"] == str(path)
