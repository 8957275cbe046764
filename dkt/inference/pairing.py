"""Planning for ``dkt harmonize``: which composite goes with which mask, and where it goes.

This module only looks at names and folders, never at pixels, so planning a run over
thousands of files is instant and can be tested with empty files. Everything it refuses
is refused *before* any image is read or written, with a one-line message a user can act
on (:class:`PairingError`); a composite whose mask is simply absent is *not* refused here,
because one missing mask must not stop a batch -- it becomes a :class:`Job` with
``mask=None`` that fails on its own, later, with :meth:`Job.missing_mask_reason`.

Two layouts are supported by the same rule ("mask = masks dir / same relative folder /
mask pattern filled with the composite's key, any image suffix"):

* two trees with the same relative names (defaults): ``comps/a/x.jpg`` <-> ``masks/a/x.png``;
* one folder holding everything, told apart by name patterns, e.g.
  ``--composite-pattern '{key}_comp' --mask-pattern '{key}_mask'`` for
  ``dph_0_comp.jpg`` / ``dph_0_mask.png`` next to ``dph_0_bg.jpg``.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dkt.atomic import atomic_write_bytes
from dkt.errors import PairingError

__all__ = [
    "IMAGE_SUFFIXES",
    "OUTPUT_MARKER",
    "Job",
    "PairingError",
    "check_output_folders",
    "mark_output_folder",
    "path_problem",
    "plan_folder",
    "plan_single",
]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

#: Order in which mask suffixes are preferred when several files share a stem: PNG first
#: (lossless, the usual mask format -- a JPEG mask has ringing at the edge), then the rest
#: alphabetically so the choice never depends on directory listing order.
_MASK_SUFFIX_ORDER: tuple[str, ...] = (".png", *sorted(IMAGE_SUFFIXES - {".png"}))

_KEY = "{key}"

#: The file ``dkt harmonize`` leaves in each folder of results it writes. A folder scan skips
#: folders holding it: a results folder inside the input folder (``--out data/run1``) is not
#: a folder of composites, whatever ``--out`` the next run is given.
OUTPUT_MARKER = ".dkt-output"
_MARKER_TEXT = (
    b"This folder holds results written by dkt harmonize.\n"
    b"Folder scans (--composites) skip it; delete this file to use its images as inputs.\n"
)

#: Example shown whenever the user needs to tell composites and masks apart by name.
_PATTERN_HINT = "--composite-pattern '{key}_comp' --mask-pattern '{key}_mask'"


@dataclass(frozen=True)
class Job:
    """One composite to harmonize: the unit the CLI runs, reports on and skips/resumes.

    ``key`` is the composite's relative id (posix separators, e.g. ``"sub/dph_13"``) so
    reports read the same on every OS and are stable across runs. ``mask`` is ``None``
    when no mask was found; ``mask_candidates`` then says what was looked for (relative to
    the masks folder, preferred first) so the failure message is actionable.
    """

    key: str
    composite: Path
    mask: Path | None
    output: Path
    mask_candidates: tuple[str, ...] = ()
    #: The mask is the composite's own alpha channel (``mask`` is then the composite).
    mask_in_alpha: bool = False

    def missing_mask_reason(self) -> str:
        """The one-line failure for a job without a mask, shared by every report.

        Candidates that differ only by suffix are folded into ``dir/name.{png,bmp,...}``
        because listing seven near-identical paths per failed job drowns the report.
        """
        return f"no mask found (looked for {_fold_candidates(self.mask_candidates)})"


def _fold_candidates(candidates: tuple[str, ...]) -> str:
    """Render candidate paths compactly when they share everything but the suffix."""
    if not candidates:
        return "nothing"
    stems = {c[: -len(Path(c).suffix)] if Path(c).suffix else c for c in candidates}
    if len(candidates) > 1 and len(stems) == 1:
        stem = next(iter(stems))
        suffixes = ",".join(Path(c).suffix.lstrip(".") for c in candidates)
        return f"{stem}.{{{suffixes}}}"
    return ", ".join(candidates)


# --------------------------------------------------------------------------- patterns


def _validate_pattern(pattern: str, option: str) -> None:
    """Refuse patterns that cannot name a file stem, naming the option at fault.

    Checked up front because a bad pattern otherwise shows up as "0 composites found" or
    "no mask found" for every file, which sends the user looking in the wrong place.
    """
    shown = f"{option} {pattern!r}"
    count = pattern.count(_KEY)
    if count != 1:
        raise PairingError(
            f"{shown} must contain {_KEY} exactly once (found {count}), e.g. '{{key}}_mask'"
        )
    rest = pattern.replace(_KEY, "")
    if "{" in rest or "}" in rest:
        raise PairingError(f"{shown} has a placeholder other than {_KEY}; only {_KEY} is known")
    if "/" in pattern or "\\" in pattern or os.sep in pattern:
        raise PairingError(
            f"{shown} is a file-name stem, not a path; sub-folders are matched automatically"
        )
    if pattern.startswith("."):
        raise PairingError(f"{shown} starts with '.'; hidden files are always skipped")
    if any(pattern.lower().endswith(s) for s in IMAGE_SUFFIXES):
        raise PairingError(f"{shown} is a file-name stem; leave the extension off")
    if "\0" in pattern:
        raise PairingError(f"{shown} contains a NUL character")


def _validate_suffix(suffix: str) -> None:
    """Refuse output suffixes that are not an image format we can write and re-read."""
    if suffix.lower() not in IMAGE_SUFFIXES:
        allowed = ", ".join(sorted(IMAGE_SUFFIXES))
        raise PairingError(f"--out-suffix {suffix!r} is not one of {allowed}")


def _compile(pattern: str) -> re.Pattern[str]:
    """Turn ``pre{key}post`` into an anchored regex capturing the key.

    Literal parts are escaped so a pattern like ``{key}.mask`` or ``[v2]{key}`` means
    exactly what it says.
    """
    pre, post = pattern.split(_KEY)
    return re.compile(f"{re.escape(pre)}(?P<key>.+){re.escape(post)}", re.DOTALL)


def _fill(pattern: str, key: str) -> str:
    """Substitute the key; ``str.replace`` rather than ``format`` so braces in keys are safe."""
    return pattern.replace(_KEY, key)


def _specificity(pattern: str) -> int:
    """How many literal characters a pattern pins down (more = more specific)."""
    return len(pattern) - len(_KEY)


# --------------------------------------------------------------------------- paths

#: Bytes a file or folder name may have on every common file system (ext4, XFS, Btrfs, APFS;
#: NTFS counts UTF-16 units), and a whole path on Linux (PATH_MAX, less its final NUL).
NAME_MAX = 255
PATH_MAX = 4095


def shorten(text: str, keep: int = 60) -> str:
    """``text`` as a message shows it: whole up to ``keep`` characters, else its start and
    end around "..." and its length (a path of megabytes printed whole buries the message)."""
    size = len(os.fsencode(text))
    text = text.replace("\0", "\\0")
    if len(text) <= keep:
        return text
    head = keep * 2 // 3
    return f"{text[:head]}...{text[head - keep :]} ({size} bytes)"


def path_problem(path: Path) -> str | None:
    """Why no file can ever have the path ``path`` (a NUL character, a name or a whole path
    longer than file systems allow), or ``None``. Found here, before any work: at the first
    write it cost a whole run, or came out as a traceback."""
    text = str(path)
    if "\0" in text:
        return "contains a NUL character"
    for part in Path(text).parts:
        if len(os.fsencode(part)) > NAME_MAX:
            return (f"the name {shorten(part)} is over the file system's limit of {NAME_MAX} "
                    "bytes; choose a shorter name")  # fmt: skip
    size = len(os.fsencode(text))
    if size > PATH_MAX:
        return f"is {size} bytes long, over the limit of {PATH_MAX} for a whole path"
    return None


def _check_path(path: Path, what: str) -> None:
    problem = path_problem(path)
    if problem is not None:
        raise PairingError(f"{what} {shorten(str(path))}: {problem}")


def _resolve(path: Path) -> Path:
    """Absolute, symlink-free form used for every "is this the same place" question."""
    return Path(os.path.realpath(path))


def _is_within(child: Path, parent: Path) -> bool:
    """Whether resolved ``child`` is ``parent`` or lies below it."""
    return child == parent or parent in child.parents


def _is_image(name: str) -> bool:
    return os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES


def _check_dirs(composites: Path, masks: Path, out: Path) -> tuple[Path, Path, Path]:
    """Refuse missing inputs and outputs that would land on top of the inputs."""
    if not composites.exists():
        raise PairingError(f"--composites {composites}: no such folder")
    if not composites.is_dir():
        raise PairingError(f"--composites {composites} is a file, not a folder")
    if not masks.exists():
        raise PairingError(f"--masks {masks}: no such folder")
    if not masks.is_dir():
        raise PairingError(f"--masks {masks} is a file, not a folder")
    if out.exists() and not out.is_dir():
        raise PairingError(f"--out {out} exists and is not a folder")
    comp_r, mask_r, out_r = _resolve(composites), _resolve(masks), _resolve(out)
    if out_r == comp_r:
        raise PairingError(
            f"--out {out} is the --composites folder; results would overwrite the inputs, "
            "choose another folder"
        )
    if out_r == mask_r:
        raise PairingError(
            f"--out {out} is the --masks folder; results would overwrite the masks, "
            "choose another folder"
        )
    return comp_r, mask_r, out_r


def mark_output_folder(folder: Path) -> None:
    """Create ``folder`` if needed and leave :data:`OUTPUT_MARKER` in it (atomically, once)."""
    marker = Path(folder) / OUTPUT_MARKER
    if not marker.is_file():
        atomic_write_bytes(marker, _MARKER_TEXT)


def check_output_folders(outputs: Iterable[Path]) -> None:
    """Refuse outputs that cannot be written, before any model is loaded or run.

    Found only at the first write, an unwritable ``--out`` cost a model load and a
    harmonization per file, each ending in the same failure. Each output folder, or the
    nearest part of it that exists, is tried once: a file standing where a folder must be,
    an output that is a folder, and a folder the process cannot create files in are
    :class:`PairingError` naming the output.
    """
    tried: dict[Path, str | None] = {}
    for output in outputs:
        output = Path(output)
        if output.is_dir():
            raise PairingError(f"output {output} is a folder; give an image file name")
        folder = output.parent
        if folder not in tried:
            tried[folder] = _unwritable(folder)
        if tried[folder] is not None:
            raise PairingError(f"output {output} cannot be written: {tried[folder]}")


def _unwritable(folder: Path) -> str | None:
    """Why no file can be made in ``folder`` (created as needed), or ``None`` if one can."""
    existing = folder
    while not existing.exists():
        if existing.is_symlink():
            return f"{existing} is a link to nothing"
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    try:  # permissions, ACLs, read-only mounts: only a real file says it for sure
        fd, probe = tempfile.mkstemp(prefix=".dkt-write-test.", dir=existing)
    except OSError as exc:
        return f"cannot create files in {existing} ({exc.strerror or exc})"
    os.close(fd)
    os.unlink(probe)
    return None


def _is_output_folder(path: Path) -> bool:
    return (path / OUTPUT_MARKER).is_file()


# --------------------------------------------------------------------------- masks


class _MaskIndex:
    """Per-folder listing of the masks tree, read lazily and once per folder.

    Listing (rather than probing ``exists()`` per suffix) makes the suffix match
    case-insensitive (``X.PNG``) on every filesystem and keeps the number of syscalls
    proportional to folders, not composites x suffixes.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._dirs: dict[tuple[str, ...], dict[str, list[Path]]] = {}

    def _listing(self, rel_dir: tuple[str, ...]) -> dict[str, list[Path]]:
        if rel_dir not in self._dirs:
            by_stem: dict[str, list[Path]] = {}
            folder = self._root.joinpath(*rel_dir)
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                entries = []
            for entry in entries:
                if entry.name.startswith(".") or not _is_image(entry.name):
                    continue
                if not entry.is_file():
                    continue
                stem, _ = os.path.splitext(entry.name)
                by_stem.setdefault(stem, []).append(folder / entry.name)
            self._dirs[rel_dir] = by_stem
        return self._dirs[rel_dir]

    def find(self, rel_dir: tuple[str, ...], stem: str, exclude: Path | None) -> Path | None:
        """The preferred existing mask named ``stem`` in ``rel_dir``, or ``None``.

        ``exclude`` (resolved) keeps a composite from being paired with itself when both
        live in one folder and the two patterns happen to produce the same name.
        """
        found = [
            p
            for p in self._listing(rel_dir).get(stem, [])
            if exclude is None or _resolve(p) != exclude
        ]
        if not found:
            return None
        found.sort(key=lambda p: (_MASK_SUFFIX_ORDER.index(p.suffix.lower()), p.name))
        return found[0]


