"""Reading the training collections: paintings, and photo objects with their masks.

Paintings come from a folder or from a CSV list such as WikiArt's split files. Objects
come from photos plus one of three common annotation layouts: a folder of instance mask
images, a COCO instances JSON (polygons and RLE) or YOLO segmentation label files. All of
them end up as :class:`~training.data.Foreground` values that
:class:`~training.data.CompositeDataset` draws from, so the dataset never needs to know
which layout the data came in.

Objects are filtered by how much of their photo they cover (``ratio``, 5% to 30% by
default): tiny objects turn into a few blurred pixels once pasted at training size, and
huge ones (a table filling the frame) are backgrounds rather than objects. Of the 230
instance masks in the project's shared collection (``../shared/data/photos/masks``), 126
pass the default filter.

Everything here is checked when it is read, with errors naming the file and the line or
annotation, so a broken list fails before a long run starts rather than hours into it.
Missing photos or paintings are not fatal: they are counted and named in one warning.
"""

from __future__ import annotations

import csv as csvlib
import json
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from dkt.errors import ImageInputError, PathError
from dkt.imaging.imageio import IMAGE_SUFFIXES, check_header, read_mask
from training.data import (
    Foreground,
    PolygonMask,
    RleMask,
    _image_files,
    _pycocotools_mask,
    _require_dir,
    find_foregrounds,
    find_paintings,
)
from training.defaults import OBJECT_RATIO

__all__ = [
    "DEFAULT_RATIO",
    "PATH_COLUMNS",
    "bad_headers",
    "drop_bad",
    "load_foregrounds",
    "load_paintings",
    "polygon_fraction",
]

#: Objects covering less or more of their photo than this are left out by default.
DEFAULT_RATIO: tuple[float, float] = OBJECT_RATIO

#: Header names (any case) that mark the column holding painting paths in a CSV list.
PATH_COLUMNS: tuple[str, ...] = ("path", "file", "filename", "image")

# How many names a warning about missing files shows before "and N more".
_SHOWN = 5


def _warn_some(what: str, names: Sequence[str], tail: str) -> None:
    shown = ", ".join(names[:_SHOWN])
    more = f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else ""
    warnings.warn(f"{len(names)} {what} {tail}: {shown}{more}", UserWarning, stacklevel=3)


# ------------------------------------------------------------------ paintings


def load_paintings(
    folder: Path | None = None, csv: Path | None = None, *, root: Path | None = None
) -> list[Path]:
    """The painting files of a folder (recursive, sorted) or of a CSV list (in its order).

    A CSV list holds one painting per row: the column named ``path``, ``file``,
    ``filename`` or ``image`` in a header, or else the first column (WikiArt's split
    files, ``Style/artist_title.jpg,label``, have no header). Paths are relative to
    ``root``, by default the CSV's folder. Listed files that do not exist are left out
    with one warning naming how many and the first few, since big scraped collections
    always lose some; a list with none left raises :class:`~dkt.errors.PathError`
    naming it. A painting listed twice is drawn twice as often.
    """
    if (folder is None) == (csv is None):
        raise ValueError("give exactly one of a paintings folder and a paintings CSV")
    if folder is not None:
        if root is not None:
            raise ValueError("root only applies to a paintings CSV")
        return find_paintings(Path(folder))
    return _paintings_from_csv(Path(csv), None if root is None else Path(root))  # type: ignore[arg-type]


def _read_csv_rows(listing: Path) -> list[tuple[int, list[str]]]:
    if not listing.is_file():
        raise PathError(listing, "no such file" if not listing.exists() else "is not a file")
    try:
        with open(listing, encoding="utf-8-sig", newline="") as fh:
            reader = csvlib.reader(fh)
            return [(reader.line_num, row) for row in reader if any(c.strip() for c in row)]
    except UnicodeDecodeError:
        raise PathError(listing, "not UTF-8 text") from None
    except csvlib.Error as exc:
        raise PathError(listing, f"not valid CSV ({exc})") from None
    except OSError as exc:
        raise PathError(listing, f"cannot read it ({exc.strerror})") from None


