"""The judgments log a user study writes while it runs: one CSV line per answered trial.

A study session can last an hour and a server can die at any moment (a laptop lid, a killed
terminal, SIGKILL), so an answer is only confirmed to the rater once its line is on disk:
each judgment is one ``write`` to a file opened in append mode, flushed and ``fsync``-ed
under a lock. The worst a crash can leave is a last line without its newline -- an answer
that was never confirmed, so the rater is shown that trial again -- and opening the log
cuts such a torn line off instead of letting it break every later read.

The columns are a superset of a design file's (``item,method_a,method_b,winner``), so
``dkt study fit`` reads a log and a hand-filled design alike.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import astuple, dataclass
from pathlib import Path

from dkt.csvcells import guard_row, read_cell
from dkt.errors import AlreadyAnsweredError, JudgmentLogError

__all__ = [
    "LOG_COLUMNS",
    "AlreadyAnsweredError",
    "Judgment",
    "JudgmentLog",
    "JudgmentLogError",
    "drop_torn_line",
    "is_log_text",
]

LOG_COLUMNS = ("item", "method_a", "method_b", "winner", "rater", "trial", "left", "ms", "catch")
_HEADER = ",".join(LOG_COLUMNS) + "\n"

try:  # POSIX: one server per log (a second one would interleave its answers with the first's)
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; the lock is advisory anyway
    fcntl = None  # type: ignore[assignment]


@dataclass(frozen=True)
class Judgment:
    """One answered trial, in the order of :data:`LOG_COLUMNS`.

    ``winner`` is a method name or ``tie``; ``left`` is the method shown on the left, so a
    position bias can be measured later; ``catch`` is empty for a design trial and names the
    kind of check otherwise (``composite``, ``repeat``).
    """

    item: str
    method_a: str
    method_b: str
    winner: str
    rater: str
    trial: str
    left: str
    ms: int
    catch: str = ""

    def as_row(self) -> dict[str, str]:
        return {c: str(v) for c, v in zip(LOG_COLUMNS, astuple(self), strict=True)}


def is_log_text(text: str) -> bool:
    """Whether ``text`` is a judgments log (its first line is exactly the log's header)."""
    return text.lstrip("\ufeff").startswith(_HEADER)


def drop_torn_line(text: str) -> tuple[str, str]:
    """``(complete lines, torn tail)``: the tail is what follows the last newline.

    Every line the log writes ends with a newline, so text after the last one is a write
    that was cut short by a crash: never confirmed, and never safe to parse.
    """
    cut = text.rfind("\n") + 1
    return text[:cut], text[cut:]


def _encode(row: Mapping[str, str]) -> bytes:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(guard_row(row[c] for c in LOG_COLUMNS))
    return buf.getvalue().encode("utf-8")


def _fsync_folder(folder: Path) -> None:
    """Make a newly created file's directory entry durable too (POSIX only)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class JudgmentLog:
    """An append-only judgments CSV held open (and locked) by one study server.

    Opening it repairs a torn last line (see :attr:`note`), writes the header to a new or
    empty file, and loads the rows so :meth:`answered` can tell which trials each rater has
    done: that is what lets a rater resume after a restart.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: One line for the operator when opening had to repair the file, else ``None``.
        self.note: str | None = None
        self._lock = threading.Lock()
        self._rows: list[dict[str, str]] = []
        self._answered: dict[str, set[str]] = {}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        try:
            self._fh = open(self.path, "ab+")  # noqa: SIM115 - held for the server's lifetime
        except OSError as exc:
            raise JudgmentLogError(
                self.path, f"cannot open for appending ({exc.strerror})"
            ) from exc
        try:
            self._take_lock()
            self._recover()
        except BaseException:
            self._fh.close()
            raise
        if created:
            _fsync_folder(self.path.parent)

    def _take_lock(self) -> None:
        if fcntl is None:  # pragma: no cover
            return
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise JudgmentLogError(
                self.path, "another study server is writing to this log (use another --out)"
            ) from exc

    def _recover(self) -> None:
        self._fh.seek(0)
        raw = self._fh.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JudgmentLogError(self.path, f"not UTF-8 text (byte {exc.start})") from exc
        complete, torn = drop_torn_line(text)
        # Checked before anything is cut: a file that is not a log is never modified.
        foreign = not is_log_text(complete) if complete else not _HEADER.startswith(torn)
        if foreign:
            first = text.splitlines()[0] if text else ""
            raise JudgmentLogError(
                self.path,
                f"not a judgments log (header {first!r}, expected {_HEADER.strip()!r}); "
                "is it the design file? pass another --out",
            )
        if torn:
            self._fh.truncate(len(complete.encode("utf-8")))
            self._sync()
            if complete:
                self.note = (
                    f"{self.path}: cut off a torn last line ({len(torn.encode('utf-8'))} "
                    "bytes, an answer that was never confirmed; that trial will be shown again)"
                )
        if not complete:
            self._append_bytes(_HEADER.encode("utf-8"))
            return
        reader = csv.reader(io.StringIO(complete.lstrip("\ufeff")))
        next(reader)
        for line, fields in enumerate(reader, start=2):
            if len(fields) != len(LOG_COLUMNS):
                raise JudgmentLogError(
                    self.path,
                    f"line {line} has {len(fields)} fields, not {len(LOG_COLUMNS)}; "
                    "the file was edited by hand or by another program",
                )
            values = (read_cell(f) for f in fields)
            self._remember(dict(zip(LOG_COLUMNS, values, strict=True)))

    def _remember(self, row: dict[str, str]) -> None:
        self._rows.append(row)
        self._answered.setdefault(row["rater"], set()).add(row["trial"])

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def _append_bytes(self, data: bytes) -> None:
        """Write ``data`` at the end durably; a failed write is cut back off, not left torn."""
        self._fh.seek(0, os.SEEK_END)
        before = self._fh.tell()
        try:
            self._fh.write(data)
            self._sync()
        except OSError:
            with contextlib.suppress(OSError):
                self._fh.truncate(before)
                self._sync()
            raise

    def append(self, judgment: Judgment) -> None:
        """Write one judgment; when this returns, the line is on disk.

        Raises :class:`AlreadyAnsweredError` when the rater already answered that trial, so a double
        click or a retried request never counts twice.
        """
        row = judgment.as_row()
        data = _encode(row)
        with self._lock:
            if judgment.trial in self._answered.get(judgment.rater, ()):
                raise AlreadyAnsweredError(
                    f"rater {judgment.rater!r} already answered trial {judgment.trial}"
                )
            self._append_bytes(data)
            self._remember(row)

    def answered(self, rater: str) -> set[str]:
        """The trials ``rater`` has answered (a copy: safe to keep while others append)."""
        with self._lock:
            return set(self._answered.get(rater, ()))

    def rows(self) -> list[dict[str, str]]:
        with self._lock:
            return [dict(r) for r in self._rows]

    def __iter__(self) -> Iterator[dict[str, str]]:
        return iter(self.rows())

    def __len__(self) -> int:
        with self._lock:
            return len(self._rows)

    def close(self) -> None:
        """Release the file (and its lock) so another server may take it."""
        with self._lock:
            if not self._fh.closed:
                self._fh.close()

    def __enter__(self) -> JudgmentLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
