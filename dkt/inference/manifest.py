"""``--manifest FILE``: the jobs of a run listed explicitly, for pipelines without folders.

A manifest is a CSV file whose header names the columns ``composite``, ``mask`` and
``output``, or a JSON-lines file (``.jsonl``) with one object per line holding those three
keys. Relative paths are relative to the manifest's own folder, so a manifest and its images
can move together.

One rule for the names in both formats (CSV columns, JSON keys), spaces around them aside:
names other than the three are ignored (an id, the sources ``dkt data make-composites``
records); the same name twice, a value without a name, and a name that is one of the three
but for its case (``Output``) are refused, because each means a job may read or write
another file than the one the user meant.

Outputs are confined: each must lie in ``output_root`` (by default the manifest's own
folder; ``--output-root`` on the command line), after ``..`` and symbolic links are
followed. A manifest naming ``../../x.png`` or an absolute path elsewhere is refused, so a
manifest from someone else cannot make a run (with ``--overwrite``) replace any file the
user can write.

Everything wrong with the manifest itself is refused before any image is read, with one
line naming the file and the line (``jobs.csv:7: empty 'mask'``); a listed image that turns
out to be missing or unreadable fails on its own at run time, like in a folder run. The
job's key, used in reports and by ``--shard``, is the output as written in the manifest.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from dkt.csvcells import read_row
from dkt.errors import ManifestError
from dkt.inference.pairing import Job, path_problem, shorten

COLUMNS: tuple[str, ...] = ("composite", "mask", "output")
CSV_SUFFIXES = frozenset({".csv"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})


def plan_manifest(manifest: Path, output_root: Path | None = None) -> list[Job]:
    """The jobs listed in ``manifest`` (.csv or .jsonl), in the manifest's order, every
    output inside ``output_root`` (default: the manifest's folder)."""
    manifest = Path(manifest)
    suffix = manifest.suffix.lower()
    if suffix not in CSV_SUFFIXES | JSONL_SUFFIXES:
        raise ManifestError(
            f"--manifest {manifest}: use a .csv file (header: composite,mask,output) "
            "or a .jsonl file (one JSON object per line)"
        )
    if not manifest.is_file():
        raise ManifestError(f"--manifest {manifest}: no such file")
    rows = _csv_rows(manifest) if suffix in CSV_SUFFIXES else _jsonl_rows(manifest)
    base = manifest.parent
    root = Path(output_root) if output_root is not None else base
    root_id = _identity(root)
    shown_root = f"--output-root {root}" if output_root is not None else "the manifest's folder"
    jobs: list[Job] = []
    written: dict[str, tuple[int, str]] = {}  # output identity -> (line, as written)
    inputs: dict[str, int] = {}  # input identity -> first line reading it
    try:
        for line, row in rows:
            paths = {name: base / row[name] for name in COLUMNS}
            _check_paths(manifest, line, paths)
            out_id = _identity(paths["output"])
            if not _inside(out_id, root_id):
                raise ManifestError(
                    f"{manifest}:{line}: output {shorten(row['output'])} is outside {shown_root}; "
                    "pass --output-root DIR to allow results under DIR"
                )
            if out_id in written:
                raise ManifestError(
                    f"{manifest}:{line}: output {shorten(row['output'])} is already written by "
                    f"line {written[out_id][0]}"
                )
            written[out_id] = (line, shorten(row["output"]))
            for name in ("composite", "mask"):
                inputs.setdefault(_identity(paths[name]), line)
            jobs.append(
                Job(key=row["output"], composite=paths["composite"], mask=paths["mask"],
                    output=paths["output"])
            )  # fmt: skip
    except UnicodeDecodeError:
        raise ManifestError(f"--manifest {manifest}: not UTF-8 text") from None
    if not jobs:
        raise ManifestError(f"{manifest}: lists no images")
    for out_id, (line, shown) in written.items():
        if out_id in inputs:
            raise ManifestError(
                f"{manifest}:{line}: output {shown} would overwrite an input (line "
                f"{inputs[out_id]}); choose another output path"
            )
    return jobs


def _check_paths(manifest: Path, line: int, paths: dict[str, Path]) -> None:
    """Refuse a path no file can have (a NUL, a name over the file system's limit) by its
    column, shortened: found later it was a ``ValueError`` traceback, or a failure printing
    a path of megabytes whole."""
    for name, path in paths.items():
        problem = path_problem(path)
        if problem is not None:
            raise ManifestError(f"{manifest}:{line}: '{name}' {shorten(str(path))}: {problem}")


def _inside(path_id: str, root_id: str) -> bool:
    try:
        return os.path.commonpath([root_id, path_id]) == root_id
    except ValueError:  # different drives
        return False


def _identity(path: Path) -> str:
    """One spelling per file: ``a/../b.png``, ``./b.png`` and a symlink all agree."""
    return os.path.normcase(os.path.realpath(path))


def _csv_rows(manifest: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with _open(manifest) as fh:
        reader = csv.DictReader(fh)
        header = [name.strip() for name in (reader.fieldnames or [])]
        _check_names(manifest, 1, header)
        missing = [name for name in COLUMNS if name not in header]
        if missing:
            found = ", ".join(header) or "nothing"
            raise ManifestError(
                f"{manifest}:1: the header must name the columns composite,mask,output "
                f"(missing {', '.join(missing)}; found {found})"
            )
        reader.fieldnames = header
        try:
            for raw in reader:
                line = reader.line_num
                if None not in raw and not any((value or "").strip() for value in raw.values()):
                    continue  # a blank line
                yield line, _checked(manifest, line, _named(manifest, line, read_row(raw)))
        except csv.Error as exc:
            raise ManifestError(f"{manifest}:{reader.line_num}: not valid CSV ({exc})") from None


def _jsonl_rows(manifest: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with _open(manifest) as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text, object_pairs_hook=_unique_keys(manifest, line))
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{manifest}:{line}: not valid JSON ({exc.msg})") from None
            if not isinstance(raw, dict):
                raise ManifestError(
                    f"{manifest}:{line}: expected an object with composite, mask and output"
                )
            _check_names(manifest, line, list(raw))
            yield line, _checked(manifest, line, _named(manifest, line, raw))


def _check_names(manifest: Path, line: int, names: list[str]) -> None:
    """The names of one CSV header or one JSON object: no name twice, and none that is
    ``composite``, ``mask`` or ``output`` in other letter case."""
    _refuse_repeats(manifest, line, names)
    for name in (name.strip() for name in names):
        if name not in COLUMNS and name.lower() in COLUMNS:
            raise ManifestError(
                f"{manifest}:{line}: '{name}' is not a known name; write '{name.lower()}' "
                "(composite, mask and output are lower case)"
            )


def _refuse_repeats(manifest: Path, line: int, names: list[str]) -> None:
    seen: set[str] = set()
    for name in (name.strip() for name in names):
        if name in seen and name:
            raise ManifestError(f"{manifest}:{line}: '{name}' is given twice; give it once")
        seen.add(name)


def _unique_keys(manifest: Path, line: int) -> Callable[[list[tuple[str, Any]]], dict]:
    """A ``json.loads`` hook refusing a key given twice in one object, as a CSV header
    refuses a column given twice (a plain ``dict`` keeps the last one without a word)."""

    def build(pairs: list[tuple[str, Any]]) -> dict:
        _refuse_repeats(manifest, line, [key for key, _ in pairs])
        return dict(pairs)

    return build


def _named(manifest: Path, line: int, raw: dict[Any, Any]) -> dict[str, Any]:
    """A row's values by name; a value with no name (past the CSV header's last column,
    under an empty column name, or under the JSON key "") is refused."""
    if None in raw:  # csv.DictReader's key for the values past the header's last column
        raise ManifestError(f"{manifest}:{line}: more values than header columns")
    for name, value in raw.items():
        if not name.strip() and value not in (None, ""):
            raise ManifestError(
                f"{manifest}:{line}: value {value!r} has an empty name; name it or remove it"
            )
    return {name.strip(): value for name, value in raw.items()}


def _checked(manifest: Path, line: int, raw: dict[str, object]) -> dict[str, str]:
    row: dict[str, str] = {}
    for name in COLUMNS:
        value = raw.get(name)
        if value is None:
            raise ManifestError(f"{manifest}:{line}: missing '{name}'")
        if not isinstance(value, str):
            raise ManifestError(f"{manifest}:{line}: '{name}' must be a path (a string)")
        if not value.strip():
            raise ManifestError(f"{manifest}:{line}: empty '{name}'")
        row[name] = value.strip()
    return row


def _open(manifest: Path):
    """Text in UTF-8, tolerating the byte-order mark spreadsheet programs write."""
    try:
        return open(manifest, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise ManifestError(f"--manifest {manifest}: cannot read it ({exc.strerror})") from None
