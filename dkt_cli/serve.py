"""``dkt serve``: the harmonizer as a web service, with a page to use it from a browser.

Only option parsing and startup live here; the application is :mod:`dkt.serve.app`. The
web stack is an optional extra, imported only when the command runs, so the rest of the
command line works without it.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import ipaddress
import socket
from typing import Annotated

import typer
from rich.markup import escape

from dkt import dktnet
from dkt.errors import DktError
from dkt_cli.console import err, fail
from dkt_cli.options import MODEL_PANEL, BackendName, ModelFile

_MODEL = MODEL_PANEL
_LIMITS = "Limits"
WEB_EXTRA = "dkt serve needs the web extra: pip install 'dkt[serve]'"


def _check_web_stack() -> None:
    for module in ("fastapi", "uvicorn", "python_multipart"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a module set to None, or a broken install
            found = False
        if not found:
            fail(WEB_EXTRA)


def _listen(host: str, port: int) -> socket.socket:
    """Bind before the model loads: a port in use is a one-line error, not a traceback
    after seconds of loading, and the URL printed is the one really listening."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        fail(f"--host {host}: cannot resolve it ({exc.strerror})")
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    sock.listen(128)
    return sock


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


def _url(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def _log_config() -> dict[str, object]:
    """uvicorn's logging without its startup lines (the one URL line is ours); errors and
    this package's tracebacks still go to stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["uvicorn.error"]["level"] = "WARNING"
    config["loggers"]["dkt.serve"] = {"handlers": ["default"], "level": "INFO"}
    return config


def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. The default is this machine only; 0.0.0.0 opens it "
            "to the network (set --token then)."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free one).", min=0, max=65535)] = 8000,
    model: ModelFile = dktnet.BUNDLED_MODEL,
    backend: BackendName = None,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda, cuda:N.", rich_help_panel=_MODEL)
    ] = "auto",
    size: Annotated[
        int | None,
        typer.Option(
            help="Default working resolution (long side); a request's `size` field overrides "
            "it. Default: the model's.",
            min=0,
            rich_help_panel=_MODEL,
        ),
    ] = None,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="DKT_SERVE_TOKEN",
            show_envvar=True,
            help="Require this bearer token (Authorization: Bearer TOKEN) on every /v1 "
            "endpoint but /v1/health. Prefer the environment variable: a command line is "
            "visible to other users.",
        ),
    ] = None,
    max_concurrent: Annotated[
        int,
        typer.Option(
            help="Model runs at once. On a CPU one run already uses every core.",
            min=1,
            rich_help_panel=_LIMITS,
        ),
    ] = 1,
    max_queue: Annotated[
        int,
        typer.Option(
            help="Requests waiting for a run; past these a request gets 503 at once.",
            min=0,
            rich_help_panel=_LIMITS,
        ),
    ] = 8,
    max_upload_mb: Annotated[
        int,
        typer.Option(help="Largest request body, in MiB.", min=1, rich_help_panel=_LIMITS),
    ] = 32,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="Log every request to stdout.")
    ] = False,
) -> None:
    """Serve the harmonizer over HTTP, with a web page to paste and harmonize in a browser.

    The page is at the URL printed; the API (POST /v1/harmonize) is documented at /docs.
    """
    _check_web_stack()
    import uvicorn

    from dkt.api import Harmonizer
    from dkt.serve.app import ServeSettings, create_app

    token = token.strip() if token else None
    try:
        settings = ServeSettings(
            token=token or None,
            max_upload_bytes=max_upload_mb << 20,
            max_concurrent=max_concurrent,
            max_queue=max_queue,
            size=size,
        )
    except ValueError as exc:
        fail(str(exc))
    sock = _listen(host, port)
    try:
        harmonizer = Harmonizer(model, backend=backend, device=device, size=size)
    except DktError as exc:
        sock.close()
        fail(str(exc))
    try:
        app = create_app(harmonizer, settings)
        described = harmonizer.describe()
        guard = "token required" if settings.token else "no token"
        err.print(
            f"dkt serve: {_url(host, sock)} ({escape(harmonizer.model.name)}, "
            f"{described.get('backend')} on {described.get('device')}; {guard}); Ctrl-C stops",
            soft_wrap=True,
        )
        if settings.token is None and not _is_loopback(host):
            err.print(
                f"[yellow]warning:[/] listening on {escape(host)} without --token: anyone who "
                "can reach this machine can use the model",
                soft_wrap=True,
            )
        config = uvicorn.Config(app, log_config=_log_config(), access_log=access_log,
                                timeout_graceful_shutdown=10)  # fmt: skip
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        harmonizer.close()
