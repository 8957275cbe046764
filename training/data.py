"""Training pairs made on the fly: a photographic object pasted into a painting.

DKTNet learns from composites whose background is a painting and whose foreground is a
photo object; there is no ground truth, so every sample can be synthesised at load time
from two small collections (paintings, photos with instance masks). Making them on the fly
gives endless variety (crop, scale, position, flip) from a few hundred files.

Every random choice of item ``i`` in epoch ``e`` comes from
``np.random.default_rng([seed, e, i])``, so an item is the same in any DataLoader worker,
in any order, and after a resume; nothing depends on worker-local state such as caches.

An object's mask comes from a PNG file, a COCO annotation (polygons or RLE) or a YOLO
segmentation line; see :mod:`training.sources` for reading those collections.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from dkt.errors import DktError, ImageInputError, MaskSourceError, PathError
from dkt.imaging.imageio import IMAGE_SUFFIXES, read_image, read_mask
from training.defaults import COMPOSITE_SIZE, FG_RATIO, FLIP_PROB, RANDOM_POSITION_PROB

__all__ = [
    "CompositeConfig",
    "CompositeDataset",
    "Draw",
    "Foreground",
    "MaskSource",
    "MaskSourceError",
    "PolygonMask",
    "RleMask",
    "decode_mask",
    "find_foregrounds",
    "find_paintings",
]

# ``<photo-stem>_objNN`` (any number of digits): one instance mask of that photo.
_OBJ_MASK = re.compile(r"^(?P<stem>.+)_obj\d+$")

# Masks smaller than this (in pixels, at their own resolution) carry no usable object.
_MIN_MASK_PIXELS = 16

# How many times a bad draw is replaced by another before giving up (skip_bad=True).
_MAX_ATTEMPTS = 64

# Rescaling passes used to bring the pasted area into ``fg_ratio`` (rounding, clipping).
_FIT_PASSES = 5


@dataclass(frozen=True)
class PolygonMask:
    """An object outlined by one or more polygons (a YOLO label line, a COCO annotation).

    ``polygons`` holds flat ``(x0, y0, x1, y1, ...)`` tuples. ``frame`` is the
    ``(height, width)`` the coordinates are in pixels of (COCO), or ``None`` when they are
    fractions of the photo's width and height (YOLO); a photo stored at another size than
    ``frame`` (a resized copy of a COCO image, say) gets the polygon scaled to it.
    ``file`` and ``where`` (``"line 3"``, ``"annotation 17"``) say where it was read, so
    an error names the annotation, and make two identical outlines distinct objects.

    Tuples, not arrays: the dataset's caches are keyed by :class:`Foreground`, so a mask
    source must be hashable, and it must pickle into DataLoader workers.
    """

    polygons: tuple[tuple[float, ...], ...]
    frame: tuple[int, int] | None
    file: Path
    where: str

    def __post_init__(self) -> None:
        # pycocotools reads a 4-number list as a box, not a polygon: refuse it here.
        if not self.polygons:
            raise MaskSourceError(self, "no polygon")
        for poly in self.polygons:
            if len(poly) % 2 or len(poly) < 6:
                raise MaskSourceError(
                    self, f"a polygon needs x y pairs for at least 3 points, got {len(poly)} values"
                )
            if not all(math.isfinite(v) for v in poly):
                raise MaskSourceError(self, "polygon coordinates must be finite numbers")
        _check_frame(self)

    def __str__(self) -> str:
        return f"{self.file} ({self.where})"


@dataclass(frozen=True)
class RleMask:
    """An object stored as COCO run-length encoding, always in the compressed string form.

    Uncompressed ``{"counts": [...]}`` annotations are converted when they are read (see
    :mod:`training.sources`). The runs are checked here to cover exactly ``frame``
    pixels, so a bad annotation fails when it is read, naming itself; pycocotools would
    trust the runs and write past its buffer.
    """

    counts: str
    frame: tuple[int, int]  # (height, width) the runs cover
    file: Path
    where: str

    def __post_init__(self) -> None:
        _check_frame(self)
        try:
            runs = _rle_runs(self.counts)
        except ValueError as err:
            raise MaskSourceError(self, f"RLE counts: {err}") from None
        _check_runs(self, runs)

    def __str__(self) -> str:
        return f"{self.file} ({self.where})"


def _check_frame(source: PolygonMask | RleMask) -> None:
    frame = source.frame
    if frame is not None and (len(frame) != 2 or min(frame) < 1):
        raise MaskSourceError(source, f"image size must be two positive numbers, got {frame}")


def _rle_runs(counts: str) -> list[int]:
    """Run lengths of COCO's compressed RLE string (zeros first, column-major).

    Each run is a variable-length number in 5-bit groups, least significant first, one
    group per character (value + 48); bit 0x20 says another group follows and, in the
    last group, bit 0x10 is the sign. From the third run on, the number is the difference
    to the run two places before (runs of zeros and of ones each change slowly).
    """
    runs: list[int] = []
    value, shift = 0, 0
    for char in counts:
        group = ord(char) - 48
        if not 0 <= group < 64:
            raise ValueError(f"character {char!r} is not part of the RLE alphabet")
        value |= (group & 0x1F) << shift
        shift += 5
        if group & 0x20:
            continue
        if group & 0x10:
            value -= 1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
        value, shift = 0, 0
    if shift:
        raise ValueError("the string ends inside a number")
    return runs


def _check_runs(source: RleMask, runs: Sequence[int]) -> None:
    """Refuse runs that do not tile the frame exactly (negative or short or long runs)."""
    height, width = source.frame
    if any(r < 0 for r in runs):
        raise MaskSourceError(source, "RLE has a negative run length")
    total = sum(runs)
    if total != height * width:
        raise MaskSourceError(
            source, f"RLE runs cover {total} pixels, but the image is {width}x{height}"
        )


#: Where an object's mask comes from: a mask image file or an annotation.
MaskSource = Path | PolygonMask | RleMask


def _bad_key(err: ImageInputError) -> MaskSource:
    """What a failed read is remembered by: the annotation, so one bad line of an
    annotation file does not rule out the rest of it, or else the image file."""
    if isinstance(err, MaskSourceError):
        # dkt.errors types its source as a protocol; here only annotations raise it
        assert isinstance(err.source, (PolygonMask, RleMask))
        return err.source
    return err.path


@dataclass(frozen=True)
class Foreground:
    """One paste-able object: a photo and the mask of one object in it.

    ``mask`` is a mask image of the photo's size (a :class:`~pathlib.Path`) or an
    annotation (:class:`PolygonMask`, :class:`RleMask`); both are hashable, so a
    foreground can key the dataset's caches.
    """

    image: Path
    mask: MaskSource


def _pycocotools_mask() -> ModuleType:
    """``pycocotools.mask``, imported on first use: it is only needed for annotations."""
    try:
        from pycocotools import mask as coco_mask
    except ImportError:
        raise DktError(
            "reading COCO or YOLO annotations needs pycocotools: pip install 'dkt[train]'"
        ) from None
    return coco_mask


def _scaled_frame(source: PolygonMask | RleMask, height: int, width: int) -> tuple[float, float]:
    """x and y factors from the annotation's frame to the photo; refuses another shape.

    A resized copy of the annotated image is fine; a different aspect ratio means the
    annotation belongs to another picture, and a silently misplaced mask would poison
    training without any error.
    """
    if source.frame is None:
        return float(width), float(height)
    fh, fw = source.frame
    sx, sy = width / fw, height / fh
    if abs(sx / sy - 1.0) > 0.02:
        raise MaskSourceError(
            source, f"annotated for a {fw}x{fh} image, but the photo is {width}x{height}"
        )
    return sx, sy


def decode_mask(source: MaskSource, height: int, width: int) -> np.ndarray:
    """The object's mask as a boolean ``(height, width)`` array for a photo of that size.

    Mask images are split at 0.5 and must already have the photo's size. Polygons and RLE
    are rasterised, merged and decoded with pycocotools, so they match COCO's own masks
    pixel for pixel (RLE runs were checked against the frame when the source was made).
    Annotations follow a photo that was resized. Problems raise
    :class:`~dkt.errors.ImageInputError` naming the mask file or the annotation.
    """
    if not isinstance(source, (PolygonMask, RleMask)):  # a mask file (a str works too)
        return read_mask(source, expected_hw=(height, width)) >= 0.5
    sx, sy = _scaled_frame(source, height, width)
    if isinstance(source, PolygonMask):
        coco_mask = _pycocotools_mask()
        scale = np.array([sx, sy])
        polygons = [
            (np.reshape(poly, (-1, 2)) * scale).ravel().tolist() for poly in source.polygons
        ]
        return _decode_rle(coco_mask.merge(coco_mask.frPyObjects(polygons, height, width)))
    fh, fw = source.frame
    mask = _decode_rle({"size": [fh, fw], "counts": source.counts.encode("ascii")})
    if (fh, fw) != (height, width):
        img = Image.fromarray(mask.astype(np.uint8) * 255)
        mask = np.asarray(img.resize((width, height), Image.Resampling.NEAREST)) >= 128
    return mask


def _decode_rle(rle: dict[str, Any]) -> np.ndarray:
    """pycocotools' decode as a C-ordered boolean mask."""
    with warnings.catch_warnings():
        # pycocotools' decode passes a copy flag numpy 2 deprecates; harmless here.
        warnings.simplefilter("ignore", DeprecationWarning)
        decoded = _pycocotools_mask().decode(rle)
    return np.ascontiguousarray(decoded.astype(bool))


