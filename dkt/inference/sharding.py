"""``--shard I/N``: one deterministic slice of a run, for one process, GPU or machine.

A cluster job array or GNU parallel starts N copies of the same command, each with its own
``I``; together they do every job exactly once, with no coordination and no shared state.

Shards are numbered 1..N (``1/4`` is the first of four), as people count and as GNU
parallel's job number ``{#}`` does; a Slurm array is then ``--array=1-N``.

A job belongs to shard ``1 + h(key) mod N``, ``h`` a stable hash (BLAKE2b) of the job's key
(its path relative to the input folder, or its output as written in a manifest). Hashing the
key rather than dealing jobs out by position in the sorted list means a job's shard depends
on nothing but its own name: adding or removing files leaves every other job in its shard,
so a re-run of shard I after new files arrived never redoes another shard's work nor skips
its own, and machines that list the folder at different moments still agree. The price is
that shard sizes are balanced only statistically (for 10,000 jobs in 8 shards, within a
few per cent of each other).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from dkt.errors import ShardError
from dkt.inference.pairing import Job

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def owns(self, key: str) -> bool:
        return shard_of(key, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"I/N"`` with 1 <= I <= N, else :class:`ShardError` with an example."""
    match = _SHARD.fullmatch(text)
    if match is None:
        raise ShardError(f"--shard {text} is not I/N, e.g. --shard 1/4 (shards count from 1)")
    index, count = int(match[1]), int(match[2])
    if count < 1:
        raise ShardError(f"--shard {text}: the number of shards must be at least 1")
    if not 1 <= index <= count:
        raise ShardError(
            f"--shard {text}: the shard must be between 1 and {count} (shards count from 1)"
        )
    return Shard(index, count)


def shard_of(key: str, count: int) -> int:
    """The 1-based shard of ``key`` among ``count``: the same on every machine and Python."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=8).digest()
    return 1 + int.from_bytes(digest, "big") % count


def select(jobs: Iterable[Job], shard: Shard | None) -> list[Job]:
    """The jobs of ``shard`` in their original order (all of them for ``None``)."""
    if shard is None:
        return list(jobs)
    return [job for job in jobs if shard.owns(job.key)]
