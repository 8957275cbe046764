"""Running a folder of jobs as a pipeline that keeps the model busy.

Decoding, downsampling, the full-resolution transfer and encoding are CPU work that the
model does not need to wait for. Here a pool of reader threads decodes and prepares images
ahead of the model, the model runs on the calling thread on batches of items that share a
working shape, and a pool of writer threads carries each result to full size, encodes it
and writes it atomically. Threads suffice: Pillow and numpy release the GIL while they
decode, resize, compute and encode, and the model's own thread releases it inside torch.
When the model runs on the CPU, a :class:`~dkt.inference.cpu.CoreShare` keeps the workers off
the cores the model is using while it runs.

Memory is bounded twice. By count: at most ``workers + batch`` items are read ahead
(counting those waiting for a batch), one batch is in the model and at most
``2 * workers + batch`` wait to be written, so a run over a million files holds as many
images as one over ten. And by bytes, since a count means little when one 12,000 x 9,000
scan weighs as much as a hundred thumbnails: before an image is decoded, a helper thread
reads its size from the file's header, and the image is let in only when the arrays of
every image in flight (:meth:`~dkt.inference.harmonizer.Harmonizer.item_bytes`, from read to
written) still fit ``max_inflight_bytes``. An image bigger than the whole budget still runs,
alone, so no file is ever refused for it. Images are let in in job order: a big one waits
for room rather than being overtaken for ever by small ones.

The record is the sequential one's (:func:`dkt.inference.jobs.run_jobs`): the same counts, the
same failures named with file and reason, outputs and failures in job order, one
``on_done`` call per job from the calling thread. Ctrl-C stops reading and running at once;
results the model has already produced are still written (a second Ctrl-C drops those not
yet started); nothing is ever left half-written, because every write is atomic.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

import numpy as np

from backends.base import Backend
from dkt.atomic import remove_stale_temps
from dkt.inference.cpu import CoreShare, usable_cores
from dkt.inference.harmonizer import Harmonizer, Prepared
from dkt.inference.jobs import (
    FILE_ERRORS,
    Existing,
    RunSummary,
    existing_output_blocks,
    failure_for,
    finish_job,
    job_bytes,
    prepare_job,
    run_jobs,
)
from dkt.inference.pairing import Job
from dkt.limits import DEFAULT_MAX_INFLIGHT_MB, DEFAULT_MAX_PIXELS


class ByteBudget:
    """Bytes held by the items in flight, never more than ``limit``, except one item alone.

    Used from one thread (the pipeline's scheduler): an item ``take``s its bytes before it
    is decoded and ``give``s them back once written or failed.
    """

    def __init__(self, limit: int | None) -> None:
        if limit is not None and limit < 0:
            raise ValueError(f"the byte budget must be >= 0, got {limit}")
        self.limit = limit
        self.held = 0
        self.items = 0
        self.peak = 0

    def admits(self, nbytes: int) -> bool:
        """Whether an item of ``nbytes`` fits now (always, when nothing else is held)."""
        return self.items == 0 or self.limit is None or self.held + nbytes <= self.limit

    def take(self, nbytes: int) -> None:
        self.held += nbytes
        self.items += 1
        self.peak = max(self.peak, self.held)

    def give(self, nbytes: int) -> None:
        self.held -= nbytes
        self.items -= 1


@dataclass
class _Item:
    """A job on its way through the pipeline."""

    job: Job
    prepared: Prepared | None = None
    nbytes: int | None = None  # its budget, once its header is read
    admitted: bool = False

    def ready(self) -> Prepared:
        """Its prepared arrays, held from its read until its release."""
        # Only items read (and not yet released) are batched or written.
        assert self.prepared is not None
        return self.prepared


class _Pipeline:
    def __init__(
        self,
        harmonizer: Harmonizer,
        summary: RunSummary,
        on_done: Callable[[Job], None],
        workers: int,
        batch: int,
        max_pixels: int | None,
        max_inflight_bytes: int | None,
        share: CoreShare | None,
    ) -> None:
        self.harmonizer = harmonizer
        self.summary = summary
        self.on_done = on_done
        self.batch = batch
        self.max_pixels = max_pixels
        self.read_ahead = workers + batch
        self.write_behind = 2 * workers + batch  # room for a whole batch's results
        self.budget = ByteBudget(max_inflight_bytes)
        self.share = share
        self.prepare = share.as_worker(prepare_job) if share else prepare_job
        self.finish = share.as_worker(finish_job) if share else finish_job
        # Header reads wait on imageio's Pillow lock while a reader decodes: on their own
        # thread they never hold up the model.
        self.sizer = ThreadPoolExecutor(1, thread_name_prefix="dkt-size")
        self.readers = ThreadPoolExecutor(workers, thread_name_prefix="dkt-read")
        self.writers = ThreadPoolExecutor(workers, thread_name_prefix="dkt-write")
        self.sizing: dict[Future[int], _Item] = {}
        self.queued: deque[_Item] = deque()  # in job order, waiting for room to be read
        self.reading: dict[Future[Prepared], _Item] = {}
        self.writing: dict[Future[str], _Item] = {}
        self.waiting: dict[tuple[int, int], list[_Item]] = {}  # by working shape

    # ------------------------------------------------------------------ main loop

    def run(self, items: Iterable[_Item], existing: Existing) -> None:
        todo = iter(items)
        exhausted = False
        while True:
            while not exhausted and self._ahead() < self.read_ahead:
                item = next(todo, None)
                if item is None:
                    exhausted = True
                elif existing_output_blocks(item.job, existing, self.summary):
                    self.on_done(item.job)
                else:
                    future = self.sizer.submit(job_bytes, item.job, self.harmonizer)
                    self.sizing[future] = item
                    self.queued.append(item)
            self._collect_sizes()
            self._collect_writes(block=False)
            got_one = self._collect_reads()
            self._admit()
            more_coming = bool(self.reading or self.queued) or not exhausted
            full = next((s for s, group in self.waiting.items() if len(group) >= self.batch), None)
            if full is not None:
                self._run_batch(full)
            elif self.waiting and (not got_one or not more_coming):
                # Nothing new arrived: run what is waiting rather than leave the model idle.
                self._run_batch(max(self.waiting, key=lambda s: len(self.waiting[s])))
            elif self.reading:
                wait(list(self.reading), return_when=FIRST_COMPLETED)
            elif self.sizing or (self.queued and self.writing):
                # Wait for a header, or for a write to make room in the budget.
                pending: list[Future[Any]] = [*self.sizing, *self.writing]
                wait(pending, return_when=FIRST_COMPLETED)
            elif not more_coming and not self.waiting:
                break
        while self.writing:
            self._collect_writes(block=True)

    def _ahead(self) -> int:
        """Items taken from the job list and not yet in the model."""
        waiting = sum(len(group) for group in self.waiting.values())
        return len(self.queued) + len(self.reading) + waiting

    def _collect_sizes(self) -> None:
        for future in [f for f in self.sizing if f.done()]:
            item = self.sizing.pop(future)
            try:
                item.nbytes = future.result()
            except FILE_ERRORS:  # the reader will say what is wrong with the file
                item.nbytes = 0

    def _admit(self) -> None:
        """Start reading queued items, in job order, while the budget has room for them."""
        while self.queued:
            item = self.queued[0]
            nbytes = item.nbytes
            if nbytes is None or not self.budget.admits(nbytes):  # None: its header is unread
                return
            self.queued.popleft()
            self.budget.take(nbytes)
            item.admitted = True
            future = self.readers.submit(self.prepare, item.job, self.harmonizer, self.max_pixels)
            self.reading[future] = item

    def _collect_reads(self) -> bool:
        """Move finished reads to their batch group (or straight to writing); any new?"""
        finished = [f for f in self.reading if f.done()]
        for future in finished:
            item = self.reading.pop(future)
            try:
                item.prepared = future.result()
            except FILE_ERRORS as exc:
                self._fail(item, exc)
                continue
            if item.prepared.needs_model:
                self.waiting.setdefault(item.prepared.shape, []).append(item)
            else:  # an empty mask: the composite itself is the result
                self._write(item, None)
        return bool(finished)

    def _run_batch(self, shape: tuple[int, int]) -> None:
        """Run up to ``batch`` waiting items of one shape through the model, then write them."""
        group = self.waiting[shape]
        items, self.waiting[shape] = group[: self.batch], group[self.batch :]
        if not self.waiting[shape]:
            del self.waiting[shape]
        try:
            outputs = self._model(items)
        except FILE_ERRORS as exc:
            if len(items) == 1:
                self._fail(items[0], exc)
                return
            # One bad input must not fail its batch-mates: retry them one by one.
            for item in items:
                try:
                    self._write(item, self._model([item])[0])
                except FILE_ERRORS as single_exc:
                    self._fail(item, single_exc)
            return
        for item, output in zip(items, outputs, strict=True):
            self._write(item, output)

    def _model(self, items: list[_Item]) -> np.ndarray:
        inputs = [item.ready().model_inputs() for item in items]
        composite = np.stack([model_composite for model_composite, _ in inputs])
        mask = np.stack([model_mask for _, model_mask in inputs])
        cores = self.share.model() if self.share else contextlib.nullcontext()
        start = time.perf_counter()
        try:
            with cores:
                return self.harmonizer.run_model(composite, mask)
        finally:
            self.summary.seconds_model += time.perf_counter() - start

    def _write(self, item: _Item, output: np.ndarray | None) -> None:
        while len(self.writing) >= self.write_behind:
            self._collect_writes(block=True)
        future = self.writers.submit(self.finish, item.job, self.harmonizer, item.ready(), output)
        self.writing[future] = item

    def _collect_writes(self, *, block: bool) -> None:
        if block and self.writing:
            wait(list(self.writing), return_when=FIRST_COMPLETED)
        for future in [f for f in self.writing if f.done()]:
            item = self.writing.pop(future)
            if future.cancelled():
                continue
            try:
                self.summary.outputs.append(future.result())
            except FILE_ERRORS as exc:
                self._fail(item, exc)
                continue
            self._release(item)
            self.summary.done += 1
            self.on_done(item.job)

    def _fail(self, item: _Item, exc: BaseException) -> None:
        self._release(item)
        self.summary.failures.append(failure_for(item.job, exc))
        self.on_done(item.job)

    def _release(self, item: _Item) -> None:
        """Give the item's bytes back (it is written or failed) and drop its arrays."""
        if item.admitted:
            assert item.nbytes is not None  # _admit admits an item only once its size is known
            self.budget.give(item.nbytes)
            item.admitted = False
        item.prepared = None

    # ------------------------------------------------------------------ stopping

    def stop(self) -> None:
        """After Ctrl-C: drop what is not yet computed, write what is (Ctrl-C again: drop)."""
        self.sizer.shutdown(wait=False, cancel_futures=True)
        self.readers.shutdown(wait=False, cancel_futures=True)
        try:
            while self.writing:
                self._collect_writes(block=True)
        except KeyboardInterrupt:
            self.writers.shutdown(wait=False, cancel_futures=True)
            wait(list(self.writing))
            self._collect_writes(block=False)

    def close(self) -> None:
        """Let running threads end (they finish within one image) and free the pools."""
        try:
            self.sizer.shutdown(wait=True, cancel_futures=True)
            self.readers.shutdown(wait=True, cancel_futures=True)
            self.writers.shutdown(wait=True, cancel_futures=True)
        except KeyboardInterrupt:  # impatient: the threads still end on their own, unwaited
            self.summary.interrupted = True


def run_pipelined(
    jobs: Iterable[Job],
    harmonizer: Harmonizer,
    existing: Existing = Existing.FAIL,
    on_done: Callable[[Job], None] = lambda job: None,
    *,
    workers: int = 2,
    batch: int = 4,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_inflight_bytes: int | None = DEFAULT_MAX_INFLIGHT_MB << 20,
    share: CoreShare | None = None,
) -> RunSummary:
    """Run every job with ``workers`` reader and ``workers`` writer threads, batches of ``batch``.

    Same contract and summary as :func:`dkt.inference.jobs.run_jobs`. ``max_inflight_bytes``
    bounds the memory of the images in flight (``None``: only their count is bounded).
    ``share``: the cores the model (on the CPU) shares with the workers; ``None`` when the
    model runs elsewhere and the workers may use every core.
    """
    if workers < 1 or batch < 1:
        raise ValueError(f"workers and batch must be >= 1, got {workers} and {batch}")
    jobs = list(jobs)
    summary = RunSummary(total=len(jobs))
    started = time.perf_counter()
    remove_stale_temps(job.output for job in jobs)
    pipeline = _Pipeline(
        harmonizer, summary, on_done, workers, batch, max_pixels, max_inflight_bytes, share
    )
    try:
        pipeline.run((_Item(job) for job in jobs), existing)
    except KeyboardInterrupt:
        summary.interrupted = True
        pipeline.stop()
    finally:
        pipeline.close()
    # Threads finish out of order; report in job order, as the sequential run does.
    order = {job.key: i for i, job in enumerate(jobs)}
    position = {str(job.output): i for i, job in enumerate(jobs)}
    summary.outputs.sort(key=position.__getitem__)
    summary.failures.sort(key=lambda failure: order[failure.key])
    summary.seconds_total = time.perf_counter() - started
    return summary


def default_batch(backend: Backend) -> int:
    """Images per model run when none is asked for: 4 on a GPU, 1 on the CPU (where batching
    saves nothing and multiplies the model's memory)."""
    return 1 if backend.on_cpu else 4


def run_all(
    jobs: Iterable[Job],
    harmonizer: Harmonizer,
    existing: Existing = Existing.FAIL,
    on_done: Callable[[Job], None] = lambda job: None,
    *,
    workers: int = 2,
    batch: int | None = None,
    threads: int | None = None,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    max_inflight_bytes: int | None = DEFAULT_MAX_INFLIGHT_MB << 20,
) -> RunSummary:
    """Run ``jobs`` one at a time (``workers=0``) or pipelined, as ``dkt harmonize`` does.

    The CLI and the Python API share this so both batch the same way (``batch=None``:
    :func:`default_batch`) and split the cores the same way between the model (``threads``,
    as the backend was opened with) and the pipeline's readers and writers.
    """
    engine = harmonizer.backend
    if workers == 0:
        return run_jobs(jobs, harmonizer, existing, on_done, max_pixels=max_pixels)
    if batch is None:
        batch = default_batch(engine)
    share = CoreShare(usable_cores(), threads or usable_cores()) if engine.on_cpu else None
    return run_pipelined(jobs, harmonizer, existing, on_done, workers=workers, batch=batch,
                         max_pixels=max_pixels, max_inflight_bytes=max_inflight_bytes,
                         share=share)  # fmt: skip
