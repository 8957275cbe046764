"""Atomic file writes: a reader never sees a half-written output or checkpoint.

The data goes to a temporary file in the destination's folder (same file system, so the
final ``os.replace`` is atomic), is flushed to disk, and only then takes the final name.
If anything fails or the process is killed, the destination is untouched and at most a
hidden ``.<name>~<hash>.*.tmp`` file is left behind. The temporary's name is short whatever
the final one: ``<name>`` is the final name's first 32 bytes and ``<hash>`` tells apart the
names that share them, so any name the file system takes can be written (a temporary named
``.<name>.*.tmp`` is 14 bytes longer than ``<name>``, and failed for names over 241 bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

_TMP_SUFFIX = ".tmp"
#: Bytes of the final name a temporary's name begins with, so a user can tell whose it is.
_NAME_BYTES = 32


def _default_mode() -> int:
    """Permissions a plain ``open(path, "w")`` would give: 0o666 less the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write to; on success it is renamed to ``path``.

    ``mkstemp`` creates its file as 0600; the result is given ordinary permissions so an
    output is as readable as any other file the user writes.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{_temp_tag(final.name)}."
    fd, tmp_name = tempfile.mkstemp(prefix=prefix, suffix=_TMP_SUFFIX, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def remove_stale_temps(paths: Iterable[str | Path]) -> int:
    """Delete the ``.<name>.*.tmp`` files that a killed writer left next to ``paths``.

    A process killed with SIGKILL (or by the OOM killer, or a lost node) cannot clean up,
    so a re-run calls this for the outputs it is about to produce. Only temporaries named
    after one of ``paths`` are touched, so another process writing other files into the
    same folder (another shard) is never disturbed. Each folder is listed once, so the cost
    stays proportional to the folder sizes even for thousands of outputs. Returns how many
    files were removed.
    """
    by_folder: dict[Path, set[str]] = {}
    for path in paths:
        final = Path(path)
        # The name itself too: what an earlier dkt's ``.<name>.*.tmp`` temporaries carry.
        by_folder.setdefault(final.parent, set()).update((final.name, _temp_tag(final.name)))
    removed = 0
    for folder, names in by_folder.items():
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if _temp_owner(entry.name) in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def is_temporary_of(path: str | Path, final: str | Path) -> bool:
    """Whether ``path`` is a temporary :func:`atomic_path` made for ``final``: an error about
    it is an error writing ``final``, and should name that, not a random hidden file."""
    path, final = Path(path), Path(final)
    owner = _temp_owner(path.name)
    return path.parent == final.parent and owner in (_temp_tag(final.name), final.name)


def _temp_tag(name: str) -> str:
    """What stands for final name ``name`` in its temporaries' names: at most 32 bytes of it
    (whole characters) and a hash of all of it."""
    digest = hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    start = ""
    for char in name:
        if len(os.fsencode(start + char)) > _NAME_BYTES:
            break
        start += char
    return f"{start}~{digest}"


def _temp_owner(name: str) -> str | None:
    """The tag (:func:`_temp_tag`) or, from an earlier dkt, the final name that a
    temporary's name holds (``.a.png~3f2a.x1y2.tmp`` -> ``a.png~3f2a``)."""
    if not (name.startswith(".") and name.endswith(_TMP_SUFFIX)):
        return None
    owner, dot, _random = name[1 : -len(_TMP_SUFFIX)].rpartition(".")
    return owner if dot else None
