"""``dkt study``: design a pairwise user study, run it in a browser, fit Bradley-Terry scores.

``dkt study pairs`` writes the comparisons to show (a CSV with an empty ``winner`` column
for the answers); ``dkt study serve`` shows them to raters one at a time and appends each
answer to a judgments log; ``dkt study fit`` reads a log (or a filled-in design) and
reports each method's Bradley-Terry log-strength, the scale papers report as "BT score",
with bootstrap confidence intervals and win rates, after screening raters by their catch
trials.
"""

from __future__ import annotations

import csv
import io
import os
import re
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dkt.atomic import atomic_write_bytes
from dkt.csvcells import guard_row, read_row
from dkt.errors import DktError, JudgmentError
from dkt.evaluation.bradley_terry import PRIOR_VARIANCE, REQUIRED_COLUMNS, BTResult, parse_judgments
from dkt.evaluation.bradley_terry import fit as fit_bt
from dkt.evaluation.catch import CatchScreen, screen_raters
from dkt.evaluation.judgments import drop_torn_line, is_log_text
from dkt.evaluation.pairs import balanced_pairs
from dkt.inference.pairing import IMAGE_SUFFIXES
from dkt_cli.console import err, fail, print_json, stderr_console
from dkt_cli.serve import DEFAULT_PORT, Host, Port, listen, token_option, url_of, warn_if_open

app = typer.Typer(
    help="User studies: balanced pairwise comparisons, a browser study page, Bradley-Terry scores.",
    no_args_is_help=True,
)

#: Below this many items, resampling whole items gives too few distinct bootstrap samples.
MIN_ITEMS_FOR_ITEM_BOOTSTRAP = 10
_WIDTH = 120


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _keys_in_folder(folder: Path, pattern: str) -> list[str]:
    """Keys of the image files under ``folder`` whose stem matches ``pattern``."""
    if pattern.count("{key}") != 1:
        fail(f"--composite-pattern {pattern!r} must contain {{key}} exactly once")
    pre, post = pattern.split("{key}")
    regex = re.compile(f"{re.escape(pre)}(?P<key>.+){re.escape(post)}")
    keys = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(root).relative_to(folder).parts
        for name in sorted(files):
            stem, suffix = os.path.splitext(name)
            match = regex.fullmatch(stem)
            if name.startswith(".") or suffix.lower() not in IMAGE_SUFFIXES or match is None:
                continue
            keys.append("/".join((*rel, match["key"])))
    return sorted(keys)


def _items(spec: str, pattern: str) -> list[str]:
    """Items from a folder of composites, a text file (one per line) or a comma list."""
    path = Path(spec)
    if path.is_dir():
        keys = _keys_in_folder(path, pattern)
        if not keys:
            fail(f"--items {spec}: no images matching '{pattern}'")
        return keys
    if path.is_file():
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        keys = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        if not keys:
            fail(f"--items {spec}: the file lists no items")
    else:
        keys = _split(spec)
        if len(keys) == 1 and ("/" in spec or "." in spec):
            fail(f"--items {spec}: no such folder or file")
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        fail(f"--items: {duplicates[0]!r} is listed more than once")
    return keys


