"""``dkt serve`` on the command line: its refusals, and the server it starts."""

from __future__ import annotations

import json
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dkt_cli.app import app
from tests.serve.conftest import running

runner = CliRunner()


def test_without_the_web_extra_it_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if not installed
    result = runner.invoke(app, ["serve"])
    assert result.exit_code == 2
    assert "dkt serve needs the web extra: pip install 'dkt[serve]'" in result.output
    assert "Traceback" not in result.output


def test_a_port_in_use_is_one_line_before_the_model_loads(tiny_model: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = runner.invoke(app, ["serve", "--port", str(port), "--model", "missing.onnx"])
    assert result.exit_code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.output


def test_a_model_that_does_not_load_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["serve", "--port", "0", "--model", str(broken)])
    assert result.exit_code == 2
    assert "broken.safetensors" in result.output and "Traceback" not in result.output


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_token_comes_from_the_environment_and_the_url_is_printed_once(
    tiny_model: Path,
) -> None:
    args = ["serve", "--model", str(tiny_model), "--device", "cpu"]
    with running(args, "/v1/health", env={"DKT_SERVE_TOKEN": "from-env"}) as (base, process):
        assert _get(base + "/v1/health") == (200, {"status": "ok"})
        status, body = _get(base + "/v1/model")
        assert status == 401 and "token" in body["error"]
        status, body = _get(base + "/v1/model", token="from-env")
        assert status == 200 and body["name"] == tiny_model.name
    output = process.stdout.read()
    assert output.count(base) == 1, output
    assert "token required" in output
