"""``--manifest FILE``: the jobs of a run listed explicitly, for pipelines without folders.

A manifest is a CSV file whose header names the columns ``composite``, ``mask`` and
``output`` (other columns, an id say, are ignored), or a JSON-lines file (``.jsonl``) with
one object per line holding those three keys. Relative paths are relative to the manifest's
own folder, so a manifest and its images can move together.

Everything wrong with the manifest itself is refused before any image is read, with one
line naming the file and the line (``jobs.csv:7: empty 'mask'``); a listed image that turns
out to be missing or unreadable fails on its own at run time, like in a folder run. The
job's key, used in reports and by ``--shard``, is the output as written in the manifest.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

from dkt.errors import ManifestError
from dkt.inference.pairing import Job

COLUMNS: tuple[str, ...] = ("composite", "mask", "output")
CSV_SUFFIXES = frozenset({".csv"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})


def plan_manifest(manifest: Path) -> list[Job]:
    """The jobs listed in ``manifest`` (.csv or .jsonl), in the manifest's order."""
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
    jobs: list[Job] = []
    written: dict[str, tuple[int, str]] = {}  # output identity -> (line, as written)
    inputs: dict[str, int] = {}  # input identity -> first line reading it
    try:
        for line, row in rows:
            paths = {name: base / row[name] for name in COLUMNS}
            out_id = _identity(paths["output"])
            if out_id in written:
                raise ManifestError(
                    f"{manifest}:{line}: output {row['output']} is already written by line "
                    f"{written[out_id][0]}"
                )
            written[out_id] = (line, row["output"])
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


def _identity(path: Path) -> str:
    """One spelling per file: ``a/../b.png``, ``./b.png`` and a symlink all agree."""
    return os.path.normcase(os.path.realpath(path))


def _csv_rows(manifest: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with _open(manifest) as fh:
        reader = csv.DictReader(fh)
        header = [name.strip() for name in (reader.fieldnames or [])]
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
                if None in raw:
                    raise ManifestError(
                        f"{manifest}:{reader.line_num}: more values than header columns"
                    )
                if not any((value or "").strip() for value in raw.values()):
                    continue  # a blank line
                yield reader.line_num, _checked(manifest, reader.line_num, raw)
        except csv.Error as exc:
            raise ManifestError(f"{manifest}:{reader.line_num}: not valid CSV ({exc})") from None


def _jsonl_rows(manifest: Path) -> Iterator[tuple[int, dict[str, str]]]:
    with _open(manifest) as fh:
        for line, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                raw = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{manifest}:{line}: not valid JSON ({exc.msg})") from None
            if not isinstance(raw, dict):
                raise ManifestError(
                    f"{manifest}:{line}: expected an object with composite, mask and output"
                )
            yield line, _checked(manifest, line, raw)


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
