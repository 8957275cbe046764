"""Running the model on a CPU that it shares with image decoding and encoding.

Two things decide how fast a CPU model runs in a folder run, measured on this project's
2-core machines (``benchmarks/harmonize_pipeline.py``):

* The allocator. torch takes its CPU tensors from ``malloc``; glibc serves large blocks with
  fresh ``mmap`` calls and returns them on ``free``, and hands a large free top of the heap
  back to the kernel. A forward pass allocates and frees the same feature maps on every
  call, so every call page-faults them in again, zero-filled: the bundled model on one
  thread took 1.9 s per 1024x768 image with glibc's defaults and 1.2 s with
  :func:`keep_freed_memory`, 0.36 s and 0.27 s at 512x384 (medians of three interleaved
  runs). Peak memory rises by a few per cent (1.10 against 1.06 GB at 1024x768: the heap
  fragments a little); resident memory simply stays at its peak.
  Kept memory must then be shared: with glibc's one arena per thread, each reader and
  writer thread kept its own high-water mark of image buffers, and a 1,000-image run's
  peak crept up by 18 % after its first 20 images (7 % with one arena for all threads;
  large blocks are a few per image, so the shared lock costs nothing measurable).
* Threads. The model's intra-op threads and the pipeline's reader and writer threads share
  the cores. An OpenMP team waits at every barrier for its slowest thread, so when a reader
  takes one of its cores the whole team stalls; :func:`pipeline_threads` leaves cores to the
  pipeline's workers instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

#: ``mallopt`` parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
#: Blocks up to this size come from the heap and are reused: a full-resolution feature map
#: is 50 MB at 1024x768. glibc before 2.26 refuses more than 32 MB; then 32 MB it is.
_MMAP_THRESHOLDS = (1 << 30, 32 << 20)
#: Free memory at the top of the heap is given back to the kernel only beyond this (the
#: largest value ``mallopt`` takes): far beyond any working set here.
_TRIM_THRESHOLD = 2**31 - 1

_kept = False


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


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks for reuse (see the module's docstring); idempotent.

    Returns whether the setting took effect: ``False`` off glibc (other allocators already
    keep their memory, or cannot be told), where this is harmless to call.
    """
    global _kept
    if _kept:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mmap_set = any(mallopt(_M_MMAP_THRESHOLD, value) for value in _MMAP_THRESHOLDS)
    trim_set = bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    # Arenas are created lazily, so this holds for every thread started from now on.
    arena_set = bool(mallopt(_M_ARENA_MAX, 1))
    _kept = mmap_set and trim_set and arena_set
    return _kept