def _image_files(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive, hidden files skipped), sorted."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.is_file()
    )


def _require_dir(folder: Path, what: str) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise PathError(folder, f"{what} folder not found")
    return folder


def find_paintings(folder: Path) -> list[Path]:
    """All image files under ``folder`` (recursive), sorted so runs are reproducible.

    Raises :class:`~dkt.errors.PathError` when the folder is missing or holds no image,
    because training on an empty set would otherwise fail much later and less clearly.
    """
    folder = _require_dir(folder, "paintings")
    found = _image_files(folder)
    if not found:
        suffixes = ", ".join(sorted(IMAGE_SUFFIXES))
        raise PathError(folder, f"no painting images found (looked for {suffixes})")
    return found


def find_foregrounds(
    images: Path, masks: Path, unmatched: list[Path] | None = None
) -> list[Foreground]:
    """Pair instance masks with their photos by file name.

    A mask ``<stem>_objNN.<ext>`` or ``<stem>.<ext>`` (any image suffix, any folder depth
    under ``masks``) belongs to the photo whose file stem is ``<stem>`` (any image suffix,
    anywhere under ``images``). An exact stem match wins over the ``_objNN`` rule, so a
    photo that itself ends in ``_objNN`` still gets its plain-named mask. ``images`` and
    ``masks`` may be the same folder; a file is never its own mask.

    Masks without a photo are **ignored**: they are appended to ``unmatched`` when a list
    is given, and one :class:`UserWarning` names how many there were and the first few,
    so a typo in a folder layout is visible without aborting a long run. When two photos
    share a stem (e.g. ``a.jpg`` and ``a.png``) the first in sorted order is used.

    Returns the pairs sorted by (photo, mask). Raises :class:`~dkt.errors.PathError`
    when a folder is missing or no pair at all was found.
    """
    images = _require_dir(images, "photo")
    masks = _require_dir(masks, "mask")
    photos = _image_files(images)
    by_stem: dict[str, Path] = {}
    for found in photos:
        by_stem.setdefault(found.stem, found)
    photo_set = set(photos)

    pairs: list[Foreground] = []
    orphans: list[Path] = []
    for mask in _image_files(masks):
        photo = by_stem.get(mask.stem)
        if photo is None or photo == mask:
            obj = _OBJ_MASK.match(mask.stem)
            photo = by_stem.get(obj["stem"]) if obj else None
        if photo is not None and photo != mask:
            pairs.append(Foreground(image=photo, mask=mask))
        elif mask not in photo_set:  # in a shared folder the photos themselves are no orphans
            orphans.append(mask)

    if orphans:
        if unmatched is not None:
            unmatched.extend(orphans)
        shown = ", ".join(p.name for p in orphans[:5])
        more = f" and {len(orphans) - 5} more" if len(orphans) > 5 else ""
        warnings.warn(
            f"{len(orphans)} mask(s) under {masks} have no photo under {images} and are "
            f"ignored: {shown}{more}",
            UserWarning,
            stacklevel=2,
        )
    if not pairs:
        raise PathError(masks, f"no mask matches a photo under {images}")
    return sorted(pairs, key=lambda fg: (str(fg.image), str(fg.mask)))