# --------------------------------------------------------------------------- planning


def plan_folder(
    composites: Path,
    masks: Path,
    out: Path,
    *,
    composite_pattern: str = "{key}",
    mask_pattern: str = "{key}",
    out_pattern: str = "{key}",
    out_suffix: str = ".png",
    notes: list[str] | None = None,
) -> list[Job]:
    """Pair every composite under ``composites`` with its mask and an output path.

    Composites are the image files (any case of :data:`IMAGE_SUFFIXES`) under
    ``composites``, recursively, whose stem matches ``composite_pattern``. Hidden files
    and folders are skipped (atomic writers leave ``.name.*.tmp`` behind), and so is
    ``out`` when it is nested inside the input, so a second run never treats the first
    run's results as new composites. Sub-folders holding :data:`OUTPUT_MARKER` (results of an
    earlier run, whatever its ``--out``) are skipped too, each with a line in ``notes``.

    When the masks live in the composites tree (same folder, or nested in it), a file
    there that matches the mask pattern is a mask, not a composite -- unless the
    composite pattern is strictly more specific (more literal characters), so that
    ``--composite-pattern '{key}_comp' --mask-pattern '{key}'`` still finds the
    ``_comp`` files.

    The mask of ``rel_dir/<stem>`` (key ``k``) is ``masks/rel_dir/<mask_pattern(k)>`` with
    any image suffix, ``.png`` preferred, then the others alphabetically. The output is
    ``out/rel_dir/<out_pattern(k)><out_suffix>``, keeping the sub-folder tree.

    Jobs come back sorted by key (then composite path) so runs, logs and resumes are
    deterministic. Raises :class:`PairingError` for anything that makes the plan unsafe
    or meaningless; a missing mask is not an error here (see :class:`Job`).
    """
    composites, masks, out = Path(composites), Path(masks), Path(out)
    _validate_pattern(composite_pattern, "--composite-pattern")
    _validate_pattern(mask_pattern, "--mask-pattern")
    _validate_pattern(out_pattern, "--out-pattern")
    _validate_suffix(out_suffix)
    comp_r, mask_r, out_r = _check_dirs(composites, masks, out)

    same_tree = comp_r == mask_r
    if same_tree and composite_pattern == mask_pattern:
        raise PairingError(
            f"--composites and --masks are the same folder and both patterns are "
            f"{composite_pattern!r}, so every file would be its own mask; tell them apart "
            f"by name, e.g. {_PATTERN_HINT}"
        )
    masks_in_input = _is_within(mask_r, comp_r)
    mask_wins_ties = _specificity(composite_pattern) <= _specificity(mask_pattern)

    comp_re = _compile(composite_pattern)
    mask_re = _compile(mask_pattern)
    index = _MaskIndex(masks)

    jobs: list[Job] = []
    for root, dirnames, filenames in os.walk(composites):
        root_path = Path(root)
        root_r = _resolve(root_path)
        # Prune in place: hidden folders and the output folder are never descended into.
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and _resolve(root_path / d) != out_r
        )
        dirnames[:] = _without_output_folders(root_path, dirnames, notes)
        rel_dir = root_path.relative_to(composites).parts
        in_masks_tree = masks_in_input and _is_within(root_r, mask_r)
        for name in sorted(filenames):
            if name.startswith(".") or not _is_image(name):
                continue
            stem, _ = os.path.splitext(name)
            match = comp_re.fullmatch(stem)
            if match is None:
                continue
            if in_masks_tree and mask_wins_ties and mask_re.fullmatch(stem):
                continue
            path = root_path / name
            if not path.is_file():
                continue
            key = match["key"]
            mask_stem = _fill(mask_pattern, key)
            mask = index.find(rel_dir, mask_stem, exclude=_resolve(path) if same_tree else None)
            candidates = tuple(
                "/".join((*rel_dir, mask_stem + suffix)) for suffix in _MASK_SUFFIX_ORDER
            )
            jobs.append(
                Job(
                    key="/".join((*rel_dir, key)),
                    composite=path,
                    mask=mask,
                    output=out.joinpath(*rel_dir, _fill(out_pattern, key) + out_suffix),
                    mask_candidates=candidates,
                )
            )

    jobs.sort(key=lambda j: (j.key, str(j.composite)))
    for job in jobs:
        _check_path(job.output, f"--out-pattern {shorten(repr(out_pattern))} makes the output")
    _check_outputs(jobs, composites)
    return jobs


