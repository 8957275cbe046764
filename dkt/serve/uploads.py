"""A multipart upload read into memory, under a byte limit, without touching the disk.

Starlette's own form parser spools every file part over 1 MB into a temporary file, and
reads the whole body before the endpoint can look at it. A server that must never write a
file for a request, and must stop reading as soon as a client sends more than it allows,
parses the body itself, with python-multipart (the parser Starlette uses) fed chunk by chunk
as they arrive: the first byte over the limit ends the request with 413.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from dkt.errors import UploadError

if TYPE_CHECKING:  # python-multipart defines its callback table for type checkers only
    from python_multipart.multipart import MultipartCallbacks

#: More parts than any request of this API has (9 fields): a body of thousands of empty
#: parts costs the parser time and memory for nothing.
MAX_PARTS = 32


@dataclass
class Part:
    """One form field: its bytes, and the file name the client gave (``None``: a text field)."""

    name: str
    filename: str | None = None
    data: bytearray = field(default_factory=bytearray)

    def text(self) -> str:
        try:
            return self.data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise UploadError(422, f"{self.name}: not UTF-8 text") from None


class _Collector:
    """python-multipart's callbacks, keeping every part in memory."""

    def __init__(self) -> None:
        self.parts: list[Part] = []
        self.ended = False
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._disposition = b""

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._part_begin,
            "on_part_data": self._part_data,
            "on_header_field": self._header_field,
            "on_header_value": self._header_value_data,
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_end": self._end,
        }

    def _part_begin(self) -> None:
        if len(self.parts) >= MAX_PARTS:
            raise UploadError(422, f"body: more than {MAX_PARTS} form fields")
        self._disposition = b""

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_value_data(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise UploadError(400, "body: a form part has no Content-Disposition name")
        filename = options.get(b"filename")
        self.parts.append(
            Part(
                options[b"name"].decode("utf-8", "replace"),
                None if filename is None else filename.decode("utf-8", "replace"),
            )
        )

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        self.parts[-1].data += data[start:end]

    def _end(self) -> None:
        self.ended = True


async def read_form(
    request: Request, max_bytes: int, on_chunk: Callable[[int], None] | None = None
) -> dict[str, Part]:
    """The parts of ``request``'s multipart/form-data body by field name.

    ``on_chunk`` is told each chunk's size as it arrives, so the caller can tell a slow
    upload from a fast one while it is still being read.

    Refuses, with :class:`UploadError`: another content type (415), a declared
    ``Content-Length`` over ``max_bytes`` before reading a byte, and a body that turns out
    longer as soon as it does (413), a malformed or cut-off body (400) and a field given
    twice (422).
    """
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise UploadError(415, "body: expected multipart/form-data (an HTML form with files)")
    check_length(request, max_bytes)
    collector = _Collector()
    parser = MultipartParser(options[b"boundary"], collector.callbacks())
    received = 0
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if on_chunk is not None:
                on_chunk(len(chunk))
            if received > max_bytes:
                raise UploadError(413, _too_large(None, max_bytes))
            parser.write(chunk)
    except MultipartParseError as exc:
        raise UploadError(400, f"body: malformed multipart/form-data ({exc})") from None
    except ClientDisconnect:
        raise UploadError(400, "body: the client went away before the upload ended") from None
    if not collector.ended:
        raise UploadError(400, "body: the upload ends before its closing multipart boundary")
    form: dict[str, Part] = {}
    for part in collector.parts:
        if part.name in form:
            raise UploadError(422, f"{part.name}: given more than once")
        form[part.name] = part
    return form


def check_length(request: Request, max_bytes: int) -> None:
    """413 from the declared ``Content-Length`` alone, before a byte of the body is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise UploadError(413, _too_large(int(declared), max_bytes))


def _too_large(size: int | None, limit: int) -> str:
    """``size``: the declared length; ``None`` when only the first bytes over are known."""
    limit_mib = f"{limit / 2**20:.1f} MiB"
    if size is None:
        return f"body: the upload is too large: over this server's limit of {limit_mib}"
    return f"body: the upload is too large: {size / 2**20:.1f} MiB, over the limit of {limit_mib}"
