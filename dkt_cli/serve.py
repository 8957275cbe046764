"""``dkt serve``: the harmonizer as a web service, with a page to use it from a browser.

Only option parsing and startup live here; the application is :mod:`dkt.serve.app`. The
web stack is an optional extra, imported only when the command runs, so the rest of the
command line works without it. ``dkt study serve`` takes its listening options from here,
so ``--host``, ``--port`` and ``--token`` mean the same for both servers.
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


#: ``dkt study serve`` listens on the next port, so both servers can run side by side.
DEFAULT_PORT = 8000

Host = Annotated[
    str,
    typer.Option(
        help="Address to listen on. The default is this machine only; 0.0.0.0 opens it "
        "to the network (set --token then)."
    ),
]
Port = Annotated[int, typer.Option(help="Port (0: any free one).", min=0, max=65535)]


def token_option(envvar: str, what: str) -> typer.models.OptionInfo:
    """``--token``, read from ``envvar`` by preference; ``what`` says where a client puts it."""
    return typer.Option(
        envvar=envvar,
        show_envvar=True,
        help=f"Require this token: {what}. Prefer the environment variable: a command line "
        "is visible to other users.",
    )


def listen(host: str, port: int) -> socket.socket:
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


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


def url_of(host: str, sock: socket.socket) -> str:
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


def warn_if_open(host: str, token: str | None) -> None:
    if token is None and not is_loopback(host):
        err.print(
            f"[yellow]warning:[/] listening on {escape(host)} without --token: anyone who "
            "can reach this machine can use it",
            soft_wrap=True,
        )


def serve(
    host: Host = "127.0.0.1",
    port: Port = DEFAULT_PORT,
    model: ModelFile = dktnet.BUNDLED_MODEL,
    backend: BackendName = None,
    device: Annotated[
        str, typer.Option(help="auto, cpu, cuda, cuda:N.", rich_help_panel=_MODEL)
    ] = "auto",
    size: Annotated[
        int | None,
        typer.Option(
            help="Default working resolution (long side), at least 8 (0: the image's own); a "
            "request's `size` field overrides it. Default: the model's.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    token: Annotated[
        str | None,
        token_option(
            "DKT_SERVE_TOKEN",
            "clients send it as Authorization: Bearer TOKEN to every /v1 endpoint but "
            "/v1/health (the page asks for it)",
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
    max_uploads: Annotated[
        int,
        typer.Option(
            help="Uploads read at once, before a request queues for a run; when all are "
            "taken, the slowest trickling one is cut off to make room.",
            min=1,
            rich_help_panel=_LIMITS,
        ),
    ] = 32,
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
            max_uploads=max_uploads,
            size=size,
        )
    except ValueError as exc:
        fail(str(exc))
    sock = listen(host, port)
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
            f"dkt serve: {url_of(host, sock)} ({escape(harmonizer.model.name)}, "
            f"{described.get('backend')} on {described.get('device')}; {guard}); Ctrl-C stops",
            soft_wrap=True,
        )
        warn_if_open(host, settings.token)
        config = uvicorn.Config(app, log_config=_log_config(), access_log=access_log,
                                timeout_graceful_shutdown=10)  # fmt: skip
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        harmonizer.close()
