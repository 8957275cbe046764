"""A tiny user study on disk: a design from ``dkt study pairs`` and 32x32 result images.

Every image is one flat colour that no other image has, so a test can tell from the bytes a
page shows which method's result of which item it is looking at.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from dkt_cli.app import app

METHODS = ("dkt", "reinhard", "adain")
ITEMS = tuple(f"k{i}" for i in range(6))  # 3 pairs x 6 items = 18 trials, + 2 catch = 20


def _png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, format="PNG")
    return buf.getvalue()


def make_study(
    root: Path, methods: tuple[str, ...] = METHODS, items: tuple[str, ...] = ITEMS
) -> tuple[Path, Path, dict[bytes, tuple[str, str]]]:
    """``(design.csv, images folder, png bytes -> (method, item))`` under ``root``."""
    images = root / "images"
    owners: dict[bytes, tuple[str, str]] = {}
    for m, method in enumerate((*methods, "composite")):
        (images / method).mkdir(parents=True)
        for i, item in enumerate(items):
            data = _png((40 * m + 10, 30 * i + 5, 200 - 20 * m))
            (images / method / f"{item}.png").write_bytes(data)
            owners[data] = (method, item)
    assert len(owners) == (len(methods) + 1) * len(items)
    design = root / "design.csv"
    result = CliRunner().invoke(
        app,
        ["study", "pairs", "--methods", ",".join(methods), "--items", ",".join(items),
         "-o", str(design)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return design, images, owners


def read_log(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))
