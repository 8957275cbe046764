"""``dkt info``: what a model file is, without running it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

import dktnet
from dkt_cli.console import err, fail, human_bytes, print_json
from dktnet.checkpoint import read_checkpoint_info
from dktnet.errors import DktError


def info(
    model: Annotated[
        Path, typer.Argument(help="Model file.", show_default="bundled model", metavar="MODEL")
    ] = dktnet.BUNDLED_MODEL,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Show a model's config, parameter count, file size, sha256 and training provenance."""
    try:
        details = read_checkpoint_info(model)
    except DktError as exc:
        fail(str(exc))
    record = {
        "path": str(details.path),
        "format_version": details.format_version,
        "parameters": details.parameter_count,
        "tensors": details.tensor_count,
        "file_size": details.file_size,
        "sha256": details.sha256,
        "config": details.config.to_dict(),
        "provenance": details.provenance,
    }
    if json_output:
        print_json(record)
        return
    table = Table(show_header=False, title=str(details.path), title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("parameters", f"{details.parameter_count:,}")
    table.add_row("file size", human_bytes(details.file_size))
    table.add_row("sha256", details.sha256)
    table.add_row("format", f"dkt-dktnet v{details.format_version}")
    for key, value in details.config.to_dict().items():
        table.add_row(f"config.{key}", json.dumps(value))
    for key, value in details.provenance.items():
        table.add_row(f"trained.{key}", value if isinstance(value, str) else json.dumps(value))
    err.print(table)