def _path_column(first: list[str], base: Path) -> tuple[int, bool]:
    """Which column holds the paths, and whether the first row is a header.

    Without a known column name, a first cell that neither looks like an image file nor
    exists is taken for a header (``painting,style``): reading it as a painting would
    only produce a confusing "missing file" warning.
    """
    names = [cell.strip().lower() for cell in first]
    for name in PATH_COLUMNS:
        if name in names:
            return names.index(name), True
    cell = first[0].strip()
    looks_like_file = Path(cell).suffix.lower() in IMAGE_SUFFIXES or (base / cell).is_file()
    return 0, not looks_like_file


def _paintings_from_csv(listing: Path, root: Path | None) -> list[Path]:
    base = listing.parent if root is None else _require_dir(root, "paintings root")
    rows = _read_csv_rows(listing)
    if not rows:
        raise PathError(listing, "lists no paintings")
    column, has_header = _path_column(rows[0][1], base)
    if has_header:
        rows = rows[1:]
    found: list[Path] = []
    missing: list[str] = []
    for line, row in rows:
        value = row[column].strip() if column < len(row) else ""
        if not value:
            raise PathError(listing, f"line {line}: no painting path in column {column + 1}")
        path = base / value
        if path.is_file():
            found.append(path)
        else:
            missing.append(value)
    if missing:
        _warn_some("painting(s)", missing, f"listed in {listing} are not under {base} (ignored)")
    if not found:
        raise PathError(listing, f"none of the {len(rows)} listed paintings exist under {base}")
    return found


# ------------------------------------------------------------------ foregrounds


def load_foregrounds(
    photos: Path,
    *,
    masks: Path | None = None,
    coco: Path | None = None,
    yolo: Path | None = None,
    ratio: tuple[float, float] | None = DEFAULT_RATIO,
    unmatched: list[Path] | None = None,
) -> list[Foreground]:
    """Objects of the photos under ``photos``, with masks from exactly one source.

    * ``masks``: a folder of instance mask images, paired by name as in
      :func:`~training.data.find_foregrounds` (``<photo>_objNN.png``).
    * ``coco``: a COCO instances JSON; ``file_name`` is relative to ``photos``. Polygons
      and RLE (compressed or not, crowd regions included) are all used.
    * ``yolo``: a folder of YOLO segmentation labels, ``<photo stem>.txt`` at the photo's
      relative place (``labels/train/x.txt`` for ``photos/train/x.jpg``) or anywhere with
      its stem; one object per line, ``class x1 y1 x2 y2 ...`` in fractions of the photo.
      Detection-only lines (a class and a box, 5 values) are ignored with a count.

    ``ratio=(lo, hi)`` keeps objects whose mask covers ``lo..hi`` of their photo (``None``
    keeps all). It costs no image decoding for annotations: COCO's ``area`` (else the
    annotation's own) and the area of YOLO outlines (:func:`polygon_fraction`). Mask images are
    read once here for their area; one that cannot be read is kept, so that the dataset's
    ``skip_bad`` decides what happens to it, like for any other unreadable file.

    Masks, label files or COCO images without a photo are ignored with one warning and
    appended to ``unmatched`` when a list is given. Returns objects sorted by photo, then
    in the order of their source. Raises :class:`~dkt.errors.PathError` naming the file
    (and line or annotation) for anything unreadable or malformed, or when no object is
    left; :class:`ValueError` for a wrong combination of arguments.
    """
    sources = (("masks", masks), ("coco", coco), ("yolo", yolo))
    given = [name for name, value in sources if value is not None]
    if len(given) != 1:
        raise ValueError(
            "give exactly one mask source: masks (a folder of mask images), coco (an "
            f"instances JSON) or yolo (a folder of label files); got {', '.join(given) or 'none'}"
        )
    if ratio is not None:
        ratio = _checked_ratio(ratio)
    photos = Path(photos)
    source: Path
    if masks is not None:
        source = Path(masks)
        candidates = _mask_foregrounds(photos, source, unmatched, measure=ratio is not None)
    elif coco is not None:
        source = Path(coco)
        candidates = _coco_foregrounds(photos, source, unmatched)
    else:
        source = Path(yolo)  # type: ignore[arg-type]
        candidates = _yolo_foregrounds(photos, source, unmatched)
    if ratio is None:
        return [fg for fg, _ in candidates]
    lo, hi = ratio
    kept = [fg for fg, frac in candidates if frac is None or lo <= frac <= hi]
    if not kept:
        raise PathError(
            source,
            f"none of its {len(candidates)} objects covers {lo:g} to {hi:g} of its photo "
            "(widen the ratio range)",
        )
    return kept


