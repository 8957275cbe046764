"""Help texts that flow: a command's docstring is wrapped at 100 columns in the source, and
Typer (rich mode) keeps every newline after the first paragraph, so ``--help`` broke
sentences mid-line at whatever width the terminal had.

Each prose paragraph is joined into one line here, and rich wraps it to the terminal. A
paragraph whose lines are all indented is an example block and keeps its lines (a command
that goes on over two lines ends the first with `` \\``, as in a shell).
"""

from __future__ import annotations

import inspect
from typing import Any


def flow(text: str) -> str:
    """``text`` with each prose paragraph on one line; indented blocks as they are."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(_flow_paragraph(paragraph) for paragraph in paragraphs)


def _flow_paragraph(paragraph: str) -> str:
    lines = paragraph.split("\n")
    if all(line.startswith((" ", "\t")) for line in lines) or paragraph.startswith("\b"):
        return paragraph
    return " ".join(line.strip() for line in lines)


def flow_command_help(command: Any) -> Any:
    """Flow the help of a Click command and of every command below it; returns it."""
    if command.help:
        command.help = flow(command.help)
    for sub in getattr(command, "commands", {}).values():
        flow_command_help(sub)
    return command
