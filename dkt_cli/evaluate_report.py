"""How ``dkt evaluate`` prints its report: the table, the notes under it, the failures.

The numbers and words are :mod:`dkt.evaluation.summary`'s; the layout (Rich tables on
stderr, as wide as the table needs off a terminal) is the command line's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from dkt_cli.console import err, stderr_console

if TYPE_CHECKING:
    from dkt.evaluation.run import EvaluateResult
    from dkt.evaluation.runner import EvalReport

_SHOWN_FAILURES = 20
_TABLE_WIDTH = 160


def render_table(report: EvalReport) -> Table:
    """The rich table: one row per method, one column per metric with its better direction."""
    from dkt.evaluation.runner import METRICS
    from dkt.evaluation.summary import table_rows

    table = Table(
        title=f"dkt evaluate: {report.items_evaluated} composite(s)", title_justify="left"
    )
    table.add_column("method", style="bold", overflow="fold")
    table.add_column("n", justify="right")
    for metric in METRICS:
        table.add_column(f"{metric.label} {metric.arrow}", justify="right", overflow="fold")
    table.add_column("s/img", justify="right")
    for row in table_rows(report):
        table.add_row(*row)
    return table


def _failures_table(report: EvalReport) -> Table | None:
    from dkt.evaluation.summary import failure_rows

    rows = failure_rows(report)
    if not rows:
        return None
    table = Table(title=f"{len(rows)} failure(s)", title_justify="left")
    for name in ("method", "item", "error"):
        table.add_column(name)
    for row in rows[:_SHOWN_FAILURES]:
        table.add_row(*row)
    if len(rows) > _SHOWN_FAILURES:
        table.add_row("...", f"{len(rows) - _SHOWN_FAILURES} more", "see --json")
    return table


def print_report(result: EvaluateResult, references: Path | None, quiet: bool) -> None:
    """The failures (always), then the table, the notes and a summary line (unless quiet)."""
    from dkt.evaluation.summary import notes

    report = result.report
    failures = _failures_table(report)
    if failures is not None:
        err.print(failures)
    if quiet:
        return
    # Off a terminal (a log, a pipe) there is no width to respect: print the table whole
    # rather than squeezing it into rich's default 80 columns.
    out = err if err.is_terminal else stderr_console(width=_TABLE_WIDTH)
    out.print(render_table(report))
    for note in notes(report, references):
        out.print(f"[dim]{note}[/]")
    err.print(
        f"{report.items_evaluated} of {report.items_total} composite(s) evaluated with "
        f"{len(report.methods)} method(s) in {result.info['seconds_wall']:.1f} s"
    )