def _checked_ratio(ratio: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in ratio)
    except (TypeError, ValueError):
        raise ValueError(f"ratio must be two numbers (low, high), got {ratio!r}") from None
    if not 0.0 <= lo <= hi <= 1.0:
        raise ValueError(f"ratio must satisfy 0 <= low <= high <= 1, got {ratio!r}")
    return lo, hi


#: Side of the grid that outlines in photo fractions (YOLO) are rasterised on to measure
#: their area: 0.4% off the full-size masks at most on the shared collection.
AREA_GRID = 256


def polygon_fraction(
    polygons: Sequence[Sequence[float]], frame: tuple[int, int] | None = None
) -> float:
    """Fraction of the frame that flat ``x0, y0, x1, y1, ...`` polygons cover together.

    Rasterised with pycocotools (as the masks themselves will be), not the shoelace
    formula: Ultralytics joins the parts of a multi-part COCO object into one outline
    that doubles back on itself, and there the shoelace sum cancels whole parts (on the
    shared YOLO labels it was off by up to 0.23 of the photo). ``frame=None`` means
    coordinates are fractions of the photo, measured on an ``AREA_GRID`` square grid.
    """
    if any(len(poly) < 6 or len(poly) % 2 for poly in polygons):
        raise ValueError("each polygon needs x y pairs for at least 3 points")
    coco_mask = _pycocotools_mask()  # it reads 4 numbers as a box, hence the check above
    if frame is None:
        height = width = AREA_GRID
        polys = [[v * AREA_GRID for v in poly] for poly in polygons]
    else:
        (height, width), polys = frame, [list(poly) for poly in polygons]
    rle = coco_mask.merge(coco_mask.frPyObjects(polys, height, width))
    return float(coco_mask.area(rle)) / (height * width)


# -------------------------------------------------------------- mask images


def _mask_foregrounds(
    photos: Path, masks: Path, unmatched: list[Path] | None, *, measure: bool
) -> list[tuple[Foreground, float | None]]:
    pairs = find_foregrounds(photos, masks, unmatched=unmatched)
    if not measure:
        return [(fg, None) for fg in pairs]
    out: list[tuple[Foreground, float | None]] = []
    for fg in pairs:
        try:
            frac: float | None = float(np.mean(read_mask(fg.mask) >= 0.5))  # type: ignore[arg-type]
        except ImageInputError:
            frac = None  # the dataset reports (or skips) it like any unreadable file
        out.append((fg, frac))
    return out


# -------------------------------------------------------------------- COCO


def _load_json(path: Path) -> Any:
    if not path.is_file():
        raise PathError(path, "no such file" if not path.exists() else "is not a file")
    try:
        return json.loads(path.read_bytes())
    except OSError as exc:
        raise PathError(path, f"cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise PathError(path, "not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise PathError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _is_number(value: object) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)  # Python's JSON reader accepts NaN and Infinity
    )


def _coco_images(path: Path, doc: dict[str, Any]) -> dict[object, tuple[str, int, int]]:
    """image id -> (file_name, height, width)."""
    images: dict[object, tuple[str, int, int]] = {}
    for n, img in enumerate(doc["images"]):
        label = f"images[{n}]"
        if not isinstance(img, dict) or "id" not in img:
            raise PathError(path, f"{label}: expected an object with id, file_name, width, height")
        label = f"image {img['id']}"
        name, width, height = img.get("file_name"), img.get("width"), img.get("height")
        if not isinstance(name, str) or not name.strip():
            raise PathError(path, f"{label}: missing 'file_name'")
        if not (_positive_int(width) and _positive_int(height)):
            raise PathError(path, f"{label}: width and height must be positive integers")
        images[img["id"]] = (name, height, width)
    return images


def _coco_polygons(path: Path, where: str, segm: list[Any]) -> tuple[tuple[float, ...], ...]:
    """The annotation's polygons; parts with fewer than 3 points (COCO has some) dropped."""
    polygons = []
    for part in segm:
        if not isinstance(part, list) or not all(_is_number(v) for v in part):
            raise PathError(path, f"{where}: a polygon must be a list of numbers")
        if len(part) % 2:
            raise PathError(path, f"{where}: a polygon has an odd count of coordinates")
        if len(part) >= 6:
            polygons.append(tuple(float(v) for v in part))
    return tuple(polygons)


