"""The ``dkt`` command-line application: one module per subcommand."""

from __future__ import annotations

import typer

from dkt.cli import benchmark, data, demo, evaluate, export, harmonize, info, study, train

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


def main() -> None:
    app()
