"""Tests for ``dkt.inference.progress``: a run off a terminal says how far it got, now and then."""

from __future__ import annotations

from dkt.inference.progress import ProgressLines, duration


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_line_every_few_seconds_not_one_per_job() -> None:
    clock, lines = Clock(), []
    progress = ProgressLines(5000, lines.append, every=5.0, clock=clock)
    for _ in range(9):  # a job every half second: 4.5 s in, too soon for a line
        clock.now += 0.5
        progress.advance()
    assert lines == []
    clock.now += 0.5
    progress.advance()
    assert lines == ["harmonizing: 10 of 5000 (0%) in 5 s, about 41 min 35 s left"]
    for _ in range(10):
        clock.now += 0.5
        progress.advance()
    assert lines[1:] == ["harmonizing: 20 of 5000 (0%) in 10 s, about 41 min 30 s left"]


def test_the_last_job_says_nothing_the_summary_follows() -> None:
    clock, lines = Clock(), []
    progress = ProgressLines(2, lines.append, every=1.0, clock=clock, what="harmonizing on Ray")
    clock.now += 10
    progress.advance()
    clock.now += 10
    progress.advance()
    assert lines == ["harmonizing on Ray: 1 of 2 (50%) in 10 s, about 10 s left"]


def test_durations_read_in_a_reader_s_units() -> None:
    assert [duration(s) for s in (0.4, 59, 61, 3599, 3600, 7890)] == [
        "0 s", "59 s", "1 min 1 s", "59 min 59 s", "1 h 0 min", "2 h 11 min"
    ]  # fmt: skip
