"""Tests for ``dkt_cli.console``: what a human-readable line may carry to a terminal or a log."""

from __future__ import annotations

import io

import pytest
from rich.table import Table

from dkt_cli.console import EscapingConsole, printable


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("a\x1b[2Jb.png", "a\\x1b[2Jb.png"),  # clears the screen when printed raw
        ("a.png\nerror: forged", "a.png\\nerror: forged"),  # a second, forged log line
        ("a\rb", "a\\rb"),  # overprints the start of the line
        ("a\x07\x7f\x9bz", "a\\x07\\x7f\\x9bz"),  # bell, DEL and the C1 CSI
        ("evil\u202egnp.exe", "evil\\u202egnp.exe"),  # bidi override: reads as evilexe.png
        ("a\u2028b", "a\\u2028b"),  # a line separator some viewers break on
        ("bad\udcffname", "bad\\udcffname"),  # an undecodable byte, as os.fsdecode keeps it
    ],
)
def test_control_characters_are_escaped(text: str, shown: str) -> None:
    assert printable(text) == shown


def test_real_names_are_left_as_they_are() -> None:
    for name in ("Öl auf Leinwand.png", "日本の絵.jpg", "a\u00a0b c.png", "C:\\x\\y.png"):
        assert printable(name) == name


def test_newlines_may_be_kept_for_text_of_several_lines() -> None:
    assert printable("one\x1b[0m\ntwo", keep_newlines=True) == "one\\x1b[0m\ntwo"


def test_the_console_escapes_what_it_renders_tables_included() -> None:
    """The safety net: a string that reaches the console unescaped still prints no escape."""
    buffer = io.StringIO()
    console = EscapingConsole(file=buffer, force_terminal=False, width=200, highlight=False)
    table = Table()
    table.add_column("item")
    table.add_row("x\x1b]0;owned\x07.png")
    console.print(table)
    console.print("y\x1b[2J.png", markup=False)
    out = buffer.getvalue()
    assert "\x1b" not in out and "\x07" not in out
    assert "x\\x1b]0;owned\\x07.png" in out and "y\\x1b[2J.png" in out
