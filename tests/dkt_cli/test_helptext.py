"""Every command's ``--help`` flows: no sentence broken by a newline of the source's wrapping."""

from __future__ import annotations

import itertools
import re

import pytest
from typer.testing import CliRunner

from dkt_cli.app import COMMANDS, app, load_command
from dkt_cli.helptext import flow

runner = CliRunner()
#: So wide that rich wraps nothing: every line break left is one the help text holds.
VERY_WIDE = {"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"}
#: A box row that continues the row above it: the name columns are blank.
_CONTINUED_ROW = re.compile(r"^│ {5,}\S")


def _command_paths() -> list[list[str]]:
    paths: list[list[str]] = [[]]
    for name in COMMANDS:
        command = load_command(name)
        paths.append([name])
        paths += [[name, sub] for sub in getattr(command, "commands", {})]
    return paths


def _broken_lines(help_text: str) -> list[str]:
    """Lines of prose that a hard newline split: outside the boxes, two non-blank lines in
    a row where the first is not a shell line continued with ``\\``; inside them, a row
    that carries on the text of the row above."""
    broken = []
    for line, following in itertools.pairwise(help_text.splitlines()):
        both_prose = all(text.strip() and not _in_box(text) for text in (line, following))
        if (both_prose and not line.rstrip().endswith("\\")) or _CONTINUED_ROW.match(following):
            broken.append(f"{line.strip()} / {following.strip()}")
    return broken


def _in_box(line: str) -> bool:
    return line.lstrip().startswith(("╭", "│", "╰"))


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(["dkt", *p]))
def test_help_text_flows(path: list[str]) -> None:
    """Issue 26: docstrings wrapped at 100 columns came out broken mid-sentence."""
    result = runner.invoke(app, [*path, "--help"], env=VERY_WIDE)
    assert result.exit_code == 0, result.output
    assert _broken_lines(result.stdout) == []


def test_flow_joins_prose_and_keeps_example_blocks() -> None:
    text = """First line
    goes on.

    Examples:

      dkt harmonize a.png --mask m.png -o out.png \\
        --strength 0.5
    """
    assert flow(text) == (
        "First line goes on.\n\nExamples:\n\n"
        "  dkt harmonize a.png --mask m.png -o out.png \\\n    --strength 0.5"
    )
