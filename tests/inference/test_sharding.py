"""Tests for ``dkt.inference.sharding``: every job in exactly one shard, the same one every time."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkt.errors import ShardError
from dkt.inference.pairing import Job
from dkt.inference.sharding import Shard, parse_shard, select, shard_of


def _jobs(keys: list[str]) -> list[Job]:
    return [Job(k, Path(f"c/{k}.png"), Path(f"m/{k}.png"), Path(f"o/{k}.png")) for k in keys]


@pytest.mark.parametrize(("text", "expected"), [("1/4", Shard(1, 4)), (" 4 / 4 ", Shard(4, 4)),
                                                ("1/1", Shard(1, 1))])  # fmt: skip
def test_parse_accepts_one_based_shards(text: str, expected: Shard) -> None:
    assert parse_shard(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [("3/2", "between 1 and 2"), ("0/4", "between 1 and 4"), ("1/0", "at least 1"),
     ("2", "not I/N"), ("a/b", "not I/N"), ("-1/4", "not I/N"), ("1/4/2", "not I/N")],
)  # fmt: skip
def test_parse_refuses_what_names_no_shard(text: str, reason: str) -> None:
    with pytest.raises(ShardError, match=reason):
        parse_shard(text)


def test_every_job_lands_in_exactly_one_shard() -> None:
    jobs = _jobs([f"sub{i % 7}/img_{i:04d}" for i in range(500)])
    parts = [select(jobs, Shard(i, 4)) for i in range(1, 5)]
    keys = [job.key for part in parts for job in part]
    assert sorted(keys) == sorted(job.key for job in jobs)  # all of them, none twice
    assert all(90 <= len(part) <= 160 for part in parts), [len(p) for p in parts]  # balanced
    for part in parts:  # the original (sorted) order is kept inside a shard
        assert part == [job for job in jobs if job in part]


def test_adding_files_moves_no_existing_job_to_another_shard() -> None:
    before = _jobs([f"img_{i:04d}" for i in range(0, 300, 2)])
    after = _jobs([f"img_{i:04d}" for i in range(300)])  # new files in between
    for i in range(1, 4):
        old = {job.key for job in select(before, Shard(i, 3))}
        new = {job.key for job in select(after, Shard(i, 3))}
        assert old <= new


def test_shard_of_is_a_fixed_function_of_the_name() -> None:
    """Pinned values: the same on every machine, Python version and run (no hash salt),
    so machines of one job array agree and a re-run next month finds its own outputs."""
    keys = ["dph_13", "a/b/c", "img_0001", "x"]
    assert [shard_of(key, 8) for key in keys] == [2, 4, 2, 8]
    assert {shard_of(key, 1) for key in keys} == {1}


def test_no_shard_selects_everything() -> None:
    jobs = _jobs(["a", "b"])
    assert select(jobs, None) == jobs
    assert str(Shard(2, 5)) == "2/5"