def _coco_rle(path: Path, where: str, segm: dict[str, Any], coco_mask: Any) -> RleMask:
    size, counts = segm.get("size"), segm.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(_positive_int(v) for v in size)):
        raise PathError(path, f"{where}: RLE 'size' must be [height, width]")
    height, width = size
    if isinstance(counts, list):
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in counts):
            raise PathError(path, f"{where}: RLE counts must be non-negative integers")
        if sum(counts) != height * width:  # checked before pycocotools sees the runs
            raise PathError(
                path,
                f"{where}: RLE runs cover {sum(counts)} pixels, but the image is {width}x{height}",
            )
        counts = coco_mask.frPyObjects(segm, height, width)["counts"].decode("ascii")
    if not isinstance(counts, str):
        raise PathError(path, f"{where}: RLE counts must be a list or a string")
    return RleMask(counts=counts, frame=(height, width), file=path, where=where)


def _coco_foregrounds(
    photos: Path, path: Path, unmatched: list[Path] | None
) -> list[tuple[Foreground, float | None]]:
    coco_mask = _pycocotools_mask()
    photos = _require_dir(photos, "photo")
    doc = _load_json(path)
    if not isinstance(doc, dict):
        raise PathError(path, "not a COCO instances file (expected a JSON object)")
    for key in ("images", "annotations"):
        if not isinstance(doc.get(key), list):
            raise PathError(path, f"not a COCO instances file: no '{key}' list")
    images = _coco_images(path, doc)
    on_disk = set(_image_files(photos))

    found: list[tuple[Foreground, float | None]] = []
    missing: dict[str, None] = {}  # ordered set of file names
    empty = 0
    for n, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict):
            raise PathError(path, f"annotations[{n}]: expected an object")
        where = f"annotation {ann['id']}" if "id" in ann else f"annotations[{n}]"
        image_id, segm = ann.get("image_id"), ann.get("segmentation")
        if not isinstance(image_id, (int, str)) or image_id not in images:
            raise PathError(path, f"{where}: image_id {image_id!r} is not among the images")
        name, height, width = images[image_id]
        photo = photos / name
        if photo not in on_disk:
            missing[name] = None
            continue
        source: PolygonMask | RleMask
        if isinstance(segm, list):
            polygons = _coco_polygons(path, where, segm)
            if not polygons:
                empty += 1
                continue
            source = PolygonMask(polygons, frame=(height, width), file=path, where=where)
        elif isinstance(segm, dict):
            source = _coco_rle(path, where, segm, coco_mask)
        else:
            raise PathError(path, f"{where}: 'segmentation' must be polygons or an RLE object")
        if _is_number(ann.get("area")):
            frac = float(ann["area"]) / (height * width)  # COCO's own, in the image's pixels
        elif isinstance(source, PolygonMask):
            frac = polygon_fraction(source.polygons, source.frame)
        else:
            fh, fw = source.frame
            frac = float(coco_mask.area({"size": [fh, fw], "counts": source.counts})) / (fh * fw)
        found.append((Foreground(image=photo, mask=source), frac))

    if missing:
        if unmatched is not None:
            unmatched.extend(photos / name for name in missing)
        _warn_some(
            "image(s)", list(missing), f"of {path} are not under {photos} (annotations ignored)"
        )
    if empty:
        warnings.warn(
            f"{empty} annotation(s) in {path} have no polygon of 3 or more points (ignored)",
            UserWarning,
            stacklevel=3,
        )
    if not found:
        raise PathError(path, f"no annotation belongs to a photo under {photos}")
    found.sort(key=lambda item: str(item[0].image))  # stable: annotation order per photo
    return found


# -------------------------------------------------------------------- YOLO


def _label_files(labels: Path) -> list[Path]:
    return sorted(
        p
        for p in labels.rglob("*.txt")
        if not any(part.startswith(".") for part in p.relative_to(labels).parts) and p.is_file()
    )


