"""Tests for starting the servers from a script: binding first, the URL, what is released."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dkt.errors import JudgmentLogError, ListenError, OptionError, StudyError, WebStackError
from dkt.serve.launch import (
    ServeRequest,
    StudyServeRequest,
    clean_token,
    harmonizer_server,
    listen,
    open_warning,
    serve_settings,
    study_server,
    url_of,
)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port another program is listening on."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        yield taken.getsockname()[1]


def test_port_0_listens_on_a_free_port_and_the_url_names_it() -> None:
    with listen("127.0.0.1", 0) as sock:
        port = sock.getsockname()[1]
        assert port > 0 and url_of("127.0.0.1", sock) == f"http://127.0.0.1:{port}/"
        assert url_of("0.0.0.0", sock) == f"http://127.0.0.1:{port}/"  # what a browser opens
        assert url_of("::1", sock) == f"http://[::1]:{port}/"


def test_an_address_that_cannot_be_listened_on_is_one_line(taken_port: int) -> None:
    with pytest.raises(ListenError, match=f"cannot listen on 127.0.0.1:{taken_port}: "):
        listen("127.0.0.1", taken_port)
    with pytest.raises(ListenError, match=r"--host no-such-host\.invalid: cannot resolve it"):
        listen("no-such-host.invalid", 0)


def test_only_an_open_server_without_a_token_is_warned_about() -> None:
    assert open_warning("127.0.0.1", None) is None
    assert open_warning("localhost", None) is None
    assert open_warning("0.0.0.0", "secret") is None
    assert open_warning("0.0.0.0", None) == (
        "listening on 0.0.0.0 without --token: anyone who can reach this machine can use it"
    )


def test_a_pasted_token_loses_its_newline_and_a_blank_one_means_none() -> None:
    assert clean_token(" abc\n") == "abc"
    assert clean_token("  ") is None and clean_token(None) is None


def test_serve_settings_take_the_requests_limits() -> None:
    pytest.importorskip(
        "fastapi", reason="the web stack is not installed (pip install 'dkt[serve]')"
    )
    settings = serve_settings(ServeRequest(max_upload_mb=2, max_queue=0, token=" t "))
    assert settings.max_upload_bytes == 2 << 20 and settings.max_queue == 0
    assert settings.token == "t"
    with pytest.raises(OptionError, match="max_queue must be 0 or more"):
        serve_settings(ServeRequest(max_queue=-1))
    with pytest.raises(OptionError, match="size"):
        serve_settings(ServeRequest(size=3))


def test_without_the_web_stack_the_server_says_how_to_install_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if not installed
    with (
        pytest.raises(WebStackError, match=r"pip install 'dkt\[serve\]'"),
        harmonizer_server(ServeRequest(port=0)),
    ):
        pass


def test_a_port_in_use_fails_before_the_model_loads(taken_port: int) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'dkt[serve]')")
    missing = ServeRequest(port=taken_port, model=Path("missing.onnx"))
    with pytest.raises(ListenError), harmonizer_server(missing):
        pass


def test_the_harmonizer_server_releases_its_port_and_model(tiny_model: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'dkt[serve]')")
    request = ServeRequest(port=0, model=tiny_model, device="cpu", host="0.0.0.0")
    with harmonizer_server(request) as server:
        port = server.sock.getsockname()[1]
        assert server.url == f"http://127.0.0.1:{port}/"
        assert server.harmonizer.model.name == tiny_model.name
        assert server.warning is not None and "without --token" in server.warning
        assert server.settings.token is None
    assert server.sock.fileno() == -1  # closed: the port is free again
    with listen("0.0.0.0", port):
        pass


def test_a_study_server_checks_its_images_before_binding(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'dkt[serve]')")
    from tests.serve.study_data import make_study

    design, images, _ = make_study(tmp_path)
    (images / "dkt" / "k2.png").unlink()
    out = tmp_path / "judgments.csv"
    with (
        pytest.raises(StudyError, match=r"dkt/k2\.\*: no image for item 'k2'"),
        study_server(StudyServeRequest(design, images, out, port=0)),
    ):
        pass
    assert not out.exists()


def test_a_study_server_lets_go_of_its_log(tmp_path: Path, taken_port: int) -> None:
    pytest.importorskip("uvicorn", reason="uvicorn is not installed (pip install 'dkt[serve]')")
    from tests.serve.study_data import make_study

    design, images, _ = make_study(tmp_path)
    request = StudyServeRequest(design, images, tmp_path / "judgments.csv", port=0)
    with study_server(request) as server:
        assert server.study.summary()["design_trials"] == 18
        assert server.warning is None and server.url.startswith("http://127.0.0.1:")
        with pytest.raises(JudgmentLogError, match="another study server"), study_server(request):
            pass
    with (
        pytest.raises(ListenError),
        study_server(
            StudyServeRequest(design, images, tmp_path / "judgments.csv", port=taken_port)
        ),
    ):
        pass
    with study_server(request):  # neither the finished server nor the failed one holds it
        pass
