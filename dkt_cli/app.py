"""The ``dkt`` command-line application: one module per subcommand, imported when it runs.

``dkt --help`` and ``dkt --version`` must answer at once, and a subcommand's module may import
torch, the training code or the evaluation code. So the root group knows each subcommand
only by name, module and one-line summary (:data:`COMMANDS`), lists them from that table, and
imports a module only when its command is invoked or asked for its own ``--help``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from dkt._version import __version__
from dkt_cli.helptext import flow_command_help


@dataclass(frozen=True)
class Subcommand:
    """A subcommand known before its module is imported."""

    module: str
    #: The command function, or the ``typer.Typer`` of a command group.
    attribute: str
    #: The line ``dkt --help`` shows: the first line of the command's own help (a test checks).
    summary: str
    #: Options whose value may be left out, with the value that means (Typer cannot declare
    #: them): ``dkt harmonize --ray`` is ``--ray local``.
    optional_values: tuple[tuple[str, str], ...] = ()


COMMANDS: dict[str, Subcommand] = {
    "harmonize": Subcommand(
        "harmonize", "harmonize",
        "Harmonize one composite (COMPOSITE --mask MASK -o OUT), a cut-out pasted on a painting "
        "(--painting --object), or whole folders.",
        (("--ray", "local"),),
    ),
    "demo": Subcommand(
        "demo", "demo",
        "Harmonize a generated sample and write composite | mask | result side by side.",
    ),
    "info": Subcommand(
        "info", "info",
        "Show what a model file records: config, parameters, size, sha256, provenance.",
    ),
    "train": Subcommand(
        "train", "train",
        "Train DKTNet: style, content, adversarial, consistency and reconstruction losses.",
    ),
    "evaluate": Subcommand(
        "evaluate", "evaluate",
        "Score methods side by side: style, content and background metrics, FID/KID, timing.",
    ),
    "export": Subcommand(
        "export", "export",
        "Export a checkpoint to ONNX or a TensorRT engine (dkt harmonize --model runs either).",
    ),
    "benchmark": Subcommand(
        "benchmark", "benchmark",
        "Time backends on the same random batches, taking turns run by run: median, spread, "
        "images/s, GFLOP per image and the GFLOP/s achieved, and peak memory.",
    ),
    "doctor": Subcommand(
        "doctor", "doctor",
        "Check the environment: versions, CUDA devices, threads, pretrained weights, bundled "
        "model.",
    ),
    "serve": Subcommand(
        "serve", "serve",
        "Serve the harmonizer over HTTP, with a web page to paste and harmonize in a browser.",
    ),
    "study": Subcommand(
        "study", "app",
        "User studies: balanced pairwise comparisons, a browser study page, Bradley-Terry scores.",
    ),
    "data": Subcommand("data", "app", "Prepare data sets for training and evaluation."),
}  # fmt: skip


def load_command(name: str) -> Any:
    """The Click command of a subcommand, built from its module (imported here, once)."""
    spec = COMMANDS[name]
    target = getattr(importlib.import_module(f"dkt_cli.{spec.module}"), spec.attribute)
    holder = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    if isinstance(target, typer.Typer):
        # Added under a parent, as the eager app did: a group of one command stays a group.
        holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
        holder.callback()(lambda: None)  # a parent, so the one command keeps its name
    # Both branches give the holder a sub-command, so it is a group (what get_command
    # would return too, typed as the group it is).
    command = typer.main.get_group(holder).commands[name]
    command.name = name
    return flow_command_help(command)  # wrapped docstrings become text that flows


def fill_optional_values(args: list[str]) -> list[str]:
    """``args`` with the implied value after an optional-value option given without one.

    An option takes no value when it ends the line or the next word is another option.
    """
    if not args or args[0] not in COMMANDS:
        return args
    implied = dict(COMMANDS[args[0]].optional_values)
    filled = [args[0]]
    for i, word in enumerate(args[1:], start=1):
        filled.append(word)
        following = args[i + 1] if i + 1 < len(args) else None
        if word in implied and (following is None or following.startswith("-")):
            filled.append(implied[word])
    return filled


class LazyGroup(TyperGroup):
    """A root group that lists :data:`COMMANDS` from the table and loads one when it runs."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self._listing = False
        self._loaded: dict[str, Any] = {}

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        if self._listing:  # the root's own --help: a name and a line are all it shows
            return typer.core.TyperCommand(cmd_name, help=spec.summary, short_help=spec.summary)
        if cmd_name not in self._loaded:
            self._loaded[cmd_name] = load_command(cmd_name)
        return self._loaded[cmd_name]

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, fill_optional_values(args))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False


app = typer.Typer(
    name="dkt",
    cls=LazyGroup,
    help=(
        "Painterly image harmonization with DKTNet: restyle an object pasted into a painting "
        "so it matches the painting's colours, strokes and texture, leaving the painting untouched."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


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