@app.command("pairs")
def pairs(
    methods: Annotated[str, typer.Option(help="Comma-separated method names (at least 2).")],
    items: Annotated[
        str,
        typer.Option(
            help="A folder of composites, a text file with one item per line, or a comma list."
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV file to write.")],
    per_item: Annotated[
        int | None,
        typer.Option(help="Comparisons per item. Default: one per pair of methods.", min=1),
    ] = None,
    seed: Annotated[int, typer.Option(help="Same seed, same study.")] = 0,
    composite_pattern: Annotated[
        str, typer.Option(help="Composite file stem when --items is a folder.")
    ] = "{key}",
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
) -> None:
    """Write a randomized, balanced list of pairwise comparisons (item, left, right).

    Every pair of methods is compared equally often, each method appears on each side
    equally often (both up to one), and the trial order is shuffled. The CSV has columns
    trial,item,method_a,method_b,winner; fill winner with the preferred method's name (or
    'tie') and pass the file to 'dkt study fit'.
    """
    names = _split(methods)
    if len(names) < 2:
        fail("--methods needs at least 2 comma-separated names")
    if len(set(names)) != len(names):
        fail("--methods lists a name twice")
    keys = _items(items, composite_pattern)
    n_pairs = len(names) * (len(names) - 1) // 2
    count = per_item if per_item is not None else n_pairs
    design = balanced_pairs(names, keys, count, seed)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["trial", *REQUIRED_COLUMNS])
    for c in design:
        writer.writerow(guard_row([c.trial, c.item, c.method_a, c.method_b, ""]))
    atomic_write_bytes(output, buf.getvalue().encode("utf-8"))
    per_pair: dict[frozenset[str], int] = {}
    for c in design:
        k = frozenset((c.method_a, c.method_b))
        per_pair[k] = per_pair.get(k, 0) + 1
    summary = {
        "output": str(output),
        "comparisons": len(design),
        "items": len(keys),
        "per_item": count,
        "methods": names,
        "seed": seed,
        "per_pair_min": min(per_pair.values()),
        "per_pair_max": max(per_pair.values()),
    }
    if json_output:
        print_json(summary)
    if quiet:
        return
    err.print(
        f"wrote {len(design)} comparisons ({len(keys)} items x {count}) to {output}; each of "
        f"the {n_pairs} method pairs appears {summary['per_pair_min']}"
        + (
            ""
            if summary["per_pair_min"] == summary["per_pair_max"]
            else f"-{summary['per_pair_max']}"
        )
        + " times"
    )


def _read_judgments(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        fail(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"{path}: cannot read ({exc})")
    if is_log_text(text):
        text, torn = drop_torn_line(text)
        if torn:
            err.print(
                f"[yellow]note:[/] {path}: ignored a torn last line ({len(torn)} characters, "
                "an answer the study server never confirmed)"
            )
    reader = csv.DictReader(io.StringIO(text))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        fail(
            f"{path}: missing column(s) {', '.join(missing)} (a judgments file needs "
            f"{','.join(REQUIRED_COLUMNS)}; found {','.join(columns) or 'no header'})"
        )
    reader.fieldnames = columns
    return [read_row(row) for row in reader]


def _fmt(x: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(x) else f"{x:+.{digits}f}" if digits == 3 else f"{x:.{digits}f}"


def _console() -> Console:
    """The terminal's width on a terminal; off one (a log, a pipe) wide enough for the tables."""
    return err if err.is_terminal else stderr_console(width=_WIDTH)


def _print_fit(result: BTResult, path: Path) -> None:
    out = _console()
    level = f"{result.confidence:.0%}"
    table = Table(
        title=f"Bradley-Terry scores from {path.name}: {result.judgments} judgments, "
        f"{result.items} items",
        title_justify="left",
    )
    for name, justify in (
        ("rank", "right"),
        ("method", "left"),
        ("BT log-strength", "right"),
        (f"{level} CI", "right"),
        ("wins", "right"),
        ("comparisons", "right"),
        ("win rate", "right"),
    ):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
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
    out.print(table)
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
    out.print(pair)
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


def _print_catches(screen: CatchScreen, table: bool) -> None:
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


@app.command("fit")
def fit(
    judgments: Annotated[
        Path,
        typer.Argument(
            help="A judgments log from 'dkt study serve', or any CSV with columns "
            "item,method_a,method_b,winner."
        ),
    ],
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples for the intervals (0: none).", min=0)
    ] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    bootstrap_by: Annotated[
        str,
        typer.Option(
            help="Resample 'items' (all judgments of a composite together), 'judgments', "
            f"or 'auto' (items when there are at least {MIN_ITEMS_FOR_ITEM_BOOTSTRAP})."
        ),
    ] = "auto",
    confidence: Annotated[
        float, typer.Option(help="Interval coverage.", min=0.5, max=0.999)
    ] = 0.95,
    prior_variance: Annotated[
        float,
        typer.Option(help="Variance of the Gaussian prior on log-strengths.", min=1e-3),
    ] = PRIOR_VARIANCE,
    min_catch: Annotated[
        float | None,
        typer.Option(
            help="Leave out raters whose catch-trial accuracy is below this share (0-1).",
            min=0.0,
            max=1.0,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the scores as JSON on stdout.")
    ] = False,
) -> None:
    """Fit Bradley-Terry strengths (MAP, weak Gaussian prior) with bootstrap intervals.

    Reads a judgments log from 'dkt study serve' or a filled-in design: the winner column
    holds method_a's or method_b's name, 'tie' (half a win each), or nothing (not judged:
    the row is skipped). Catch trials (a log's catch column) never enter the fit; each
    rater's catch accuracy is reported, and --min-catch leaves out the raters below it.
    """
    if bootstrap_by not in ("auto", "items", "judgments"):
        fail(f"--bootstrap-by {bootstrap_by!r}: use auto, items or judgments")
    rows = _read_judgments(judgments)
    screen = screen_raters(rows, min_catch)
    if screen.has_catches:
        _print_catches(screen, table=not json_output)
    elif min_catch is not None:
        err.print(f"[yellow]note:[/] {judgments}: no catch trials, so --min-catch drops no one")
    if screen.dropped and not any((r.get("winner") or "").strip() for r in screen.kept_rows):
        fail(
            f"{judgments}: every rater with judgments is below --min-catch {min_catch:g} "
            f"({len(screen.dropped)} dropped); nothing is left to fit"
        )
    try:
        parsed = parse_judgments(screen.kept_rows, lines=screen.kept_lines)
    except JudgmentError as exc:
        fail(f"{judgments}: {exc}")
    if len(parsed.methods) < 2:
        fail(f"{judgments}: only one method ({parsed.methods[0]}) was judged")
    by = bootstrap_by
    if by == "auto":
        by = "items" if len(parsed.items) >= MIN_ITEMS_FOR_ITEM_BOOTSTRAP else "judgments"
    result = fit_bt(
        parsed,
        bootstrap_samples=bootstrap,
        seed=seed,
        by=by,
        confidence=confidence,
        prior_variance=prior_variance,
    )
    if json_output:
        print_json({"file": str(judgments), **result.to_dict(), "catch": screen.to_dict()})
    else:
        _print_fit(result, judgments)


@app.command("serve")
def serve(
    design: Annotated[Path, typer.Argument(help="The study design: a CSV from 'dkt study pairs'.")],
    images: Annotated[
        Path,
        typer.Option(
            help="Folder with one sub-folder per method, DIR/<method>/<item>.<png|jpg|...>, "
            "and the unharmonized composites in DIR/composite/<item>.* (catch trials)."
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(help="Judgments log to append to; an existing one is resumed."),
    ] = Path("judgments.csv"),
    host: Host = "127.0.0.1",
    port: Port = DEFAULT_PORT + 1,
    token: Annotated[
        str | None,
        token_option(
            "DKT_STUDY_TOKEN",
            "raters open http://HOST:PORT/?token=TOKEN once (the page keeps it in a "
            "cookie); scripts send Authorization: Bearer TOKEN",
        ),
    ] = None,
    catch_rate: Annotated[
        float,
        typer.Option(
            help="Catch trials per design trial (half composite-vs-method, half repeats).",
            min=0.0,
            max=0.5,
        ),
    ] = 0.1,
    seed: Annotated[
        int, typer.Option(help="Seed of the catch trials and the left/right sides.")
    ] = 0,
) -> None:
    """Run the study in a browser: one comparison at a time, every answer saved at once.

    --images must hold DIR/<method>/<item>.<any image suffix> for every method and item in
    the design, and DIR/composite/<item>.* (the composites before harmonization) for the
    catch trials; the command names the first missing folder or image and stops. Raters
    open http://HOST:PORT/ (http://HOST:PORT/?token=TOKEN the first time, with --token),
    give a rater id, and answer with the arrow keys (left, right, down for can't tell).
    Each answer is appended to --out and synced to disk before the next trial is shown, so
    a restart (same design, same --seed) resumes every rater where they stopped. Fit the
    result with 'dkt study fit OUT --min-catch 0.8'.
    """
    try:
        import uvicorn

        from dkt.serve.study import create_study_app
    except ImportError as exc:
        fail(f"dkt study serve needs the web stack ({exc.name}): pip install 'dkt[serve]'")
    token = token.strip() if token else None
    try:
        study_app = create_study_app(
            design, images, out, catch_rate=catch_rate, seed=seed, token=token
        )
    except DktError as exc:
        fail(str(exc))
    study = study_app.state.study
    try:
        sock = listen(host, port)
    except typer.Exit:
        study.log.close()
        raise
    try:
        if study.note:
            err.print(f"[yellow]note:[/] {study.note}")
        info = study.summary()
        err.print(
            f"study: {info['trials']} trials per rater ({info['design_trials']} from "
            f"{design.name} + {info['catch_trials']} catch); {out}: {info['judgments']} "
            f"answers from {info['raters']} rater(s) so far"
        )
        link = url_of(host, sock) + ("?token=TOKEN (your --token)" if token else "")
        err.print(f"open {link} in a browser; Ctrl+C stops (answers are saved)", soft_wrap=True)
        warn_if_open(host, token)
        config = uvicorn.Config(study_app, log_level="warning", timeout_graceful_shutdown=10)
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        sock.close()
        study.log.close()
