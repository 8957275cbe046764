"""Atomic file writes: a reader never sees a half-written output or checkpoint.

The data goes to a temporary file in the destination's folder (same file system, so the
final ``os.replace`` is atomic), is flushed to disk, and only then takes the final name.
If anything fails or the process is killed, the destination is untouched and at most a
hidden ``.<name>.*.tmp`` file is left behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

_TMP_SUFFIX = ".tmp"


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
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=_TMP_SUFFIX, dir=final.parent)
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
        by_folder.setdefault(final.parent, set()).add(final.name)
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


def _temp_owner(name: str) -> str | None:
    """The final file name a temporary belongs to (``.a.png.x1y2.tmp`` -> ``a.png``)."""
    if not (name.startswith(".") and name.endswith(_TMP_SUFFIX)):
        return None
    owner, dot, _random = name[1 : -len(_TMP_SUFFIX)].rpartition(".")
    return owner if dot else None
