"""The ``dkt`` command-line application: one module per subcommand."""

from __future__ import annotations

from typing import Annotated

import typer

from dkt._version import __version__
from dkt_cli import (
    benchmark,
    data,
    demo,
    doctor,
    evaluate,
    export,
    harmonize,
    info,
    serve,
    study,
    train,
)

app = typer.Typer(
    name="dkt",
    help=(
        "Painterly image harmonization with DKTNet: restyle an object pasted into a painting "
        "so it matches the painting's colours, strokes and texture, leaving the painting untouched."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.command("harmonize")(harmonize.harmonize)
app.command("demo")(demo.demo)
app.command("info")(info.info)
app.command("train")(train.train)
app.command("evaluate")(evaluate.evaluate)
app.add_typer(study.app, name="study")
app.add_typer(data.app, name="data")
app.command("export")(export.export)
app.command("benchmark")(benchmark.benchmark)
app.command("doctor")(doctor.doctor)
app.command("serve")(serve.serve)


def _print_version(value: bool) -> None:
    """Eager, so ``dkt --version`` answers before Typer asks for a command."""
    if value:
        typer.echo(f"dkt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    pass


def main() -> None:
    app()
