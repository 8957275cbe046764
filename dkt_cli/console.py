"""Terminal output shared by the commands.

Human-facing output (progress, tables, errors) goes to stderr so stdout stays clean for
``--json`` and for pipelines; colour and progress bars only appear on a terminal.
"""

from __future__ import annotations

import contextlib
import json
import sys
import warnings
from collections.abc import Iterator
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

err = Console(stderr=True, highlight=False)

EXIT_FAILED = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print a one-line error and exit: the message names the file and what is wrong."""
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, soft_wrap=True)
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
                err.print(f"[yellow]warning:[/] {escape(str(warning.message))}", soft_wrap=True)


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


def progress_bar(quiet: bool) -> Progress:
    """A progress bar on stderr, shown only on a terminal and without --quiet."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=quiet or not sys.stderr.isatty(),
        transient=True,
    )
