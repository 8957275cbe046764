"""Running harmonization jobs one file at a time, recording what happened to each.

A bad file never stops the run: its error is recorded and the next job starts. Outputs are
written atomically, so an interrupted run leaves finished files and no partial ones, and a
re-run with ``skip_existing`` does only what is missing (and removes the temporary files a
killed run may have left). :mod:`dkt.inference.pipeline` runs the same steps on worker threads;
the pieces both share (reading, writing, turning an exception into a reported failure)
live here so the two paths cannot drift apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from dkt.atomic import is_temporary_of, remove_stale_temps
from dkt.errors import (
    DktError,
    ImageTooLargeError,
    MaskSizeError,
    PathError,
    WorkingMemoryError,
)
from dkt.imaging.imageio import (
    exif_orientation,
    header_size,
    orientation_note,
    read_alpha_composite,
    read_image,
    read_mask,
    read_metadata,
    verify_image,
    write_image,
)
from dkt.imaging.masks import check_selects
from dkt.inference.harmonizer import Harmonizer, Prepared
from dkt.inference.pairing import Job
from dkt.limits import DEFAULT_MAX_PIXELS


class Existing(str, Enum):
    """What to do when a job's output file is already there."""

    FAIL = "fail"
    SKIP = "skip"
    OVERWRITE = "overwrite"


@dataclass
class Failure:
    key: str
    composite: str
    error: str


@dataclass
class RunSummary:
    """What a folder run did: counts, each failure with its one-line reason, timings.

    >>> summary = h.harmonize_folder("comps", "masks", "out")       # doctest: +SKIP
    >>> summary.done, summary.failed, [f.error for f in summary.failures]  # doctest: +SKIP
    (39, 1, ['comps/b.png: mask is empty (every pixel is 0: ...)'])
    """

    total: int = 0
    done: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    seconds_total: float = 0.0
    seconds_model: float = 0.0
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)  # one line each, for the user

    @property
    def failed(self) -> int:
        return len(self.failures)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failed"] = self.failed
        data["images_per_second"] = (
            round(self.done / self.seconds_total, 3) if self.seconds_total > 0 else None
        )
        data["seconds_total"] = round(self.seconds_total, 3)
        data["seconds_model"] = round(self.seconds_model, 3)
        return data


#: Exceptions that belong to one file and must not stop a run: bad input (DktError), disk
#: full or permissions (OSError), a backend refusing one input (ValueError, RuntimeError), an
#: image too big for this machine's memory (MemoryError: the next, smaller one may fit).
FILE_ERRORS: tuple[type[BaseException], ...] = (
    DktError, OSError, ValueError, RuntimeError, MemoryError
)  # fmt: skip

#: How allocators word running out of memory when they raise something else (torch's CPU
#: allocator and CUDA raise RuntimeError subclasses).
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory")


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or any(words in text for words in _OUT_OF_MEMORY)


def failure_for(job: Job, exc: BaseException) -> Failure:
    """The one-line, file-naming report of ``exc`` (one of :data:`FILE_ERRORS`) for ``job``."""
    if isinstance(exc, ImageTooLargeError):
        message = f"{exc}; if the image is genuine, raise --max-pixels (0: no limit)"
    elif isinstance(exc, PathError):
        message = str(exc)
    elif isinstance(exc, WorkingMemoryError):
        message = f"{job.composite}: {exc}; pass a smaller --size"
    elif isinstance(exc, DktError):  # not tied to a file by itself (a full mask): name it
        message = f"{job.composite}: {exc}"
    elif _out_of_memory(exc):
        message = (
            f"{job.composite}: not enough memory to harmonize it at this working size; "
            "pass a smaller --size (and --batch 1)"
        )
    elif isinstance(exc, OSError):
        message = _os_error_line(job, exc)
    else:  # a runtime refusing this input: its words, not Python's class name
        reason = (str(exc).strip().splitlines() or ["the model could not run on it"])[0]
        message = f"{job.composite}: could not harmonize it ({reason})"
    return Failure(job.key, str(job.composite), message)


def _os_error_line(job: Job, exc: OSError) -> str:
    """``path: what the system said``, naming the user's file: a failed write names the
    output (not the hidden temporary beside it), a folder that cannot be made names both."""
    reason = exc.strerror or str(exc) or "input/output error"
    if not isinstance(exc.filename, str) or not exc.filename:
        return f"{job.composite}: {reason}"
    where = Path(exc.filename)
    if where == job.output or is_temporary_of(where, job.output):
        return f"{job.output}: cannot write it ({reason})"
    if where in job.output.parents:
        return f"{job.output}: cannot create its folder {where} ({reason})"
    return f"{where}: {reason}"


