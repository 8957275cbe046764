"""The harmonizer over HTTP: ``POST /v1/harmonize``, model information and the web page.

One model, loaded once by the caller, serves every request. A server is reachable by
others, so it is safe by default: a bearer token when one is set, an upload limit enforced
while the body arrives, the pixel limit checked from each image's header before it is
decoded, a bounded number of model runs and of requests waiting for one (beyond that a
request is refused at once with 503, instead of piling up memory), and no request ever
touches the filesystem: uploads are decoded from memory and results encoded into it. Every
refusal is a 4xx with a one-line JSON ``{"error": ...}`` naming the field at fault, and a
failure inside one request is a 500 for that request alone.

A client costs a place in the model's queue only once its whole upload has arrived: bodies
still arriving are bounded apart (``max_uploads``), and when those are all taken the slowest
one trickling below ``slow_upload_bytes_per_s`` is cut off to make room, so a handful of
sockets sending a byte now and then can lock no one out. A client that goes away gives up
its place at once and its request stops at the next stage (the model never runs for it);
once a burst is over, the memory its runs kept is handed back to the system.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import math
import mimetypes
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal, TypeVar

import anyio
import numpy as np
from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from backends.allocator import release_freed_memory
from dkt._version import __version__
from dkt.api import Harmonizer
from dkt.dktnet.checkpoint import file_sha256
from dkt.errors import (
    EmptyBackgroundError,
    ImageInputError,
    ImageTooLargeError,
    InputError,
    OptionError,
    PasteError,
    RequestError,
    ScaledTooLargeError,
    UploadError,
    WorkingMemoryError,
)
from dkt.imaging.imageio import (
    encode_image,
    read_alpha_composite_bytes,
    read_image_bytes,
    read_mask_bytes,
    read_metadata_bytes,
)
from dkt.imaging.metadata import ImageMeta
from dkt.inference.options import check_size
from dkt.inference.paste import cutout_from_bytes, paste
from dkt.limits import DEFAULT_MAX_PIXELS
from dkt.serve.uploads import Part, check_length, read_form

log = logging.getLogger("dkt.serve")

T = TypeVar("T")

#: Output formats by the ``format`` field: Pillow's name and the media type.
FORMATS: dict[str, tuple[str, str]] = {
    "png": ("PNG", "image/png"),
    "jpeg": ("JPEG", "image/jpeg"),
    "jpg": ("JPEG", "image/jpeg"),
    "webp": ("WEBP", "image/webp"),
}
_FILES = ("composite", "mask", "painting", "cutout")
_OPTIONS = ("x", "y", "scale", "size", "strength", "format")


@dataclass(frozen=True)
class ServeSettings:
    """What one server allows; every limit bounds what a client can make it spend.

    ``max_upload_bytes`` bounds a request body; ``max_pixels`` each image (from its header,
    before decoding). ``max_concurrent`` model runs at once (1 on a CPU: one run already
    uses every core) and ``max_queue`` admitted requests waiting for one: together they cap
    the memory requests hold, and a request past them gets 503 at once. ``size`` is the
    default working size (``None``: the harmonizer's); a request may make the network run
    at up to ``max_size``. An upload must arrive within ``upload_timeout_s``.

    Uploads are read before a request takes a place in the queue: ``max_uploads`` bodies
    at once (a few bytes each until they arrive, up to ``max_upload_bytes``); when they are
    all taken, the slowest one that has averaged under ``slow_upload_bytes_per_s`` for a
    second or more is cut off (408) to make room, else the newcomer gets 503.
    ``idle_release_s`` after the last request ends, the memory runs kept for reuse is
    handed back. ``token``: when set, every ``/v1`` endpoint but health needs it.
    """

    token: str | None = None
    max_upload_bytes: int = 32 << 20
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_concurrent: int = 1
    max_queue: int = 8
    size: int | None = None
    max_size: int = 4096
    upload_timeout_s: float = 60.0
    max_uploads: int = 32
    slow_upload_bytes_per_s: int = 16 << 10
    idle_release_s: float = 2.0

    def __post_init__(self) -> None:
        for name in ("max_upload_bytes", "max_pixels", "max_concurrent", "max_size",
                     "max_uploads"):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not self.upload_timeout_s > 0:
            raise ValueError(f"upload_timeout_s must be above 0, got {self.upload_timeout_s}")
        if self.slow_upload_bytes_per_s < 0 or self.idle_release_s < 0:
            raise ValueError("slow_upload_bytes_per_s and idle_release_s must be 0 or more")
        if self.max_queue < 0:
            raise ValueError(f"max_queue must be 0 or more, got {self.max_queue}")
        if self.token is not None and not self.token.strip():
            raise ValueError("token must not be empty (None: no token)")
        check_size(self.size)  # an OptionError, a ValueError
        if self.size is not None and self.size > self.max_size:
            raise ValueError(f"size {self.size} is over max_size {self.max_size}")


class ErrorBody(BaseModel):
    """Every refusal's body: one line naming the field at fault and what is wrong."""

    error: str


class Options(BaseModel):
    """The text fields of a harmonize request, validated as FastAPI validates a form."""

    model_config = ConfigDict(extra="forbid")

    x: int | None = None
    y: int | None = None
    scale: float = Field(1.0, gt=0, allow_inf_nan=False)
    size: int | None = Field(None, ge=0)
    #: The style strength (:mod:`dkt.dktnet.strength`); ``None``: the harmonizer's own.
    strength: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)
    format: Literal["png", "jpeg", "jpg", "webp"] = "png"


