"""Errors a user can act on: every one dkt raises for bad input or a failed step is here.

Every error raised for bad input carries the offending path and a one-line reason, so
a folder run can report each failed file on its own line and carry on with the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class LocatedSource(Protocol):
    """An annotation that knows its file and where in it it is (a line, an annotation id)."""

    @property
    def file(self) -> Path: ...

    @property
    def where(self) -> str: ...


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


class OptionError(DktError, ValueError):
    """A harmonizer option outside what it accepts (size, upsample, workers, batch); the
    message names the option, in the same words from the command line, the API and the
    server (a ``ValueError`` too).

    >>> h = dkt.Harmonizer(size=-1)                      # doctest: +SKIP
    dkt.OptionError: size must be 0 (the image's own) or at least 8, got -1
    """


class EmptySheetError(DktError):
    """No composite could be read, so a contact sheet would be empty."""


class JudgmentError(DktError):
    """A judgments table that cannot be used; the message names the row at fault."""


class JudgmentLogError(PathError):
    """A log that cannot be used: not a judgments log, locked by another server, unreadable."""


class AlreadyAnsweredError(DktError):
    """The rater has answered that trial before: a double click or a retried request."""


class MethodError(DktError):
    """A method token that names nothing usable, or a method that cannot be opened."""


class WeightsDownloadError(DktError):
    """A download failed or the file's checksum did not match (nothing was kept)."""


class StudyError(DktError):
    """A design, item list or image folder the study cannot be made or run from, or a fit
    option it cannot use; one line naming what is wrong."""


class UploadError(DktError):
    """A request body refused before anything is decoded; ``str()`` is the one-line reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class MissingPretrainedError(PathError):
    """A pretrained file that was asked for is not where it was looked for."""


class InputError(DktError):
    """An in-memory image or mask of a shape, type or range dkt cannot use.

    >>> h(np.zeros((64, 80), np.uint8), mask)             # doctest: +SKIP
    dkt.InputError: image: expected an (H, W, 3) or (H, W, 4) array, got (64, 80)
    """


class PairingError(DktError, ValueError):
    """A bad combination of options or inputs, with a one-line user-facing message.

    Raised before anything is processed, so the CLI can print it and exit non-zero
    without a traceback.
    """


class UsageError(DktError):
    """Inputs or options that do not go together (COMPOSITE with ``--composites``, ``--at``
    without ``--object``, ``--skip-existing`` with ``--overwrite``); the message names them
    in the command line's words, and ``dkt harmonize`` exits 2 for it."""


class ShardError(DktError, ValueError):
    """A ``--shard`` value that does not name one of N shards; the message says why."""


class EmptyBackgroundError(DktError):
    """The mask covers everything: there is no painting to take the style from."""


class PasteError(DktError):
    """A position or scale that leaves nothing of the object on the painting."""


class ScaledTooLargeError(PasteError):
    """A scale that would blow the cut-out up past the pixel limit: refused before resizing,
    as the decompression-bomb guard refuses a file before decoding it."""


class ManifestError(PairingError):
    """A manifest that cannot be used; the message names the file and, if any, the line."""


class MaskSizeError(ImageInputError):
    """A mask whose size is not its composite's (as read: upright)."""


class BackendError(DktError):
    """A backend cannot load or run (missing extra, unsupported device, bad model file)."""


class EngineMismatchError(BackendError):
    """The engine was built for another TensorRT version or another GPU."""


class ShapeError(BackendError):
    """A bad shape option, or an input outside the profile a model was exported for."""


class ConfigError(DktError, ValueError):
    """A config that cannot be used; the message names the file or the key."""


class ClusterError(DktError):
    """A distributed run cannot start: Ray is not installed, or no cluster answers there."""


class MaskSourceError(ImageInputError):
    """A bad annotation: the message names its file and where in it (line, annotation id).

    ``path`` is the annotation file; ``source`` is the annotation itself, which is what the
    dataset remembers and skips, since one bad line must not rule out the whole file.
    """

    def __init__(self, source: LocatedSource, detail: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(source.file, f"{source.where}: {detail}")


class MissingLossNetworkError(CheckpointError):
    """No pretrained VGG-19 was found, and none was asked to be downloaded."""


class TrainingDivergedError(DktError):
    """A training loss became NaN or infinite: the run stops, its last good checkpoint kept.

    Every step after a non-finite loss would only spread it through the weights, and the
    model written at the end would harmonize nothing while looking like a success.
    """


class ModelMetadataError(BackendError):
    """The record a model file carries (an ONNX export's dkt metadata, an engine's sidecar)
    is malformed: the message names the file and the field at fault."""


class ModelOutputError(DktError):
    """The model gave NaN or infinite values for an image: that file fails, nothing is written.

    Blending such an output hid it (the composite came back unchanged and counted as done).
    """


class EvaluationError(DktError):
    """``dkt evaluate``'s inputs cannot be used (no composites, too few references, weights
    refused); the message names the option and the file, as the command printed it."""


class ExportError(DktError):
    """An export request that cannot be carried out: format, suffix, precision, options."""


class CompositeSetError(DktError):
    """A frozen composite set cannot be made: conflicting sources, an ``--out`` folder in the
    way, a draw that hit an unreadable file."""


class ListenError(DktError):
    """A server address that cannot be listened on (a host that does not resolve, a port in
    use), found before anything slow is loaded."""


class WebStackError(DktError):
    """The optional web stack (``dkt[serve]``) a server needs is not installed."""


class RequestError(DktError):
    """An HTTP request the server refuses with ``status``; ``str()`` is the one-line reason."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(" ".join(message.split()))
        self.status, self.headers = status, headers
