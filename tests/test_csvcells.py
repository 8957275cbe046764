"""``dkt.csvcells``: no CSV cell dkt writes runs as a spreadsheet formula, and every cell
reads back as it was; and every CSV writer in dkt goes through it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from dkt.csvcells import guard_cell, guard_row, read_cell, read_row

ROOT = Path(__file__).resolve().parents[1]

FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)",
            "\t=1", "\r=1", "'=1", "''+x", "'-"]  # fmt: skip
PLAIN = ["dkt", "", "k1", "a=b", " =1", "'abc", "'", "-", "0", "-0.25", "+3", "1e-05", "-inf"]


@pytest.mark.parametrize("value", [*FORMULAS, "-", "-inf"])
def test_a_cell_a_spreadsheet_would_run_is_written_as_text(value: str) -> None:
    cell = guard_cell(value)
    assert cell == "'" + value


@pytest.mark.parametrize("value", ["dkt", "", "a=b", " =1", "'abc", "0", "-0.25", "+3", "1e-05"])
def test_plain_text_and_numbers_are_written_as_they_are(value: str) -> None:
    assert guard_cell(value) == value


@pytest.mark.parametrize("value", [*FORMULAS, *PLAIN])
def test_every_cell_reads_back_as_it_was_through_a_csv_file(value: str) -> None:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["name", "value", "count"])
    writer.writerow(guard_row(["x", value, 3]))
    [row] = csv.DictReader(io.StringIO(buf.getvalue()))
    assert read_row(row) == {"name": "x", "value": value, "count": "3"}


def test_a_hand_written_quote_is_read_as_it_stands() -> None:
    assert read_cell("'abc") == "'abc" and read_cell("'") == "'" and read_cell("'-1") == "'-1"


def test_every_csv_writer_in_dkt_guards_its_cells() -> None:
    """A new CSV writer that skips the guard fails here by file name."""
    writers = []
    for folder in ("dkt", "dkt_cli"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if re.search(r"csv\.(writer|DictWriter)\(", text):
                writers.append(path.relative_to(ROOT).as_posix())
                assert "dkt.csvcells import guard_" in text, path
    assert len(writers) >= 4, writers  # the design, the log, the evaluation table, a manifest
