"""Starting the two servers: settings, binding, the address really listened on, uvicorn.

The port is bound before anything slow loads (the model, the study's image table), so a
port in use is a one-line error at once and the URL shown is the one really listening.
:func:`harmonizer_server` and :func:`study_server` hold everything a running server owns
(the socket, the model or the judgments log) and give it back when their block ends; the
command line only prints what they found and calls :meth:`Listening.run`.

Nothing heavy is imported at module level: the command line reads :data:`DEFAULT_PORT`
from here while answering ``--help``, which must not load torch or the web stack.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import importlib.util
import ipaddress
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dkt import dktnet
from dkt.errors import DktError, ListenError, OptionError, WebStackError

if TYPE_CHECKING:
    from dkt.api import Harmonizer
    from dkt.serve.app import ServeSettings
    from dkt.serve.study import Study

#: ``dkt serve``'s port; the study server takes the next, so both can run side by side.
DEFAULT_PORT = 8000
STUDY_PORT = DEFAULT_PORT + 1
#: What ``dkt serve`` imports to run: FastAPI, uvicorn, and multipart forms for uploads.
WEB_MODULES = ("fastapi", "uvicorn", "python_multipart")
WEB_EXTRA = "dkt serve needs the web extra: pip install 'dkt[serve]'"
#: Seconds a stopping server gives open requests (a model run, an answer being saved).
_GRACEFUL_S = 10


def missing_web_module() -> str | None:
    """The first of :data:`WEB_MODULES` that is not installed, without importing any."""
    for module in WEB_MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a module set to None, or a broken install
            found = False
        if not found:
            return module
    return None


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` and listening (port 0: any free one)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ListenError(f"--host {host}: cannot resolve it ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ListenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    return sock


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host).is_loopback
    return False


def url_of(host: str, sock: socket.socket) -> str:
    """The URL to open: the bound port (real even for port 0), a wildcard host as 127.0.0.1
    (a browser cannot open 0.0.0.0), an IPv6 host in brackets."""
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def open_warning(host: str, token: str | None) -> str | None:
    """Why listening beyond this machine without a token is worth a warning, or ``None``."""
    if token is None and not is_loopback(host):
        return f"listening on {host} without --token: anyone who can reach this machine can use it"
    return None


def clean_token(token: str | None) -> str | None:
    """A token with surrounding blanks dropped (a pasted newline); blank means none."""
    return (token.strip() or None) if token else None


def log_config() -> dict[str, Any]:
    """uvicorn's logging without its startup lines (the one URL line is the command's);
    errors and this package's tracebacks still go to stderr."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["uvicorn.error"]["level"] = "WARNING"
    config["loggers"]["dkt.serve"] = {"handlers": ["default"], "level": "INFO"}
    return config


@dataclass
class Listening:
    """A server bound and ready: ``url`` is where it listens, ``warning`` a line worth
    showing before it starts (or ``None``); :meth:`run` serves until interrupted."""

    app: Any
    sock: socket.socket
    url: str
    warning: str | None
    #: uvicorn.Config's keyword arguments besides the app.
    config: dict[str, Any]

    def run(self) -> None:
        import uvicorn

        config = uvicorn.Config(self.app, timeout_graceful_shutdown=_GRACEFUL_S, **self.config)
        uvicorn.Server(config).run(sockets=[self.sock])


@dataclass(frozen=True)
class ServeRequest:
    """What ``dkt serve`` serves, where, and within which limits."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    model: Path = dktnet.BUNDLED_MODEL
    backend: str | None = None
    device: str = "auto"
    #: Default working size (long side); ``None``: the model's, 0: the image's own.
    size: int | None = None
    token: str | None = None
    max_concurrent: int = 1
    max_queue: int = 8
    max_uploads: int = 32
    max_upload_mb: int = 32
    access_log: bool = False


@dataclass
class HarmonizerServer(Listening):
    """``dkt serve`` bound, its model loaded."""

    harmonizer: Harmonizer
    settings: ServeSettings


def serve_settings(request: ServeRequest) -> ServeSettings:
    """The server's limits from a request; a value out of range is an :class:`OptionError`."""
    from dkt.serve.app import ServeSettings

    try:
        return ServeSettings(
            token=clean_token(request.token),
            max_upload_bytes=request.max_upload_mb << 20,
            max_concurrent=request.max_concurrent,
            max_queue=request.max_queue,
            max_uploads=request.max_uploads,
            size=request.size,
        )
    except DktError:
        raise
    except ValueError as exc:
        raise OptionError(str(exc)) from None


@contextlib.contextmanager
def harmonizer_server(request: ServeRequest) -> Iterator[HarmonizerServer]:
    """The harmonizer service, bound before the model loads; socket and model are released
    when the block ends, however it ends."""
    if missing_web_module() is not None:
        raise WebStackError(WEB_EXTRA)
    from dkt.api import Harmonizer
    from dkt.serve.app import create_app

    settings = serve_settings(request)
    sock = listen(request.host, request.port)
    try:
        harmonizer = Harmonizer(
            request.model, backend=request.backend, device=request.device, size=request.size
        )
    except BaseException:
        sock.close()
        raise
    try:
        config = {"log_config": log_config(), "access_log": request.access_log}
        yield HarmonizerServer(
            app=create_app(harmonizer, settings),
            sock=sock,
            url=url_of(request.host, sock),
            warning=open_warning(request.host, settings.token),
            config=config,
            harmonizer=harmonizer,
            settings=settings,
        )
    finally:
        sock.close()
        harmonizer.close()


@dataclass(frozen=True)
class StudyServeRequest:
    """A study design, its images and log, and where to serve it (``dkt study serve``)."""

    design: Path
    images: Path
    out: Path = Path("judgments.csv")
    host: str = "127.0.0.1"
    port: int = STUDY_PORT
    token: str | None = None
    #: Catch trials per design trial (half composite-vs-method, half repeats).
    catch_rate: float = 0.1
    seed: int = 0


@dataclass
class StudyServer(Listening):
    """``dkt study serve`` bound, its design checked against the images and its log open."""

    study: Study


@contextlib.contextmanager
def study_server(request: StudyServeRequest) -> Iterator[StudyServer]:
    """The study page, its design and images checked before binding; the socket and the
    judgments log (and its lock) are released when the block ends, however it ends."""
    try:
        importlib.import_module("uvicorn")
        from dkt.serve.study import create_study_app
    except ImportError as exc:
        raise WebStackError(
            f"dkt study serve needs the web stack ({exc.name}): pip install 'dkt[serve]'"
        ) from None
    # Stripped but kept when blank: the study refuses a blank --token rather than run open.
    token = request.token.strip() if request.token else None
    app = create_study_app(
        request.design,
        request.images,
        request.out,
        catch_rate=request.catch_rate,
        seed=request.seed,
        token=token,
    )
    study = app.state.study
    try:
        sock = listen(request.host, request.port)
    except BaseException:
        study.log.close()
        raise
    try:
        yield StudyServer(
            app=app,
            sock=sock,
            url=url_of(request.host, sock),
            warning=open_warning(request.host, token),
            config={"log_level": "warning"},
            study=study,
        )
    finally:
        sock.close()
        study.log.close()