@dataclass
class CompositeConfig:
    """How composites are drawn.

    ``fg_ratio`` bounds the pasted mask area as a fraction of ``size * size``;
    ``random_position_prob`` is the chance of a random placement (otherwise the object
    keeps its relative position in the photo, which keeps natural layouts such as people
    standing low in the frame); ``flip_prob`` applies to painting and object separately.
    """

    size: int = COMPOSITE_SIZE
    fg_ratio: tuple[float, float] = FG_RATIO
    random_position_prob: float = RANDOM_POSITION_PROB
    flip_prob: float = FLIP_PROB
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.fg_ratio
        if self.size < 8:
            raise ValueError(f"size must be >= 8, got {self.size}")
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError(f"fg_ratio must satisfy 0 < low <= high < 1, got {self.fg_ratio}")
        for name in ("random_position_prob", "flip_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")


class _LRU:
    """A small least-recently-used map; bounds the memory of decoded images per worker."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()

    def get(self, key: Hashable) -> Any | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: Hashable, value: Any) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._data


@dataclass(frozen=True)
class _Cutout:
    """A photo object cropped to its mask's bounding box, ready to be scaled and pasted."""

    rgb: Image.Image  # RGB, bbox size
    mask: Image.Image  # "L", 0/255, bbox size
    area: int  # mask pixels at this resolution
    center: tuple[float, float]  # bbox centre (x, y) as fractions of the photo's width/height


