"""Tests for ``backends.cpu``: the thread budget and the allocator setting."""

from __future__ import annotations

import sys

import pytest

from backends.cpu import keep_freed_memory, pipeline_threads, usable_cores


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
