"""Crops around each object, every method side by side: how the model card's crops are made.

A whole composite scaled into a contact-sheet cell hides what matters (strokes, speckle,
edges, colour casts on the object); this crops each result to the object's bounding box
plus a margin of painting, at full resolution, and lays the methods out in columns.

    python scripts/object_crops.py --composites C --masks C --composite-pattern '{key}_comp' \\
        --mask-pattern '{key}_mask' --results DIR/reinhard DIR/new ... --keys k1,k2 -o crops.png

``--results`` are folders of ``<key>.png`` as ``dkt evaluate --save-outputs DIR`` writes
them (``DIR/<method>/<key>.png``); the composite is the first column.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from dkt.demo.figures import contact_sheet
from dkt.imaging.imageio import read_image, read_mask

#: Painting kept around the object's box, as a fraction of the box's longer side.
MARGIN = 0.15


def object_box(mask: np.ndarray, margin: float = MARGIN) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the mask's non-zero pixels, grown by ``margin``."""
    ys, xs = np.nonzero(mask > 0)
    if ys.size == 0:
        raise ValueError("the mask selects nothing")
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    grow = round(margin * int(max(bottom - top, right - left)))
    h, w = mask.shape[:2]
    return max(top - grow, 0), min(bottom + grow, h), max(left - grow, 0), min(right + grow, w)


def _find(folder: Path, pattern: str, key: str) -> Path:
    matches = sorted(folder.glob(pattern.format(key=key) + ".*"))
    if not matches:
        raise SystemExit(f"{folder}: no file for {pattern.format(key=key)}.*")
    return matches[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--composites", type=Path, required=True)
    parser.add_argument("--masks", type=Path, required=True)
    parser.add_argument("--composite-pattern", default="{key}")
    parser.add_argument("--mask-pattern", default="{key}")
    parser.add_argument("--results", type=Path, nargs="+", required=True)
    parser.add_argument("--keys", required=True, help="comma-separated composite keys")
    parser.add_argument("--cell-height", type=int, default=320)
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    keys = [k for k in args.keys.split(",") if k]
    rows = []
    for key in keys:
        composite = read_image(_find(args.composites, args.composite_pattern, key))
        mask = read_mask(_find(args.masks, args.mask_pattern, key))
        top, bottom, left, right = object_box(np.asarray(mask))
        row = [composite[top:bottom, left:right]]
        for folder in args.results:
            result = read_image(_find(folder, "{key}", key))
            row.append(result[top:bottom, left:right])
        rows.append(row)
    labels = ["composite", *(folder.name for folder in args.results)]
    sheet = contact_sheet(rows, labels, keys, cell_height=args.cell_height)
    Image.fromarray(sheet).save(args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
