"""Terminal output shared by the commands.

Human-facing output (progress, tables, errors) goes to stderr so stdout stays clean for
``--json`` and for pipelines; colour and progress bars only appear on a terminal.

File names and error texts come from users and their files: a name holding an escape
sequence or a newline, printed raw, clears the screen or forges a log line. Every line
printed here shows such characters escaped (:func:`printable`), as ``--json`` does.
"""

from __future__ import annotations

import contextlib
import json
import sys
import unicodedata
import warnings
from collections.abc import Callable, Iterator
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.text import Text

from dkt.inference.progress import ProgressLines

_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(char: str) -> str:
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def _unsafe(char: str) -> bool:
    """Controls, line separators, bidi overrides, lone surrogates (undecodable file-name
    bytes); not the ordinary non-ASCII letters and spaces of real names."""
    return not char.isprintable() and unicodedata.category(char) != "Zs"


def printable(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control character escaped (``\\x1b``, ``\\n``, ``\\u202e``).

    ``keep_newlines`` lets a message of several lines keep them, for text that is not one
    report line (tables, multi-line notes).
    """
    if text.isprintable():
        return text
    if keep_newlines:
        return "\n".join(printable(part) for part in text.split("\n"))
    return "".join(_escaped(c) if _unsafe(c) else c for c in text)


class EscapingConsole(Console):
    """A rich console that escapes control characters in every string it renders.

    The safety net under :func:`printable`: tables, notes and messages of any command go
    through ``render_str``, so none can write a raw escape sequence to the terminal.
    """

    def render_str(self, text: str, **kwargs: Any) -> Text:
        return super().render_str(printable(text, keep_newlines=True), **kwargs)


def stderr_console(width: int | None = None) -> Console:
    """A stderr console like :data:`err` (escaping, no highlighting), optionally wider."""
    return EscapingConsole(stderr=True, highlight=False, width=width)


err = stderr_console()

EXIT_FAILED = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error and exit: the message names the file and what is wrong."""
    err.print(f"[bold red]error:[/] {escape(printable(message))}", markup=True, soft_wrap=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def shown_warnings() -> Iterator[None]:
    """Print the UserWarnings raised inside as one ``warning:`` line each, errors or not.

    Library code warns about what it ignored (missing files in a list, masks without a
    photo); a user should see that as a plain line, before any error it may explain.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        try:
            yield
        finally:
            for warning in caught:
                say("warning", str(warning.message))


def say(kind: str, line: str) -> None:
    """One ``kind: line`` report line (``warning``, ``note``), ``line`` escaped."""
    colour = {"warning": "yellow", "note": "cyan"}.get(kind, "bold")
    err.print(f"[{colour}]{kind}:[/] {escape(printable(line))}", soft_wrap=True)


def plain_line(line: str) -> None:
    """One whole line as it is (no markup), escaped: a log reader greps for it."""
    err.print(printable(line), markup=False, soft_wrap=True)


def print_json(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{n} B"
        size /= 1024
    return f"{n} B"


def _on_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bar(quiet: bool) -> Progress:
    """A progress bar on stderr, shown only on a terminal and without --quiet."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not _on_terminal(),
        transient=True,
    )


@contextlib.contextmanager
def job_progress(quiet: bool, total: int, what: str) -> Iterator[Callable[[object], None]]:
    """The ``on_done`` of a run: a bar on a terminal; elsewhere (a log, CI) a line every few
    seconds, so a long run off a terminal is not silent until its end; nothing with --quiet.
    """
    if quiet:
        yield lambda _job: None
    elif _on_terminal():
        with progress_bar(quiet) as bar:
            task = bar.add_task(what, total=total)
            yield lambda _job: bar.advance(task)
    else:
        yield ProgressLines(total, plain_line, what=what).advance
