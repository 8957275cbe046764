"""How ``dkt study`` shows its results on a terminal: the score and catch tables, the notes.

The numbers come from :mod:`dkt.evaluation.study_run`; only their layout is here.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dkt.evaluation.bradley_terry import BTResult
from dkt.evaluation.catch import CatchScreen
from dkt.evaluation.study_run import DesignSummary
from dkt_cli.console import err, stderr_console

_WIDTH = 120


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:+.{digits}f}" if digits == 3 else f"{x:.{digits}f}"


def _console() -> Console:
    """The terminal's width on a terminal; off one (a log, a pipe) wide enough for the tables."""
    return err if err.is_terminal else stderr_console(width=_WIDTH)


def print_design(summary: DesignSummary) -> None:
    """One line: how many comparisons went where, and how evenly the pairs are spread."""
    low, high = summary.per_pair_min, summary.per_pair_max
    err.print(
        f"wrote {summary.comparisons} comparisons ({summary.items} items x {summary.per_item}) "
        f"to {summary.output}; each of the {summary.method_pairs} method pairs appears {low}"
        + ("" if low == high else f"-{high}")
        + " times"
    )


def _scores_table(result: BTResult, name: str) -> Table:
    level = f"{result.confidence:.0%}"
    table = Table(
        title=f"Bradley-Terry scores from {name}: {result.judgments} judgments, "
        f"{result.items} items",
        title_justify="left",
    )
    for column, justify in (
        ("rank", "right"),
        ("method", "left"),
        ("BT log-strength", "right"),
        (f"{level} CI", "right"),
        ("wins", "right"),
        ("comparisons", "right"),
        ("win rate", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for rank, i in enumerate(result.ranking(), start=1):
        ci = (
            "n/a"
            if not np.isfinite(result.ci_low[i])
            else f"[{result.ci_low[i]:+.3f}, {result.ci_high[i]:+.3f}]"
        )
        table.add_row(
            str(rank),
            result.methods[i],
            _fmt(result.log_strength[i]),
            ci,
            f"{result.wins[i]:g}",
            str(result.comparisons[i]),
            _fmt(result.win_rate[i], 2),
        )
    return table


def _pairwise_table(result: BTResult) -> Table:
    pair = Table(title="win rate of row over column", title_justify="left")
    pair.add_column("")
    for name in result.methods:
        pair.add_column(name, justify="right")
    for i, name in enumerate(result.methods):
        cells = []
        for j in range(len(result.methods)):
            games = result.pairwise_wins[i, j] + result.pairwise_wins[j, i]
            cells.append(
                "-"
                if i == j or games == 0
                else f"{result.pairwise_wins[i, j] / games:.2f} ({games:g})"
            )
        pair.add_row(name, *cells)
    return pair


def print_fit(result: BTResult, name: str) -> None:
    """The scores, the pairwise win rates and how to read them (``name``: the file's)."""
    out = _console()
    out.print(_scores_table(result, name))
    out.print(_pairwise_table(result))
    notes = [
        "log-strengths are centred (mean 0): P(A beats B) = 1 / (1 + exp(-(s_A - s_B)))",
        f"{result.bootstrap_samples} bootstrap resamples by {result.bootstrap_by}"
        if result.bootstrap_samples
        else "no bootstrap (--bootstrap 0): no intervals",
        f"ties counted as half a win each: {result.ties}",
    ]
    if result.skipped:
        notes.append(f"{result.skipped} row(s) with an empty winner were skipped (not judged)")
    for note in notes:
        out.print(f"[dim]{note}[/]")


def print_catches(screen: CatchScreen, table: bool) -> None:
    """Each rater's catch results (the table only without --json: stdout is JSON then, and
    the JSON has them), and who was dropped (always: the fit is on fewer raters)."""
    out = _console()
    if table:
        out.print(_catch_table(screen))
    if screen.min_catch is not None:
        dropped = screen.dropped
        names = f": {escape(', '.join(dropped))}" if dropped else ""
        out.print(
            f"dropped {len(dropped)} of {len(screen.raters)} rater(s) with catch accuracy "
            f"below {screen.min_catch:.0%} (--min-catch){names}"
        )
        if screen.unchecked:
            out.print(
                f"[dim]kept {len(screen.unchecked)} rater(s) without a scorable catch trial: "
                f"{escape(', '.join(r or '(none)' for r in screen.unchecked))}[/]"
            )


def _catch_table(screen: CatchScreen) -> Table:
    table = Table(
        title=f"catch trials by rater ({screen.catch_rows} catch trials, left out of the fit)",
        title_justify="left",
    )
    for name in ("rater", "judgments", "composite", "repeat", "catch accuracy", "status"):
        table.add_column(name, justify="left" if name in ("rater", "status") else "right")
    for r in screen.raters:
        accuracy = r.accuracy
        status = (
            "dropped"
            if r.rater in screen.dropped
            else "kept (no catch trials)"
            if accuracy is None
            else "kept"
        )
        table.add_row(
            escape(r.rater) or "(none)",
            str(r.judgments),
            f"{r.composite_passed}/{r.composite_total}",
            f"{r.repeat_passed}/{r.repeat_total}",
            "n/a" if accuracy is None else f"{accuracy:.0%}",
            status,
        )
    return table