def existing_output_blocks(job: Job, existing: Existing, summary: RunSummary) -> bool:
    """Apply the existing-output policy; ``True`` (and recorded) when the job must not run.

    Under ``SKIP`` an output counts as done only if it decodes: a 0-byte or truncated file
    (another tool's interrupted copy, a full disk) is redone, with a note saying so.
    """
    if not job.output.exists() or existing is Existing.OVERWRITE:
        return False
    if existing is Existing.SKIP:
        try:
            verify_image(job.output)
        except DktError as exc:
            reason = exc.reason if isinstance(exc, PathError) else str(exc)
            summary.notes.append(f"{job.output}: existing output does not decode ({reason}); "
                                 "redoing it")  # fmt: skip
            return False
        summary.skipped += 1
    else:
        summary.failures.append(
            Failure(job.key, str(job.composite),
                    f"{job.output}: output exists (use --overwrite or --skip-existing)")
        )  # fmt: skip
    return True


def read_job(
    job: Job, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, np.ndarray]:
    """The composite (uint8 HxWx3, uint16 for a 16-bit file) and its mask (float32 HxW),
    or a file-naming error."""
    if job.mask is None:
        raise PathError(job.composite, job.missing_mask_reason())
    if job.mask_in_alpha:
        return read_alpha_composite(job.composite, max_pixels=max_pixels)
    # At the file's own depth: a 16-bit input gets a 16-bit result, background exact.
    composite = read_image(job.composite, max_pixels=max_pixels, keep_depth=True)
    try:
        mask = read_mask(job.mask, expected_hw=composite.shape[:2], max_pixels=max_pixels)
    except MaskSizeError as exc:
        note = orientation_note(exif_orientation(job.composite))
        if not note:
            raise
        raise MaskSizeError(exc.path, f"{exc.reason}; {note}") from None
    # Writing the composite back unchanged and counting it harmonized hid wrong masks.
    check_selects(mask, job.mask)
    return composite, mask


def job_bytes(job: Job, harmonizer: Harmonizer) -> int:
    """Memory ``job`` will hold in a pipeline, from its composite's header; 0 if unreadable.

    An unreadable composite fails as soon as a reader opens it, holding next to nothing.
    """
    size = header_size(job.composite)
    return 0 if size is None else harmonizer.item_bytes(*size)


def prepare_job(
    job: Job, harmonizer: Harmonizer, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Prepared:
    """Read ``job`` and make the model's inputs (what a reader thread does); the composite's
    colour profile, DPI and EXIF go along, for the writer."""
    prepared = harmonizer.prepare(*read_job(job, max_pixels))
    prepared.meta = read_metadata(job.composite)
    return prepared


def finish_job(
    job: Job, harmonizer: Harmonizer, prepared: Prepared, output: np.ndarray | None
) -> str:
    """Carry the model's output to full size and write it atomically (a writer thread),
    with the composite's metadata: in its colour profile the background is the painting's."""
    write_image(job.output, harmonizer.finish(prepared, output), meta=prepared.meta)
    return str(job.output)


def run_one(job: Job, harmonizer: Harmonizer, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> float:
    """Read, harmonize and write one job; returns the seconds spent in the model.

    Only the backend's run is timed, as in the pipeline, so the two report the same thing:
    reading, downsampling, the transfer to full resolution and encoding are CPU work apart
    from the model, and counting them as model time hid them from the benchmark.
    """
    prepared = prepare_job(job, harmonizer, max_pixels)
    output = None
    start = time.perf_counter()
    if prepared.needs_model:
        model_composite, model_mask = prepared.model_inputs()
        output = harmonizer.run_model(model_composite[None], model_mask[None])[0]
    model_seconds = time.perf_counter() - start
    finish_job(job, harmonizer, prepared, output)
    return model_seconds


def run_jobs(
    jobs: Iterable[Job],
    harmonizer: Harmonizer,
    existing: Existing = Existing.FAIL,
    on_done: Callable[[Job], None] = lambda job: None,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> RunSummary:
    """Run every job in turn; a KeyboardInterrupt stops after the current file with a summary.

    ``max_pixels`` is the decompression-bomb limit for every image and mask read
    (``None``: no limit).
    """
    jobs = list(jobs)
    summary = RunSummary(total=len(jobs))
    started = time.perf_counter()
    remove_stale_temps(job.output for job in jobs)
    try:
        for job in jobs:
            _run_recorded(job, harmonizer, existing, summary, max_pixels)
            on_done(job)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.seconds_total = time.perf_counter() - started
    return summary


def _run_recorded(
    job: Job,
    harmonizer: Harmonizer,
    existing: Existing,
    summary: RunSummary,
    max_pixels: int | None,
) -> None:
    if existing_output_blocks(job, existing, summary):
        return
    try:
        summary.seconds_model += run_one(job, harmonizer, max_pixels)
    except FILE_ERRORS as exc:
        summary.failures.append(failure_for(job, exc))
        return
    summary.done += 1
    summary.outputs.append(str(job.output))
