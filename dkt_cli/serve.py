"""``dkt serve``: the harmonizer as a web service, with a page to use it from a browser.

The application is :mod:`dkt.serve.app` and starting it (settings, binding, the model,
uvicorn) :mod:`dkt.serve.launch`; this module parses, calls and prints. The web stack is
an optional extra, imported only when the command runs, so the rest of the command line
works without it. ``--host``, ``--port`` and ``--token`` are declared once in
:mod:`dkt_cli.options`, so they mean the same for ``dkt study serve``.
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any

import typer
from rich.markup import escape

from dkt import dktnet
from dkt.errors import DktError
from dkt.serve.launch import DEFAULT_PORT
from dkt_cli.console import err, fail
from dkt_cli.options import (
    MODEL_PANEL,
    BackendName,
    Host,
    ModelFile,
    Port,
    request_from,
    token_option,
)

_LIMITS = "Limits"


def _opt(help_: str, panel: str | None = None, *names: str, **kwargs: Any) -> Any:
    """A ``typer.Option``, help and panel first, so each alias below stays short."""
    return typer.Option(*names, help=help_, rich_help_panel=panel, **kwargs)


Device = Annotated[str, _opt("auto, cpu, cuda, cuda:N.", MODEL_PANEL)]
Size = Annotated[
    int | None,
    _opt(
        "Default working resolution (long side), at least 8 (0: the image's own); a request's "
        "`size` field overrides it. Default: the model's.",
        MODEL_PANEL,
    ),
]
Token = Annotated[
    str | None,
    token_option(
        "DKT_SERVE_TOKEN",
        "clients send it as Authorization: Bearer TOKEN to every /v1 endpoint but /v1/health "
        "(the page asks for it)",
    ),
]
MaxConcurrent = Annotated[
    int, _opt("Model runs at once. On a CPU one run already uses every core.", _LIMITS, min=1)
]
MaxQueue = Annotated[
    int, _opt("Requests waiting for a run; past these a request gets 503 at once.", _LIMITS, min=0)
]
MaxUploads = Annotated[
    int,
    _opt(
        "Uploads read at once, before a request queues for a run; when all are taken, the "
        "slowest trickling one is cut off to make room.",
        _LIMITS,
        min=1,
    ),
]
MaxUploadMb = Annotated[int, _opt("Largest request body, in MiB.", _LIMITS, min=1)]
AccessLog = Annotated[bool, _opt("Log every request to stdout.", None, "--access-log")]


def serve(
    host: Host = "127.0.0.1",
    port: Port = DEFAULT_PORT,
    model: ModelFile = dktnet.BUNDLED_MODEL,
    backend: BackendName = None,
    device: Device = "auto",
    size: Size = None,
    token: Token = None,
    max_concurrent: MaxConcurrent = 1,
    max_queue: MaxQueue = 8,
    max_uploads: MaxUploads = 32,
    max_upload_mb: MaxUploadMb = 32,
    access_log: AccessLog = False,
) -> None:
    """Serve the harmonizer over HTTP, with a web page to paste and harmonize in a browser.

    The page is at the URL printed; the API (POST /v1/harmonize) is documented at /docs.
    """
    params = dict(locals())  # first, so it holds the parameters only
    from dkt.serve.launch import ServeRequest, harmonizer_server

    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(harmonizer_server(request_from(ServeRequest, params)))
        except DktError as exc:
            fail(str(exc))
        described = server.harmonizer.describe()
        guard = "token required" if server.settings.token else "no token"
        err.print(
            f"dkt serve: {server.url} ({escape(server.harmonizer.model.name)}, "
            f"{described.get('backend')} on {described.get('device')}; {guard}); Ctrl-C stops",
            soft_wrap=True,
        )
        warn_if_open(server.warning)
        server.run()


def warn_if_open(warning: str | None) -> None:
    """The launcher's warning about a server open to the network without a token."""
    if warning:
        err.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