class CompositeDataset(Dataset):
    """Painting + pasted photo object, drawn deterministically from (seed, epoch, index).

    Item ``i`` uses foreground ``i % len(foregrounds)`` (so each object appears equally
    often per epoch) and a random painting. The default length is the smallest multiple of
    ``len(foregrounds)`` that is at least ``len(paintings)``, so one epoch shows every
    object and has the chance to show every painting.

    Decoded files are kept in LRU caches of ``cache_size`` entries each (paintings as
    decoded images, objects as bbox cut-outs), filled lazily, so each file is decoded once
    per worker. Caches are not pickled: a spawned worker starts with empty ones.

    ``skip_bad=False`` (default): an unreadable file raises
    :class:`~dkt.errors.ImageInputError` naming it. ``skip_bad=True``: the draw is
    replaced by another one (also derived from (seed, epoch, index)) and the file is added
    to ``self.skipped`` (for a bad annotation, the :class:`PolygonMask` / :class:`RleMask`
    itself, so one bad line does not discard the rest of its file); that set is per
    process, so with DataLoader workers each worker has its own.

    ``set_epoch`` must be called before the DataLoader creates its workers (i.e. without
    ``persistent_workers``), since workers hold copies of the dataset.
    """

    def __init__(
        self,
        paintings: Sequence[Path],
        foregrounds: Sequence[Foreground],
        config: CompositeConfig | None = None,
        length: int | None = None,
        *,
        skip_bad: bool = False,
        cache_size: int = 512,
    ) -> None:
        if not paintings:
            raise ValueError("no paintings given")
        if not foregrounds:
            raise ValueError("no foregrounds given")
        if length is not None and length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be >= 1, got {cache_size}")
        self.paintings = [Path(p) for p in paintings]
        self.foregrounds = list(foregrounds)
        self.config = config if config is not None else CompositeConfig()
        n_fg = len(self.foregrounds)
        self.length = length if length is not None else n_fg * -(-len(self.paintings) // n_fg)
        self.skip_bad = skip_bad
        self.cache_size = cache_size
        self.epoch = 0
        self.skipped: set[MaskSource] = set()
        self._init_caches()

    def _init_caches(self) -> None:
        self._painting_cache = _LRU(self.cache_size)
        self._cutout_cache = _LRU(self.cache_size)
        self._bad: dict[MaskSource, str] = {}  # file or annotation -> reason
        by_image: dict[Path, list[Foreground]] = {}
        for fg in self.foregrounds:
            by_image.setdefault(fg.image, []).append(fg)
        self._siblings = by_image

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_painting_cache", "_cutout_cache", "_bad", "_siblings"):
            state.pop(key, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_caches()

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws ``__getitem__`` makes (reproducible)."""
        if epoch < 0:
            raise ValueError(f"epoch must be >= 0, got {epoch}")
        self.epoch = int(epoch)

    # ------------------------------------------------------------------ loading

    def _remember_bad(self, err: ImageInputError) -> ImageInputError:
        """Record a bad file so later draws fail fast instead of decoding it again.

        Only the reason is kept, not the exception: its traceback would pin the frames
        (and the decoded images in them) of every failed draw.
        """
        self._bad[_bad_key(err)] = err.detail if isinstance(err, MaskSourceError) else err.reason
        return err

    def _check_known_bad(self, *keys: MaskSource) -> None:
        for key in keys:
            if key in self._bad:
                if isinstance(key, (PolygonMask, RleMask)):
                    raise MaskSourceError(key, self._bad[key])
                raise ImageInputError(key, self._bad[key])

    def _painting(self, path: Path) -> Image.Image:
        self._check_known_bad(path)
        img = self._painting_cache.get(path)
        if img is None:
            try:
                img = Image.fromarray(read_image(path))
            except ImageInputError as err:
                raise self._remember_bad(err) from None
            self._painting_cache.put(path, img)
        return img

    def _cutout(self, fg: Foreground) -> _Cutout:
        self._check_known_bad(fg.image, fg.mask)
        cut = self._cutout_cache.get(fg)
        if cut is not None:
            return cut
        try:
            photo = read_image(fg.image)
        except ImageInputError as err:
            raise self._remember_bad(err) from None
        try:
            cut = _make_cutout(photo, fg.mask)
        except ImageInputError as err:
            raise self._remember_bad(err) from None
        # Decode the photo once for all its masks: cut out the other objects now too.
        for sibling in self._siblings.get(fg.image, ()):
            if sibling == fg or sibling.mask in self._bad or sibling in self._cutout_cache:
                continue
            try:
                self._cutout_cache.put(sibling, _make_cutout(photo, sibling.mask))
            except ImageInputError as err:
                self._remember_bad(err)  # raised when (if ever) that object is drawn
        self._cutout_cache.put(fg, cut)
        return cut

    # ------------------------------------------------------------------ drawing

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        """Return ``composite`` (3xSxS), ``mask`` (1xSxS, 0/1) and ``painting`` (3xSxS).

        All float32 in [0, 1]; ``composite`` equals ``painting`` exactly outside the mask.
        """
        drawn = self.draw(index)
        return {
            "composite": _to_tensor(drawn.composite),
            "mask": torch.from_numpy(drawn.mask).to(torch.float32).unsqueeze(0),
            "painting": _to_tensor(drawn.painting),
        }

    def draw(self, index: int) -> Draw:
        """Item ``index`` of the current epoch as 8-bit arrays, with the files it came from.

        The same draw as ``self[index]``; for freezing evaluation sets, which need the
        exact pixels (no float round trip) and their provenance.
        """
        if not -self.length <= index < self.length:
            raise IndexError(f"index {index} out of range for length {self.length}")
        index %= self.length
        seed, epoch = self.config.seed, self.epoch
        for attempt in range(_MAX_ATTEMPTS):
            key = [seed, epoch, index] if attempt == 0 else [seed, epoch, index, attempt]
            rng = np.random.default_rng(key)
            try:
                return self._draw(rng, index, attempt)
            except ImageInputError as err:
                if not self.skip_bad:
                    raise
                self.skipped.add(_bad_key(err))
        raise DktError(
            f"item {index}: {_MAX_ATTEMPTS} draws in a row hit unreadable files "
            f"({len(self.skipped)} skipped so far); check the data folders"
        )

    def _draw(self, rng: np.random.Generator, index: int, attempt: int) -> Draw:
        cfg = self.config
        size = cfg.size
        # A fixed number of draws per attempt keeps every value at a fixed stream position.
        u = rng.random(11)
        painting_path = self.paintings[
            min(int(u[0] * len(self.paintings)), len(self.paintings) - 1)
        ]
        if attempt == 0:
            fg = self.foregrounds[index % len(self.foregrounds)]
        else:
            n_fg = len(self.foregrounds)
            fg = self.foregrounds[min(int(u[10] * n_fg), n_fg - 1)]

        background = _crop_painting(
            self._painting(painting_path),
            size,
            scale=0.5 + 0.5 * u[1],
            ux=u[2],
            uy=u[3],
            flip=u[4] < cfg.flip_prob,
        )
        rgb, vis, x0, y0 = _place_object(
            self._cutout(fg),
            size,
            cfg.fg_ratio,
            u_ratio=u[5],
            random_position=u[6] < cfg.random_position_prob,
            ux=u[7],
            uy=u[8],
            flip=u[9] < cfg.flip_prob,
        )

        composite = background.copy()
        mask = np.zeros((size, size), dtype=bool)
        h, w = vis.shape
        region = (slice(y0, y0 + h), slice(x0, x0 + w))
        np.copyto(composite[region], rgb, where=vis[..., None])
        mask[region] = vis
        return Draw(
            composite=composite,
            mask=mask,
            painting=background,
            painting_path=painting_path,
            foreground=fg,
            attempt=attempt,
        )


@dataclass(frozen=True)
class Draw:
    """One drawn item: ``composite`` and ``painting`` uint8 SxSx3, ``mask`` bool SxS.

    ``attempt`` is 0 unless earlier draws of this item hit unreadable files (``skip_bad``).
    """

    composite: np.ndarray
    mask: np.ndarray
    painting: np.ndarray
    painting_path: Path
    foreground: Foreground
    attempt: int


def _make_cutout(photo: np.ndarray, source: MaskSource) -> _Cutout:
    """Crop ``photo`` and its object's mask to the mask's bounding box (hard mask)."""
    height, width = photo.shape[:2]
    mask = decode_mask(source, height, width)
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    area = int(mask.sum())
    if area < _MIN_MASK_PIXELS:
        reason = f"mask has {area} foreground pixels (need at least {_MIN_MASK_PIXELS})"
        if isinstance(source, (PolygonMask, RleMask)):
            raise MaskSourceError(source, reason)
        raise ImageInputError(source, reason)
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop_mask = mask[y0:y1, x0:x1]
    return _Cutout(
        rgb=Image.fromarray(np.ascontiguousarray(photo[y0:y1, x0:x1])),
        mask=Image.fromarray(crop_mask.astype(np.uint8) * 255),
        area=area,
        center=((x0 + x1) / 2 / width, (y0 + y1) / 2 / height),
    )


def _crop_painting(
    img: Image.Image, size: int, *, scale: float, ux: float, uy: float, flip: bool
) -> np.ndarray:
    """Square crop of side ``scale * short side`` at a random place, resized to SxS."""
    width, height = img.size
    side = scale * min(width, height)
    left = ux * (width - side)
    top = uy * (height - side)
    out = img.resize(
        (size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side)
    )
    arr = np.asarray(out)
    return np.ascontiguousarray(arr[:, ::-1]) if flip else arr.copy()


def _offset(extent: int, size: int, *, random: bool, u: float, center: float) -> int:
    """Top-left coordinate of an ``extent``-long object on a ``size`` canvas.

    The object stays fully inside when it fits; when it is larger (a clipped thin object)
    the canvas stays fully covered by it along that axis.
    """
    low, high = min(0, size - extent), max(0, size - extent)
    if random:
        return low + min(int(u * (high - low + 1)), high - low)
    return int(np.clip(round(center * size - extent / 2), low, high))


def _place_object(
    cut: _Cutout,
    size: int,
    fg_ratio: tuple[float, float],
    *,
    u_ratio: float,
    random_position: bool,
    ux: float,
    uy: float,
    flip: bool,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Scale, flip and place a cut-out so its visible mask area is within ``fg_ratio``.

    Returns the visible RGB and mask (both clipped to the canvas) and their top-left
    corner on the canvas. The target ratio is uniform in ``fg_ratio`` but capped at what
    the whole object can reach while fitting in the canvas, so objects are not clipped
    unless they must be: a thin object (e.g. a standing person) whose full view cannot
    reach the lower bound is enlarged past the canvas and clipped instead, because the
    ratio bound is what the loss weighting and the model's receptive field rely on.
    """
    lo, hi = fg_ratio
    canvas = size * size
    bw, bh = cut.mask.size
    cx, cy = cut.center
    if flip:
        cx = 1.0 - cx
    k_fit = size / max(bw, bh)
    ratio_fit = cut.area * k_fit * k_fit / canvas
    if ratio_fit >= lo:
        target = lo + u_ratio * (min(hi, ratio_fit) - lo)
    else:  # must clip: aim just above the lower bound to keep as much of it as possible
        target = lo + u_ratio * 0.2 * (hi - lo)
    target_px = target * canvas
    k = math.sqrt(target_px / cut.area)

    best: tuple[float, int, int, int, int, np.ndarray] | None = None
    for _ in range(_FIT_PASSES):
        w, h = max(1, round(bw * k)), max(1, round(bh * k))
        m = np.asarray(cut.mask.resize((w, h), Image.Resampling.BILINEAR)) >= 128
        if flip:
            m = m[:, ::-1]
        x0 = _offset(w, size, random=random_position, u=ux, center=cx)
        y0 = _offset(h, size, random=random_position, u=uy, center=cy)
        vx0, vy0 = max(0, -x0), max(0, -y0)
        vis = m[vy0 : min(h, size - y0), vx0 : min(w, size - x0)]
        area = int(vis.sum())
        error = 0.0 if lo * canvas <= area <= hi * canvas else abs(area - target_px)
        if best is None or error < best[0]:
            best = (error, w, h, x0, y0, vis)
        if error == 0.0:
            break
        k *= math.sqrt(target_px / max(area, 1))
    assert best is not None
    _, w, h, x0, y0, vis = best

    vx0, vy0 = max(0, -x0), max(0, -y0)
    rgb = np.asarray(cut.rgb.resize((w, h), Image.Resampling.BILINEAR))
    if flip:
        rgb = rgb[:, ::-1]
    rgb = rgb[vy0 : vy0 + vis.shape[0], vx0 : vx0 + vis.shape[1]]
    return rgb, np.ascontiguousarray(vis), max(x0, 0), max(y0, 0)


def _to_tensor(arr: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 -> float32 3xHxW in [0, 1] (same arithmetic for every image)."""
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous().to(torch.float32).div_(255.0)