def _yolo_lines(label: Path) -> Iterable[tuple[int, list[str]]]:
    try:
        text = label.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise PathError(label, "not UTF-8 text") from None
    except OSError as exc:
        raise PathError(label, f"cannot read it ({exc.strerror})") from None
    for n, line in enumerate(text.splitlines(), start=1):
        values = line.split()
        if values:
            yield n, values


def _yolo_polygon(label: Path, line: int, values: list[str]) -> tuple[float, ...]:
    where = f"line {line}"
    try:
        int(values[0])
        coords = tuple(float(v) for v in values[1:])
    except ValueError:
        raise PathError(
            label, f"{where}: expected a class id then x y pairs, got {' '.join(values[:3])} ..."
        ) from None
    if len(coords) % 2 or len(coords) < 6:
        raise PathError(
            label,
            f"{where}: expected a class id then x y pairs for at least 3 points, "
            f"got {len(values)} values",
        )
    if not all(math.isfinite(v) for v in coords):
        raise PathError(label, f"{where}: coordinates must be finite numbers")
    return coords


def _yolo_foregrounds(
    photos: Path, labels: Path, unmatched: list[Path] | None
) -> list[tuple[Foreground, float | None]]:
    _pycocotools_mask()  # fail now, not at the first draw
    photos = _require_dir(photos, "photo")
    labels = _require_dir(labels, "label")
    by_place: dict[Path, Path] = {}
    by_stem: dict[str, Path] = {}
    for image in _image_files(photos):
        by_place.setdefault(image.relative_to(photos).with_suffix(""), image)
        by_stem.setdefault(image.stem, image)

    found: list[tuple[Foreground, float | None]] = []
    orphans: list[Path] = []
    boxes = 0
    files_with_boxes = 0
    for label in _label_files(labels):
        photo = by_place.get(label.relative_to(labels).with_suffix("")) or by_stem.get(label.stem)
        if photo is None:
            orphans.append(label)
            continue
        file_boxes = 0
        for line, values in _yolo_lines(label):
            if len(values) == 5:
                file_boxes += 1
                continue
            coords = _yolo_polygon(label, line, values)
            source = PolygonMask((coords,), frame=None, file=label, where=f"line {line}")
            found.append((Foreground(image=photo, mask=source), polygon_fraction([coords])))
        boxes += file_boxes
        files_with_boxes += bool(file_boxes)

    if orphans:
        if unmatched is not None:
            unmatched.extend(orphans)
        _warn_some(
            "label file(s)",
            [str(p.relative_to(labels)) for p in orphans],
            f"under {labels} have no photo under {photos} (ignored)",
        )
    if boxes:
        warnings.warn(
            f"{boxes} detection-only line(s) (a box, no polygon) in {files_with_boxes} label "
            f"file(s) under {labels} were ignored",
            UserWarning,
            stacklevel=3,
        )
    if not found:
        raise PathError(labels, f"no polygon label belongs to a photo under {photos}")
    found.sort(key=lambda item: str(item[0].image))  # stable: line order per photo
    return found


# ------------------------------------------------------------------ header check


def bad_headers(
    paintings: Sequence[Path], foregrounds: Sequence[Foreground]
) -> tuple[int, list[ImageInputError]]:
    """(files checked, one error per file) for the paintings, photos and mask images.

    Header only (:func:`~dkt.imaging.imageio.check_header`): fast enough to run over a whole
    collection before the first step, so that a corrupt file stops a run at once, named,
    instead of when it is first drawn, possibly hours in. Each file is checked once.
    """
    files = dict.fromkeys([*paintings, *(fg.image for fg in foregrounds)])
    files.update(dict.fromkeys(fg.mask for fg in foregrounds if isinstance(fg.mask, Path)))
    errors = []
    for path in files:
        try:
            check_header(path)
        except ImageInputError as exc:
            errors.append(exc)
    return len(files), errors


def drop_bad(
    paintings: Sequence[Path], foregrounds: Sequence[Foreground], bad: Iterable[Path]
) -> tuple[list[Path], list[Foreground]]:
    """``paintings`` and ``foregrounds`` without those that use a file in ``bad``."""
    bad = set(bad)
    kept_fg = [fg for fg in foregrounds if fg.image not in bad and fg.mask not in bad]
    return [p for p in paintings if p not in bad], kept_fg
