"""Running the model on a CPU that it shares with image decoding and encoding.

How the model and a folder run's reader and writer threads share the cores, measured on
this project's 2-core machines (``benchmarks/harmonize_pipeline.py``); how freed memory is
kept for the next call is :mod:`backends.allocator`'s part.

* Threads. The model's intra-op threads and the pipeline's reader and writer threads share
  the cores. An OpenMP team waits at every barrier for its slowest thread, so when a reader
  takes one of its cores the whole team stalls; :func:`pipeline_threads` leaves cores to the
  pipeline's workers instead. That alone is not enough: a reader and a writer often have
  work at the same moment, and then three threads share two cores and the model loses a
  third of its own for as long as both run. :class:`CoreShare` lets a worker start only on
  a core the model is not using while the model runs, and on any core while it waits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, which containers and taskset set)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def pipeline_threads(workers: int, cores: int | None = None) -> int:
    """Model threads that leave one core per reader/writer pair: at least one.

    A pair's threads seldom run at once (one decodes the next image while the other encodes
    the last), so one core per pair is what the pipeline really uses.
    """
    cores = usable_cores() if cores is None else cores
    return max(1, cores - workers)


class CoreShare:
    """The cores of a folder run, shared by the model's threads and the pipeline's workers.

    While the model runs it holds ``model_threads`` cores, and a worker (a reader or a
    writer, which needs one core) starts only when a core is left over; while the model
    waits, workers may use every core. The model itself never waits for a core: it is what
    the run is waiting for. A worker already running when the model starts runs on to the
    end of its step, so for a moment the cores are shared: the steps (decoding, carrying a
    result to full size, encoding) are tens of milliseconds, the model's runs hundreds.
    At least one worker may always run, so a model given every core (``--threads``) still
    gets its inputs.

    Measured on this project's 2-core machine, 200 images of 1024x768 at 512 px, 1 model
    thread and 2 workers (``benchmarks/harmonize_pipeline.py``): without it the model ran
    about 15 % slower inside the run than alone, a wall time of 1.26x the pure model time;
    with it, 1.04x (median of five paired repeats, 1.03-1.23). Lowering the workers'
    priority instead did as well on a quiet machine but made the run 20 % slower beside
    another busy program, whose threads then won every core from the workers.
    """

    def __init__(self, cores: int, model_threads: int) -> None:
        if cores < 1 or model_threads < 0:
            raise ValueError(f"need cores >= 1, model_threads >= 0: got {cores}, {model_threads}")
        self.cores = cores
        self.model_threads = model_threads
        self._busy = 0  # cores held by running workers and, while it runs, the model
        self._workers = 0
        self._changed = threading.Condition()

    @contextmanager
    def model(self) -> Iterator[None]:
        """Hold the model's cores while it runs (never waits)."""
        with self._changed:
            self._busy += self.model_threads
        try:
            yield
        finally:
            with self._changed:
                self._busy -= self.model_threads
                self._changed.notify_all()

    @contextmanager
    def worker(self) -> Iterator[None]:
        """Hold one core for a worker's step, waiting until one is free."""
        with self._changed:
            self._changed.wait_for(lambda: self._workers == 0 or self._busy < self.cores)
            self._busy += 1
            self._workers += 1
        try:
            yield
        finally:
            with self._changed:
                self._busy -= 1
                self._workers -= 1
                self._changed.notify_all()

    def as_worker(self, step: Callable[_P, _R]) -> Callable[_P, _R]:
        """``step`` run while holding a worker's core."""

        def shared(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            with self.worker():
                return step(*args, **kwargs)

        return shared


def available_memory() -> int | None:
    """Bytes this process can still allocate without being killed, or ``None`` if unknown.

    The smaller of the kernel's ``MemAvailable`` and what the cgroup (a container's or a
    job's memory limit) leaves: under a limit the cgroup's OOM killer strikes long before
    the machine runs short.
    """
    limits = [value for value in (_meminfo_available(), _cgroup_left()) if value is not None]
    return min(limits) if limits else None


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_left(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """cgroup v2's ``memory.max`` minus ``memory.current``; ``None`` without a limit."""
    try:
        limit = (root / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(int(limit) - int((root / "memory.current").read_text()), 0)
    except (OSError, ValueError):
        return None
