"""``dkt study``: design a pairwise user study, run it in a browser, fit Bradley-Terry scores.

``dkt study pairs`` writes the comparisons to show (a CSV with an empty ``winner`` column
for the answers); ``dkt study serve`` shows them to raters one at a time and appends each
answer to a judgments log; ``dkt study fit`` reads a log (or a filled-in design) and
reports each method's Bradley-Terry log-strength, the scale papers report as "BT score",
with bootstrap confidence intervals and win rates, after screening raters by their catch
trials.

The work is :mod:`dkt.evaluation.study_run`'s (pairs, fit) and :mod:`dkt.serve.launch`'s
(serve); this module parses, calls and prints, the tables through :mod:`dkt_cli.study_report`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from dkt.errors import DktError
from dkt.evaluation.study_run import MIN_ITEMS_FOR_ITEM_BOOTSTRAP, PRIOR_VARIANCE
from dkt.serve.launch import STUDY_PORT
from dkt_cli.console import err, fail, print_json
from dkt_cli.options import Host, Port, request_from, token_option
from dkt_cli.serve import warn_if_open

app = typer.Typer(
    help="User studies: balanced pairwise comparisons, a browser study page, Bradley-Terry scores.",
    no_args_is_help=True,
)


def _opt(help_: str, *names: str, **kwargs: Any) -> Any:
    """A ``typer.Option``, help first, so each alias below stays short."""
    return typer.Option(*names, help=help_, **kwargs)


# ``dkt study pairs``
Methods = Annotated[str, _opt("Comma-separated method names (at least 2).")]
Items = Annotated[
    str, _opt("A folder of composites, a text file with one item per line, or a comma list.")
]
Output = Annotated[Path, _opt("CSV file to write.", "--output", "-o")]
PerItem = Annotated[
    int | None, _opt("Comparisons per item. Default: one per pair of methods.", min=1)
]
DesignSeed = Annotated[int, _opt("Same seed, same study.")]
CompositePattern = Annotated[str, _opt("Composite file stem when --items is a folder.")]
PairsJson = Annotated[bool, _opt("Print a JSON summary.", "--json")]
Quiet = Annotated[bool, _opt("Only print errors.", "--quiet", "-q")]
# ``dkt study fit``
JudgmentsFile = Annotated[
    Path,
    typer.Argument(
        help="A judgments log from 'dkt study serve', or any CSV with columns "
        "item,method_a,method_b,winner."
    ),
]
Bootstrap = Annotated[int, _opt("Bootstrap resamples for the intervals (0: none).", min=0)]
BootstrapSeed = Annotated[int, _opt("Seed of the bootstrap.")]
BootstrapBy = Annotated[
    str,
    _opt(
        "Resample 'items' (all judgments of a composite together), 'judgments', or 'auto' "
        f"(items when there are at least {MIN_ITEMS_FOR_ITEM_BOOTSTRAP})."
    ),
]
Confidence = Annotated[float, _opt("Interval coverage.", min=0.5, max=0.999)]
PriorVariance = Annotated[float, _opt("Variance of the Gaussian prior on log-strengths.", min=1e-3)]
MinCatch = Annotated[
    float | None,
    _opt(
        "Leave out raters whose catch-trial accuracy is below this share (0-1).",
        min=0.0,
        max=1.0,
    ),
]
FitJson = Annotated[bool, _opt("Print the scores as JSON on stdout.", "--json")]
# ``dkt study serve``
Design = Annotated[Path, typer.Argument(help="The study design: a CSV from 'dkt study pairs'.")]
Images = Annotated[
    Path,
    _opt(
        "Folder with one sub-folder per method, DIR/<method>/<item>.<png|jpg|...>, and the "
        "unharmonized composites in DIR/composite/<item>.* (catch trials)."
    ),
]
Out = Annotated[Path, _opt("Judgments log to append to; an existing one is resumed.")]
Token = Annotated[
    str | None,
    token_option(
        "DKT_STUDY_TOKEN",
        "raters open http://HOST:PORT/?token=TOKEN once (the page keeps it in a cookie); "
        "scripts send Authorization: Bearer TOKEN",
    ),
]
CatchRate = Annotated[
    float,
    _opt(
        "Catch trials per design trial (half composite-vs-method, half repeats).",
        min=0.0,
        max=0.5,
    ),
]
ServeSeed = Annotated[int, _opt("Seed of the catch trials and the left/right sides.")]


@app.command("pairs")
def pairs(
    methods: Methods,
    items: Items,
    output: Output,
    per_item: PerItem = None,
    seed: DesignSeed = 0,
    composite_pattern: CompositePattern = "{key}",
    json_output: PairsJson = False,
    quiet: Quiet = False,
) -> None:
    """Write a randomized, balanced list of pairwise comparisons (item, left, right).

    Every pair of methods is compared equally often, each method appears on each side
    equally often (both up to one), and the trial order is shuffled. The CSV has columns
    trial,item,method_a,method_b,winner; fill winner with the preferred method's name (or
    'tie') and pass the file to 'dkt study fit'.
    """
    params = dict(locals())  # first, so it holds the parameters only
    from dkt.evaluation.study_run import PairsRequest, write_design
    from dkt_cli.study_report import print_design

    try:
        summary = write_design(request_from(PairsRequest, params))
    except DktError as exc:
        fail(str(exc))
    if json_output:
        print_json(summary.to_dict())
    if not quiet:
        print_design(summary)


@app.command("fit")
def fit(
    judgments: JudgmentsFile,
    bootstrap: Bootstrap = 1000,
    seed: BootstrapSeed = 0,
    bootstrap_by: BootstrapBy = "auto",
    confidence: Confidence = 0.95,
    prior_variance: PriorVariance = PRIOR_VARIANCE,
    min_catch: MinCatch = None,
    json_output: FitJson = False,
) -> None:
    """Fit Bradley-Terry strengths (MAP, weak Gaussian prior) with bootstrap intervals.

    Reads a judgments log from 'dkt study serve' or a filled-in design: the winner column
    holds method_a's or method_b's name, 'tie' (half a win each), or nothing (not judged:
    the row is skipped). Catch trials (a log's catch column) never enter the fit; each
    rater's catch accuracy is reported, and --min-catch leaves out the raters below it.
    """
    params = dict(locals())  # first, so it holds the parameters only
    from dkt.evaluation.study_run import FitCallbacks, FitRequest, fit_study
    from dkt_cli.study_report import print_catches, print_fit

    callbacks = FitCallbacks(
        note=lambda message: err.print(f"[yellow]note:[/] {escape(message)}"),
        screened=lambda screen: print_catches(screen, table=not json_output),
    )
    try:
        study = fit_study(request_from(FitRequest, params), callbacks)
    except DktError as exc:
        fail(str(exc))
    if json_output:
        print_json(study.to_dict())
    else:
        print_fit(study.result, judgments.name)


@app.command("serve")
def serve(
    design: Design,
    images: Images,
    out: Out = Path("judgments.csv"),
    host: Host = "127.0.0.1",
    port: Port = STUDY_PORT,
    token: Token = None,
    catch_rate: CatchRate = 0.1,
    seed: ServeSeed = 0,
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
    params = dict(locals())  # first, so it holds the parameters only
    from dkt.serve.launch import StudyServeRequest, study_server

    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(study_server(request_from(StudyServeRequest, params)))
        except DktError as exc:
            fail(str(exc))
        if server.study.note:
            err.print(f"[yellow]note:[/] {server.study.note}")
        info = server.study.summary()
        err.print(
            f"study: {info['trials']} trials per rater ({info['design_trials']} from "
            f"{design.name} + {info['catch_trials']} catch); {out}: {info['judgments']} "
            f"answers from {info['raters']} rater(s) so far"
        )
        link = server.url + ("?token=TOKEN (your --token)" if token else "")
        err.print(f"open {link} in a browser; Ctrl+C stops (answers are saved)", soft_wrap=True)
        warn_if_open(server.warning)
        server.run()
