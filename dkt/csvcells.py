"""CSV cells that a spreadsheet shows as text, and that dkt reads back as they were.

Every CSV dkt writes (a study design, a judgments log, an evaluation table, a data set's
manifest) holds names that came from someone else: items, methods, file names. Opened in
a spreadsheet, a cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return is run as a formula (``=HYPERLINK(...)``, ``=cmd|...``), so :func:`guard_cell`
writes such a cell with a ``'`` in front, which spreadsheets take as "this is text". Plain
numbers (``-0.25``, ``+3``) are left alone: they are no formula, and a table of scores
must stay numbers.

:func:`read_cell` undoes exactly that, and nothing else: a value already starting with
quotes before one of those characters gets one more quote when written, so every value
comes back as it was written, and a hand-written ``'abc`` stays ``'abc``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Quotes, then a character that makes a spreadsheet read the cell as a formula.
_RISKY = re.compile(r"'*[=+\-@\t\r]")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _guarded(text: str) -> bool:
    """Whether ``text`` is written with a quote in front."""
    return _RISKY.match(text) is not None and _NUMBER.fullmatch(text) is None


def guard_cell(value: object) -> str:
    """``value`` as a CSV cell no spreadsheet runs as a formula."""
    text = str(value)
    return "'" + text if _guarded(text) else text


def guard_row(values: Iterable[object]) -> list[str]:
    return [guard_cell(v) for v in values]


def read_cell(text: str) -> str:
    """A cell as :func:`guard_cell` was given it."""
    if text.startswith("'") and _guarded(text[1:]):
        return text[1:]
    return text


def read_row(row: Mapping[Any, Any]) -> dict[Any, Any]:
    """A ``csv.DictReader`` row with every cell read back (a missing cell stays ``None``)."""
    return {k: v if not isinstance(v, str) else read_cell(v) for k, v in row.items()}
