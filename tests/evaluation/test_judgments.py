"""Tests for ``dkt.evaluation.judgments``: a log that survives crashes and resumes raters."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import dkt.evaluation.judgments as judgments_module
from dkt.errors import AlreadyAnsweredError, JudgmentLogError
from dkt.evaluation.judgments import LOG_COLUMNS, Judgment, JudgmentLog

HEADER = "item,method_a,method_b,winner,rater,trial,left,ms,catch\n"


def judgment(trial: str, rater: str = "r1", winner: str = "dkt", catch: str = "") -> Judgment:
    return Judgment("k1", "dkt", "reinhard", winner, rater, trial, "reinhard", 812, catch)


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_new_log_gets_the_header_once_and_rows_in_its_columns(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "j.csv"
    with JudgmentLog(path) as log:
        log.append(judgment("1"))
        log.append(judgment("c1", winner="tie", catch="composite"))
    with JudgmentLog(path) as log:
        log.append(judgment("2", rater="r2"))
        assert len(log) == 3
    text = path.read_text()
    assert text.startswith(HEADER) and text.count("item,method_a") == 1
    got = rows(path)
    assert tuple(got[0]) == LOG_COLUMNS
    assert got[1] == {"item": "k1", "method_a": "dkt", "method_b": "reinhard", "winner": "tie",
                      "rater": "r1", "trial": "c1", "left": "reinhard", "ms": "812",
                      "catch": "composite"}  # fmt: skip
    assert [r["trial"] for r in got] == ["1", "c1", "2"]


def test_each_append_is_on_disk_when_fsync_returns(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "j.csv"
    synced: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        real_fsync(fd)
        synced.append(path.read_text())  # what another process sees at that moment

    monkeypatch.setattr(judgments_module.os, "fsync", spy)
    with JudgmentLog(path) as log:
        synced.clear()
        log.append(judgment("1"))
        log.append(judgment("2"))
    assert len(synced) == 2
    assert synced[0].endswith(",1,reinhard,812,\n") and synced[0].count("\n") == 2
    assert synced[1].endswith(",2,reinhard,812,\n") and synced[1].count("\n") == 3


def test_resume_knows_what_each_rater_answered(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    with JudgmentLog(path) as log:
        for trial in ("1", "2", "r1"):
            log.append(judgment(trial, rater="ana"))
        log.append(judgment("1", rater="ben"))
    with JudgmentLog(path) as log:
        assert log.answered("ana") == {"1", "2", "r1"}
        assert log.answered("ben") == {"1"}
        assert log.answered("cleo") == set()
        with pytest.raises(AlreadyAnsweredError, match="already answered trial 2"):
            log.append(judgment("2", rater="ana"))
        log.append(judgment("2", rater="ben"))
    assert len(rows(path)) == 5


def test_a_torn_last_line_is_cut_off_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    with JudgmentLog(path) as log:
        log.append(judgment("1"))
    with open(path, "a") as fh:
        fh.write("k2,dkt,rein")  # a write cut short by SIGKILL
    with JudgmentLog(path) as log:
        assert log.note is not None and "torn last line (11 bytes" in log.note
        assert log.answered("r1") == {"1"}
        log.append(judgment("2"))
    assert [r["trial"] for r in rows(path)] == ["1", "2"]
    assert "rein\n" not in path.read_text() and path.read_text().endswith("\n")
    with JudgmentLog(path) as log:
        assert log.note is None


def test_a_torn_header_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    path.write_text("item,method_a,me")
    with JudgmentLog(path) as log:
        log.append(judgment("1"))
    assert path.read_text().startswith(HEADER) and len(rows(path)) == 1


@pytest.mark.parametrize(
    "text",
    ["trial,item,method_a,method_b,winner\n1,k1,dkt,reinhard,\n", "trial,item,method_a"],
)
def test_a_file_that_is_not_a_log_is_refused_and_left_alone(tmp_path: Path, text: str) -> None:
    path = tmp_path / "design.csv"
    path.write_text(text)
    with pytest.raises(JudgmentLogError, match=r"not a judgments log .*is it the design file"):
        JudgmentLog(path)
    assert path.read_text() == text


def test_a_mangled_row_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    path.write_text(HEADER + "k1,dkt,reinhard,dkt,r1,1,dkt,5,\nk1,dkt\n")
    with pytest.raises(JudgmentLogError, match="line 3 has 2 fields, not 9"):
        JudgmentLog(path)


def test_two_servers_cannot_share_a_log(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    with JudgmentLog(path), pytest.raises(JudgmentLogError, match="another study server"):
        JudgmentLog(path)
    JudgmentLog(path).close()  # free again once the first one is closed


WRITER = textwrap.dedent(
    """
    import sys
    from dkt.evaluation.judgments import Judgment, JudgmentLog
    log = JudgmentLog(sys.argv[1])
    for n in range(1_000_000):
        log.append(Judgment("k1", "dkt", "reinhard", "dkt", "r1", str(n), "dkt", n, ""))
        print(n, flush=True)  # confirmed only after the append returned
    """
)


def test_sigkill_loses_no_confirmed_answer(tmp_path: Path) -> None:
    path = tmp_path / "j.csv"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    confirmed = []
    assert child.stdout is not None
    for line in child.stdout:
        confirmed.append(line.strip())
        if len(confirmed) == 200:
            break
    child.send_signal(signal.SIGKILL)
    child.wait()
    with JudgmentLog(path) as log:
        answered = log.answered("r1")
    assert set(confirmed) <= answered
    assert [r["trial"] for r in rows(path)] == [str(n) for n in range(len(answered))]
