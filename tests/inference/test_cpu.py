"""Tests for ``dkt.inference.cpu``: the thread budget and the allocator setting."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from backends.allocator import keep_freed_memory
from dkt.inference.cpu import CoreShare, pipeline_threads, usable_cores


@pytest.mark.parametrize(("workers", "cores", "threads"), [(2, 2, 1), (1, 2, 1), (2, 16, 14)])
def test_the_model_leaves_a_core_per_worker_and_keeps_one_thread(
    workers: int, cores: int, threads: int
) -> None:
    assert pipeline_threads(workers, cores) == threads


def test_usable_cores_is_at_least_one() -> None:
    assert usable_cores() >= 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_keeping_freed_memory_is_idempotent() -> None:
    first = keep_freed_memory()
    assert keep_freed_memory() == first


def _start_worker(
    share: CoreShare, release: threading.Event
) -> tuple[threading.Thread, threading.Event]:
    """A thread that holds a worker's core until ``release``; returns it and its 'started'."""
    started = threading.Event()

    def step() -> None:
        with share.worker():
            started.set()
            release.wait(5)

    thread = threading.Thread(target=step, daemon=True)
    thread.start()
    return thread, started


def test_while_the_model_runs_a_worker_starts_only_on_a_core_it_leaves_free() -> None:
    share = CoreShare(cores=2, model_threads=1)
    release_a, release_b = threading.Event(), threading.Event()
    with share.model():
        a, a_started = _start_worker(share, release_a)
        assert a_started.wait(2)
        b, b_started = _start_worker(share, release_b)
        assert not b_started.wait(0.2)  # the model has one core, worker a the other
        release_a.set()
        assert b_started.wait(2)  # a's core is free again
    release_b.set()
    a.join(2)
    b.join(2)


def test_while_the_model_waits_workers_use_every_core() -> None:
    share = CoreShare(cores=2, model_threads=1)
    release = threading.Event()
    workers = [_start_worker(share, release) for _ in range(2)]
    assert all(started.wait(2) for _, started in workers)
    with share.model():  # the model never waits for a core
        pass
    release.set()
    for thread, _ in workers:
        thread.join(2)


def test_a_model_on_every_core_still_lets_one_worker_run() -> None:
    share = CoreShare(cores=2, model_threads=2)
    release = threading.Event()
    with share.model():
        thread, started = _start_worker(share, release)
        assert started.wait(2)
        second, second_started = _start_worker(share, release)
        assert not second_started.wait(0.2)
        release.set()
        assert second_started.wait(2)
    thread.join(2)
    second.join(2)


def test_a_failing_step_gives_its_core_back() -> None:
    share = CoreShare(cores=1, model_threads=1)

    def broken() -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        share.as_worker(broken)()
    with share.model():
        start = time.perf_counter()
        assert share.as_worker(lambda x: x + 1)(1) == 2  # would wait for ever if it leaked
        assert time.perf_counter() - start < 1


@pytest.mark.parametrize(("cores", "threads"), [(0, 1), (2, -1)])
def test_impossible_core_counts_are_refused(cores: int, threads: int) -> None:
    with pytest.raises(ValueError, match="cores"):
        CoreShare(cores, threads)


def test_cgroup_limit_counts_what_is_left_under_it(tmp_path) -> None:
    from dkt.inference.cpu import _cgroup_left

    (tmp_path / "memory.max").write_text("1000000\n")
    (tmp_path / "memory.current").write_text("400000\n")
    assert _cgroup_left(tmp_path) == 600000
    (tmp_path / "memory.max").write_text("max\n")
    assert _cgroup_left(tmp_path) is None
    assert _cgroup_left(tmp_path / "absent") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/meminfo")
def test_available_memory_is_a_positive_byte_count_below_the_machines_total() -> None:
    from pathlib import Path

    from dkt.inference.cpu import available_memory

    total = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0]) * 1024
    left = available_memory()
    assert left is not None and 0 < left <= total
