"""How a harmonize run reads on the terminal: notes, failures, the summary line, ``--json``.

Kept apart from the command so that the command only parses, calls and prints through here;
a local run and a Ray run report alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from dkt_cli.console import EXIT_FAILED, err, plain_line, print_json, printable, say

if TYPE_CHECKING:
    from dkt.inference.jobs import RunSummary
    from dkt.inference.sharding import Shard


def print_notes(notes: list[str], kind: str = "note") -> None:
    for note in notes:
        say(kind, note)


def print_failures(summary: RunSummary) -> None:
    """A table on a terminal; elsewhere (logs, pipes, CI) one whole ``path: error`` line each.

    A table is sized to the terminal; written to a file it is cut at 80 columns, which
    truncates the very file names a log reader needs to find.
    """
    if err.is_terminal:
        table = Table(title=f"{summary.failed} file(s) failed", title_justify="left")
        table.add_column("item", style="bold")
        table.add_column("error")
        for failure in summary.failures:
            table.add_row(escape(printable(failure.key)), escape(printable(failure.error)))
        err.print(table)
        return
    for failure in summary.failures:
        plain_line(failure.error)


def report(summary: RunSummary, shard: Shard | None = None) -> None:
    print_notes(summary.notes)
    if summary.failures:
        print_failures(summary)
    note = " (interrupted)" if summary.interrupted else ""
    where = f" in shard {shard}" if shard else ""
    err.print(
        f"{summary.done} harmonized, {summary.skipped} skipped, {summary.failed} failed "
        f"of {summary.total}{where}{note} in {summary.seconds_total:.1f} s",
        soft_wrap=True,
    )


def finish(summary: RunSummary, extra: dict[str, Any], *, quiet: bool, json_output: bool,
           shard: Shard | None) -> None:  # fmt: skip
    """``--json``, the report (failures even with ``--quiet``) and the exit code: 1 when a
    file failed, 130 when interrupted."""
    if json_output:
        print_json({**summary.to_dict(), **extra})
    if not quiet or summary.failures:
        report(summary, shard)
    if summary.failures or summary.interrupted:
        raise typer.Exit(EXIT_FAILED if summary.failures else 130)