def _without_output_folders(root: Path, dirnames: list[str], notes: list[str] | None) -> list[str]:
    """``dirnames`` less the folders an earlier run marked as results, noting each one."""
    kept = []
    for name in dirnames:
        if _is_output_folder(root / name):
            if notes is not None:
                notes.append(
                    f"skipping {root / name}: it holds {OUTPUT_MARKER}, results of an earlier "
                    "dkt run (delete that file to use its images as composites)"
                )
            continue
        kept.append(name)
    return kept


def _check_outputs(jobs: list[Job], composites: Path) -> None:
    """Refuse plans where two jobs write one file, or a job writes over an input.

    Two composites differing only by suffix (``a.jpg`` and ``a.png``) would silently
    overwrite each other's result; with unusual nesting (``--composites`` inside
    ``--out``) an output can even land on a composite or mask. Both are caught here,
    before any work, rather than discovered as lost results afterwards.
    """
    by_output: dict[str, Job] = {}
    duplicates: list[tuple[Job, Job]] = []
    for job in jobs:
        slot = os.path.normcase(str(job.output))
        first = by_output.setdefault(slot, job)
        if first is not job:
            duplicates.append((first, job))
    if duplicates:
        a, b = duplicates[0]
        more = f" (and {len(duplicates) - 1} more)" if len(duplicates) > 1 else ""
        raise PairingError(
            f"composites {_rel(a.composite, composites)} and {_rel(b.composite, composites)} "
            f"would both write {b.output}{more}; rename or remove one"
        )

    inputs: set[Path] = set()
    for job in jobs:
        inputs.add(_resolve(job.composite))
        if job.mask is not None:
            inputs.add(_resolve(job.mask))
    for job in jobs:
        if _resolve(job.output) in inputs:
            raise PairingError(
                f"output {job.output} (for {job.key}) would overwrite an input file; "
                "choose an --out folder outside the inputs"
            )


