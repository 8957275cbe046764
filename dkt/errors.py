"""Errors a user can act on.

Every error raised for bad input carries the offending path and a one-line reason, so
a folder run can report each failed file on its own line and carry on with the rest.
"""

from __future__ import annotations

from pathlib import Path


class DktError(Exception):
    """Base class: ``str(err)`` is a single line meant for the user.

    >>> try:                                             # doctest: +SKIP
    ...     h("missing.png", "mask.png")
    ... except dkt.DktError as err:
    ...     print(err)
    missing.png: no such file
    """


class PathError(DktError):
    """An error tied to one file: the message is ``"<path>: <reason>"``.

    >>> err = PathError("scan.tif", "truncated")
    >>> str(err), err.path.name, err.reason
    ('scan.tif: truncated', 'scan.tif', 'truncated')
    """

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class ImageInputError(PathError):
    """An image or mask file that cannot be used (unreadable, wrong size, wrong kind).

    >>> str(ImageInputError("m.png", "mask is empty"))
    'm.png: mask is empty'
    """


class ImageTooLargeError(ImageInputError):
    """An image over the pixel limit (the decompression-bomb guard), refused unread."""


class CheckpointError(PathError):
    """A model file that cannot be loaded (wrong format, missing or unexpected tensors)."""


class WorkingMemoryError(DktError):
    """An image whose working size needs more memory than is left: refused before the run."""


class StrengthError(DktError, ValueError):
    """A style strength that is not a number from 0 to 1 (a ``ValueError`` too).

    >>> h = dkt.Harmonizer(strength=1.5)                 # doctest: +SKIP
    dkt.StrengthError: strength must be a number from 0 to 1, got 1.5
    >>> isinstance(StrengthError("strength: ..."), ValueError)
    True
    """