class _Gate:
    """Admission to the model: ``running`` runs at once, ``waiting`` more admitted to wait.

    The counters live on the event loop's thread, so they need no lock; the semaphore is
    made on the loop that first uses it (a test client may start a fresh loop). When the
    last admitted request ends and none comes for ``idle_release_s``, the memory the runs
    kept for reuse goes back to the system.
    """

    def __init__(self, running: int, waiting: int, idle_release_s: float = 2.0) -> None:
        self.running, self.waiting = running, waiting
        self.admitted = 0
        self.seconds_per_run = 1.0  # a running estimate, for Retry-After
        self.idle_release_s = idle_release_s
        self._admissions = 0  # tells an idle moment from a later one
        self._semaphore: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @contextlib.contextmanager
    def ticket(self) -> Iterator[None]:
        """Hold a place from arrival to reply, or refuse with 503 when all are taken."""
        if self.admitted >= self.running + self.waiting:
            wait = self.seconds_per_run * (self.waiting + 1) / self.running
            raise RequestError(
                503,
                f"server busy: {self.running} run(s) going and {self.waiting} waiting; "
                "try again shortly",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        self.admitted += 1
        self._admissions += 1
        try:
            yield
        finally:
            self.admitted -= 1
            if self.admitted == 0:
                self._release_when_still_idle()

    def _release_when_still_idle(self) -> None:
        loop = asyncio.get_running_loop()
        admissions = self._admissions

        def release() -> None:
            if self.admitted == 0 and self._admissions == admissions:
                loop.run_in_executor(None, release_freed_memory)

        loop.call_later(self.idle_release_s, release)

    @contextlib.asynccontextmanager
    async def run_slot(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        semaphore = self._semaphore
        if self._loop is not loop or semaphore is None:
            semaphore = asyncio.Semaphore(self.running)
            self._loop, self._semaphore = loop, semaphore
        async with semaphore:
            started = time.perf_counter()
            try:
                yield
            finally:
                took = time.perf_counter() - started
                self.seconds_per_run = 0.8 * self.seconds_per_run + 0.2 * took


@dataclass(eq=False)
class _Upload:
    """One body being read: how fast it arrives, and the scope that cuts it off."""

    started: float
    scope: anyio.CancelScope
    received: int = 0

    def add(self, size: int) -> None:
        self.received += size

    def rate(self, now: float) -> float:
        return self.received / max(now - self.started, 1e-9)


class _Uploads:
    """Bodies being read, bounded apart from the model's queue.

    A request takes a place in the queue only with its body read, so clients trickling
    their uploads hold one of these instead; and when all are held, the slowest upload
    that has had ``grace_s`` to show its pace and stays under ``slow_bytes_per_s`` is cut
    off for the newcomer, so reconnecting trickles cannot keep a normal client out.
    """

    grace_s = 1.0

    def __init__(self, limit: int, slow_bytes_per_s: float) -> None:
        self.limit, self.slow_bytes_per_s = limit, slow_bytes_per_s
        self.active: set[_Upload] = set()

    @contextlib.contextmanager
    def slot(self) -> Iterator[_Upload]:
        """A place to read a body in, or 503 when all are held by uploads going well."""
        if len(self.active) >= self.limit:
            self._cut_off_slowest()
        upload = _Upload(time.monotonic(), anyio.CancelScope())
        self.active.add(upload)
        try:
            yield upload
        finally:
            self.active.discard(upload)

    def _cut_off_slowest(self) -> None:
        now = time.monotonic()
        slow = [
            u for u in self.active
            if now - u.started >= self.grace_s and u.rate(now) < self.slow_bytes_per_s
        ]  # fmt: skip
        if not slow:
            raise RequestError(
                503, f"server busy: {self.limit} uploads arriving; try again shortly",
                {"Retry-After": "1"},
            )  # fmt: skip
        victim = min(slow, key=lambda u: u.rate(now))
        self.active.discard(victim)
        victim.scope.cancel()


@dataclass
class _Inputs:
    """A request's composite and mask, ready for the model, and which fields made them."""

    composite: np.ndarray
    mask: np.ndarray
    mode: str
    mask_field: str
    meta: ImageMeta | None = None  # the background's profile, DPI, EXIF: the result keeps them


def create_app(harmonizer: Harmonizer, settings: ServeSettings | None = None) -> FastAPI:
    """The web application serving ``harmonizer`` (loaded by the caller, kept open)."""
    settings = settings or ServeSettings()
    described = harmonizer.describe()
    own_size = harmonizer.size if harmonizer.size is not None else harmonizer.backend.working_size
    # The file's name and hash say which weights these are; its path would tell every
    # client how the server's disks are laid out.
    model_info = {
        "name": harmonizer.model.name,
        "sha256": described.get("model_sha256") or file_sha256(harmonizer.model),
        "backend": described.get("backend", harmonizer.backend.name),
        "device": described.get("device"),
        "precision": described.get("precision"),
        "working_size": settings.size if settings.size is not None else own_size,
        # Whether the page may offer a strength slider: an old export runs at 1 only.
        "strength": {
            "default": harmonizer.strength,
            "adjustable": harmonizer.backend.strength_refusal is None,
            "note": harmonizer.backend.strength_refusal,
        },
        "limits": {
            "max_upload_bytes": settings.max_upload_bytes,
            "max_pixels": settings.max_pixels,
            "max_concurrent": settings.max_concurrent,
            "max_queue": settings.max_queue,
            "max_uploads": settings.max_uploads,
            "max_size": settings.max_size,
        },
        "dkt": __version__,
    }
    gate = _Gate(settings.max_concurrent, settings.max_queue, settings.idle_release_s)
    uploads = _Uploads(settings.max_uploads, settings.slow_upload_bytes_per_s)
    static = _static_files()
    bearer = HTTPBearer(auto_error=False, description="The server's --token.")

    def authorized(
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
    ) -> None:
        if settings.token is None:
            return
        challenge = {"WWW-Authenticate": "Bearer"}
        if credentials is None:
            raise RequestError(
                401, "authorization: this server needs its token (Authorization: Bearer ...)",
                challenge,
            )  # fmt: skip
        if not hmac.compare_digest(credentials.credentials.encode(), settings.token.encode()):
            raise RequestError(401, "authorization: wrong token", challenge)

    app = FastAPI(
        title="dkt serve",
        version=__version__,
        description="Painterly image harmonization: restyle an object pasted into a painting "
        "so it matches the painting, leaving every painting pixel as it was.",
    )
    app.state.harmonizer, app.state.settings, app.state.gate = harmonizer, settings, gate
    app.state.uploads = uploads
    _install_error_handlers(app)

    @app.get("/v1/health", tags=["server"])
    def health() -> dict[str, str]:
        """Open even with a token, so a load balancer or a test can poll it."""
        return {"status": "ok"}

    @app.get("/v1/model", tags=["server"], dependencies=[Security(authorized)])
    def model() -> dict[str, Any]:
        """The model being served (its file's sha256 names the weights) and the limits."""
        return model_info

    @app.post(
        "/v1/harmonize",
        tags=["harmonize"],
        dependencies=[Security(authorized)],
        response_class=Response,
        responses=_RESPONSES,
        openapi_extra={"requestBody": _REQUEST_BODY},
    )
    async def harmonize(request: Request) -> Response:
        """Harmonize a composite and its mask, a cut-out pasted on a painting, or an RGBA
        composite whose alpha is its mask."""
        started = time.perf_counter()
        try:
            check_length(request, settings.max_upload_bytes)  # no use reading for a 413
            with uploads.slot() as upload:
                form = await _read_in_time(request, settings, upload)
            read = time.perf_counter()
            options = _options(form)
            strength = _strength(options, harmonizer)
            fmt, media = FORMATS[options.format]
            with gate.ticket():
                async with _given_up_if_gone(request) as gone:
                    inputs = await _in_thread(_decode, form, options, settings)
                    del form  # the uploaded bytes, no longer needed while queueing
                    size = _working_size(options, settings, inputs, own_size)
                    decoded = time.perf_counter()
                    async with gate.run_slot():
                        queued = time.perf_counter()
                        result = await _in_thread(_run, harmonizer, inputs, size, strength)
                        ran = time.perf_counter()
                    body = await _in_thread(lambda: encode_image(result, fmt, meta=inputs.meta))
            if gone.cancelled_caught:
                log.info("POST /v1/harmonize: the client went away; its request stopped")
                return Response(status_code=499)  # nobody reads it: the connection is gone
        except (RequestError, UploadError, RequestValidationError):
            raise
        except Exception as exc:  # a bug or a backend failure: this request's alone
            log.exception("POST /v1/harmonize failed")
            raise RequestError(500, _internal(exc)) from None
        done = time.perf_counter()
        headers = {
            "X-DKT-Backend": str(model_info["backend"]),
            "X-DKT-Device": str(model_info["device"]),
            "X-DKT-Mode": inputs.mode,
            "X-DKT-Strength": f"{strength:g}",
            "X-DKT-Seconds-Read": f"{read - started:.4f}",
            "X-DKT-Seconds-Decode": f"{decoded - read:.4f}",
            "X-DKT-Seconds-Queue": f"{queued - decoded:.4f}",
            "X-DKT-Seconds-Model": f"{ran - queued:.4f}",
            "X-DKT-Seconds-Encode": f"{done - ran:.4f}",
            "X-DKT-Seconds-Total": f"{done - started:.4f}",
            "Content-Disposition": f'inline; filename="harmonized.{options.format}"',
            "Cache-Control": "no-store",
        }
        return Response(body, media_type=media, headers=headers)

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return _static_response(static, "index.html")

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        return _static_response(static, name)

    return app


# --------------------------------------------------------------------------- requests


async def _read_in_time(
    request: Request, settings: ServeSettings, upload: _Upload
) -> dict[str, Part]:
    """The form, read within ``upload_timeout_s`` (and cut off sooner when it trickles in
    while others wait for a place to upload): a client trickling its upload would otherwise
    hold a place for as long as it likes."""
    try:
        with upload.scope, anyio.fail_after(settings.upload_timeout_s):
            return await read_form(request, settings.max_upload_bytes, upload.add)
    except TimeoutError:
        raise RequestError(
            408, f"body: the upload took longer than {settings.upload_timeout_s:g} s"
        ) from None
    rate = upload.rate(time.monotonic())
    raise RequestError(
        408, f"body: the upload arrived too slowly ({rate:.0f} bytes/s) while other uploads "
        "waited for a place",
    )  # fmt: skip


@contextlib.asynccontextmanager
async def _given_up_if_gone(request: Request) -> AsyncIterator[anyio.CancelScope]:
    """Stop the block at its next await once the client has closed its connection (the
    scope yielded then says ``cancelled_caught``): waiting for the model gives up the place
    at once; decoding or a run already under way in a thread ends first (it cannot be
    interrupted), and what follows it does not run."""
    scope = anyio.CancelScope()

    async def watch() -> None:
        # With the body read, the server's next message for this request is its end.
        while (await request.receive())["type"] != "http.disconnect":
            pass
        scope.cancel()

    watcher = asyncio.create_task(watch())
    try:
        with scope:
            yield scope
    finally:
        watcher.cancel()


def _options(form: dict[str, Part]) -> Options:
    unknown = sorted(set(form) - set(_FILES) - set(_OPTIONS))
    if unknown:
        raise RequestError(
            422, f"{unknown[0]}: unknown field (the fields are {', '.join(_FILES + _OPTIONS)})"
        )
    values = {name: form[name].text() for name in _OPTIONS if name in form}
    values = {name: value for name, value in values.items() if value != ""}
    if "format" in values:
        values["format"] = values["format"].lower()
    try:
        options = Options.model_validate(values)  # the strings, coerced as a form's are
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from None
    try:  # the same check, and words, as dkt.Harmonizer and dkt harmonize
        check_size(options.size)
    except OptionError as exc:
        raise RequestError(422, str(exc)) from None
    return options


def _working_size(
    options: Options, settings: ServeSettings, inputs: _Inputs, default: int | None
) -> int | None:
    """The request's working size; refused when the network would run above ``max_size``
    (0, the image's own, on a large image: minutes of CPU for one request)."""
    size = settings.size if options.size is None else options.size
    long_side = max(inputs.mask.shape)
    wanted = default if size is None else size
    runs_at = long_side if not wanted else min(wanted, long_side)
    if runs_at > settings.max_size:
        asked = "0 (the image's own)" if size == 0 else str(size)
        raise RequestError(
            413, f"size: {asked} runs the network at {runs_at} px on this {long_side} px image, "
            f"over this server's largest working size, {settings.max_size}",
        )  # fmt: skip
    return size


def _strength(options: Options, harmonizer: Harmonizer) -> float:
    """The request's style strength; refused before decoding when the served model runs at
    strength 1 only (an export made before strength existed)."""
    strength = harmonizer.strength if options.strength is None else options.strength
    refusal = harmonizer.backend.strength_refusal
    if strength != 1.0 and refusal is not None:
        raise RequestError(422, f"strength: {strength:g}: {refusal}")
    return strength


def _mode(form: dict[str, Part], options: Options) -> str:
    """Which of the three ways of sending the inputs this request uses; refuse mixtures."""
    # A form's file input left empty still sends its field, with no file name and no bytes.
    given = {name for name in _FILES if name in form and (form[name].data or form[name].filename)}
    pasting = given & {"painting", "cutout"}
    compositing = given & {"composite", "mask"}
    if pasting and compositing:
        raise RequestError(
            422, f"{sorted(compositing)[0]}: give composite (+ mask) or painting + cutout, "
            "not both",
        )  # fmt: skip
    if pasting:
        missing = {"painting", "cutout"} - pasting
        if missing:
            other = (pasting - missing).pop()
            raise RequestError(422, f"{missing.pop()}: missing ({other} goes with it)")
        if (options.x is None) != (options.y is None):
            raise RequestError(422, "x, y: give both, or neither to centre the object")
        return "painting+cutout"
    scaled = "scale" in form and bool(form["scale"].data)
    if options.x is not None or options.y is not None or scaled:
        field = "x" if options.x is not None else "y" if options.y is not None else "scale"
        raise RequestError(422, f"{field}: goes with painting and cutout")
    if "composite" not in compositing:
        if "mask" in compositing:
            raise RequestError(422, "composite: missing (the mask goes with a composite)")
        raise RequestError(
            422, "composite: missing: send composite and mask, painting and cutout, or an "
            "RGBA composite whose alpha is the mask",
        )  # fmt: skip
    return "composite+mask" if "mask" in compositing else "composite-alpha"


def _decode(form: dict[str, Part], options: Options, settings: ServeSettings) -> _Inputs:
    """The uploads as arrays (worker thread): decoded from memory, never from a file."""
    mode = _mode(form, options)
    limit = settings.max_pixels
    try:
        if mode == "composite+mask":
            composite = read_image_bytes(bytes(form["composite"].data), "composite",
                                         max_pixels=limit)  # fmt: skip
            mask = read_mask_bytes(bytes(form["mask"].data), "mask",
                                   expected_hw=composite.shape[:2], max_pixels=limit)  # fmt: skip
            meta = read_metadata_bytes(form["composite"].data)
            return _Inputs(composite, mask, mode, "mask", meta)
        if mode == "composite-alpha":
            composite, mask = read_alpha_composite_bytes(
                bytes(form["composite"].data), "composite", max_pixels=limit,
                hint="; send a mask with it, or a composite whose alpha marks the object",
            )  # fmt: skip
            return _Inputs(composite, mask, mode, "composite",
                           read_metadata_bytes(form["composite"].data))  # fmt: skip
        painting = read_image_bytes(bytes(form["painting"].data), "painting", max_pixels=limit)
        cutout = cutout_from_bytes(bytes(form["cutout"].data), "cutout", max_pixels=limit)
        _check_scale(options.scale, cutout.shape[:2])
        # _mode refused x without y and y without x
        at = None if options.x is None or options.y is None else (options.x, options.y)
        composite, mask = paste(painting, cutout, at, options.scale, max_pixels=limit)
        return _Inputs(composite, mask, mode, "cutout", read_metadata_bytes(form["painting"].data))
    except ImageTooLargeError as exc:
        raise RequestError(413, f"{exc} (too many pixels)") from None
    except ImageInputError as exc:
        raise RequestError(400, str(exc)) from None
    except ScaledTooLargeError as exc:
        raise RequestError(413, _paste_field(str(exc))) from None
    except PasteError as exc:
        raise RequestError(400, _paste_field(str(exc))) from None


def _check_scale(scale: float, cutout_hw: tuple[int, ...]) -> None:
    """Refuse a scale whose scaled cut-out has no size a computer can count (``1e308``
    times any side is infinite) the way one over the pixel limit is refused; smaller ones
    the paste itself measures against the limit."""
    height, width = cutout_hw
    if not math.isfinite(height * scale * width * scale):
        raise RequestError(
            413, f"scale: {scale:g} makes the {width}x{height} cut-out larger than any "
            "image can be (too many pixels)",
        )  # fmt: skip


def _paste_field(message: str) -> str:
    """Name the field a placement error is about."""
    if message.startswith("position"):
        return f"x, y: {message}"
    if message.startswith("scale"):
        return f"scale: {message}"
    return f"cutout: {message}"


def _run(harmonizer: Harmonizer, inputs: _Inputs, size: int | None, strength: float) -> np.ndarray:
    """The model on one request's inputs (worker thread); the library does every step."""
    try:
        return harmonizer(inputs.composite, inputs.mask, size=size, strength=strength)
    except (InputError, EmptyBackgroundError) as exc:
        raise RequestError(400, f"{inputs.mask_field}: {exc}") from None
    except WorkingMemoryError as exc:
        raise RequestError(503, f"size: {exc}", {"Retry-After": "10"}) from None


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Decoding, the model and encoding take seconds of CPU: never on the event loop."""
    return await run_in_threadpool(function, *args)


# --------------------------------------------------------------------------- errors


_ERROR_CODES = {
    400: "An upload that is not a usable image, mask or cut-out.",
    401: "The server has a token and the request lacks it.",
    408: "An upload that took longer than the server allows, or trickled in while others "
    "waited for a place to upload.",
    413: "An upload over the byte limit, or an image over the pixel limit.",
    415: "A body that is not multipart/form-data.",
    422: "Missing, unknown or invalid fields.",
    503: "All model runs busy and the queue full, or every place to upload taken by uploads "
    "arriving at a normal pace (see Retry-After).",
}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {media: {} for _, media in FORMATS.values()},
        "description": "The harmonized image (PNG unless `format` says otherwise).",
    },
    **{code: {"model": ErrorBody, "description": what} for code, what in _ERROR_CODES.items()},
}

#: Refusals sent before the body is read: the connection closes instead of draining it.
_UNREAD = frozenset({401, 408, 413, 503})


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": " ".join(message.split())}, status, headers=headers)


def _validation_line(errors: list[dict[str, Any]] | Any) -> str:
    """FastAPI's list of validation errors as one line, the first error named by field."""
    errors = list(errors)
    if not errors:
        return "request: invalid"
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{'.'.join(loc) or 'request'}: {first.get('msg', 'invalid')}{more}"


def _install_error_handlers(app: FastAPI) -> None:
    """Every error a client can get is ``{"error": "<one line>"}``, FastAPI's own included."""

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status in _UNREAD:
            headers["Connection"] = "close"
        return _error(exc.status, str(exc), headers)

    @app.exception_handler(UploadError)
    async def _upload_error(request: Request, exc: UploadError) -> JSONResponse:
        # The body may be left unread (413): close the connection rather than drain it.
        return _error(exc.status, str(exc), {"Connection": "close"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_line(exc.errors()))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return _error(exc.status_code, f"{request.url.path}: {detail}", exc.headers)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> JSONResponse:
        return _error(500, _internal(exc))


def _internal(exc: Exception) -> str:
    """A 500's line: the kind of failure, not its text (which may hold server paths)."""
    return f"internal error ({type(exc).__name__}) in this request; the server log has it"


# --------------------------------------------------------------------------- page


#: The page's policy: its own scripts and styles only (it works offline, needs no CDN);
#: images may be the blob: and data: URLs it makes from the files chosen.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


#: The harmonize page's files in ``static/`` (the folder holds the study page's too).
PAGE_FILES = ("index.html", "app.js", "style.css")


def _static_files() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once: a request names one of these, never a path on disk."""
    folder = resources.files("dkt.serve") / "static"
    files = {}
    for name in PAGE_FILES:
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        files[name] = ((folder / name).read_bytes(), media)
    return files


def _static_response(static: dict[str, tuple[bytes, str]], name: str) -> Response:
    if name not in static:
        raise RequestError(404, f"/static/{name}: no such file")
    data, media = static[name]
    return Response(data, media_type=media, headers=_PAGE_HEADERS)


_BINARY = {"type": "string", "format": "binary"}
#: The form, spelled out for the OpenAPI docs (the body is parsed by hand, see uploads.py).
_REQUEST_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {
                    "composite": {**_BINARY, "description": "The composite; with `mask`, or "
                                  "alone as RGBA whose alpha is the mask."},
                    "mask": {**_BINARY, "description": "Its mask: white is the object, grey "
                             "blends; a 0/1 label mask works too."},
                    "painting": {**_BINARY, "description": "A painting to paste `cutout` on."},
                    "cutout": {**_BINARY, "description": "The object with a transparent "
                               "background; its alpha is the mask."},
                    "x": {"type": "integer", "description": "Cut-out's left edge on the "
                          "painting, in pixels (default: centred)."},
                    "y": {"type": "integer", "description": "Cut-out's top edge (default: "
                          "centred)."},
                    "scale": {"type": "number", "default": 1.0,
                              "description": "Resize the cut-out first."},
                    "size": {"type": "integer", "description": "Working size (long side); "
                             "0: the image's own. Default: the server's."},
                    "strength": {"type": "number", "minimum": 0, "maximum": 1, "default": 1.0,
                                 "description": "Style strength: 0 gives the composite back "
                                 "byte for byte, 1 the full harmonization. The reply's "
                                 "X-DKT-Strength header says what was used."},
                    "format": {"type": "string", "enum": ["png", "jpeg", "webp"],
                               "default": "png", "description": "Reply format; PNG and WebP "
                               "keep the painting byte-identical, JPEG does not."},
                },
            }
        }
    },
}  # fmt: skip