def _rel(path: Path, base: Path) -> str:
    """``path`` relative to ``base`` in posix form, for messages."""
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return str(path)


def plan_single(composite: Path, mask: Path, output: Path) -> Job:
    """One explicit composite/mask/output triple, in the same :class:`Job` shape as folders.

    Existence is left to the loader (it reports unreadable images itself); what is refused
    here is only what would destroy an input: writing the result over the composite or
    the mask, or using the composite as its own mask.
    """
    composite, mask, output = Path(composite), Path(mask), Path(output)
    _check_path(output, "output")
    _check_path(composite, "composite")
    _check_path(mask, "mask")
    comp_r, mask_r, out_r = _resolve(composite), _resolve(mask), _resolve(output)
    if out_r == comp_r:
        raise PairingError(f"output {output} is the composite itself; choose another output path")
    if out_r == mask_r:
        raise PairingError(f"output {output} is the mask itself; choose another output path")
    if comp_r == mask_r:
        raise PairingError(f"mask {mask} is the composite itself; pass the mask image")
    return Job(
        key=composite.stem,
        composite=composite,
        mask=mask,
        output=output,
        mask_candidates=(str(mask),),
    )


def plan_alpha(composite: Path, output: Path) -> Job:
    """One composite whose alpha channel is its mask (``--mask alpha``)."""
    composite, output = Path(composite), Path(output)
    _check_path(output, "output")
    _check_path(composite, "composite")
    if _resolve(output) == _resolve(composite):
        raise PairingError(f"output {output} is the composite itself; choose another output path")
    return Job(composite.stem, composite, composite, output, (str(composite),), mask_in_alpha=True)
