"""Running harmonization jobs one file at a time, recording what happened to each.

A bad file never stops the run: its error is recorded and the next job starts. Outputs are
written atomically, so an interrupted run leaves finished files and no partial ones, and a
re-run with ``skip_existing`` does only what is missing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from backends.harmonizer import Harmonizer
from dkt_cli.pairing import Job
from dktnet.errors import DktError, PathError
from dktnet.imageio import read_image, read_mask, write_image


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
    total: int = 0
    done: int = 0
    skipped: int = 0
    failures: list[Failure] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    seconds_total: float = 0.0
    seconds_model: float = 0.0
    interrupted: bool = False

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


def run_one(job: Job, harmonizer: Harmonizer) -> float:
    """Read, harmonize and write one job; returns the seconds spent in the model."""
    if job.mask is None:
        raise PathError(job.composite, job.missing_mask_reason())
    composite = read_image(job.composite)
    mask = read_mask(job.mask, expected_hw=composite.shape[:2])
    start = time.perf_counter()
    result = harmonizer.harmonize(composite, mask)
    model_seconds = time.perf_counter() - start
    write_image(job.output, result)
    return model_seconds


def run_jobs(
    jobs: Iterable[Job],
    harmonizer: Harmonizer,
    existing: Existing = Existing.FAIL,
    on_done: Callable[[Job], None] = lambda job: None,
) -> RunSummary:
    """Run every job; a KeyboardInterrupt stops after the current file with a summary."""
    jobs = list(jobs)
    summary = RunSummary(total=len(jobs))
    started = time.perf_counter()
    try:
        for job in jobs:
            _run_recorded(job, harmonizer, existing, summary)
            on_done(job)
    except KeyboardInterrupt:
        summary.interrupted = True
    summary.seconds_total = time.perf_counter() - started
    return summary


def _run_recorded(
    job: Job, harmonizer: Harmonizer, existing: Existing, summary: RunSummary
) -> None:
    if job.output.exists():
        if existing is Existing.SKIP:
            summary.skipped += 1
            return
        if existing is Existing.FAIL:
            summary.failures.append(
                Failure(job.key, str(job.composite),
                        f"{job.output}: output exists (use --overwrite or --skip-existing)")
            )  # fmt: skip
            return
    try:
        summary.seconds_model += run_one(job, harmonizer)
    except PathError as exc:
        summary.failures.append(Failure(job.key, str(job.composite), str(exc)))
        return
    except DktError as exc:  # not tied to a file by itself (e.g. a full mask): name the composite
        summary.failures.append(Failure(job.key, str(job.composite), f"{job.composite}: {exc}"))
        return
    except (OSError, ValueError, RuntimeError) as exc:  # e.g. disk full, backend failure
        summary.failures.append(
            Failure(job.key, str(job.composite), f"{job.composite}: {type(exc).__name__}: {exc}")
        )
        return
    summary.done += 1
    summary.outputs.append(str(job.output))
