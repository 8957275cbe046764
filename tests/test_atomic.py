"""Tests for ``dkt.atomic``: temporaries of killed writers, and only those, are removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dkt.atomic import atomic_path, remove_stale_temps


def test_stale_temps_of_the_given_outputs_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".a.png.k2j4x9q1.tmp", out / ".b.c.png.abcdefgh.tmp"]
    others = [out / ".z.png.abcdefgh.tmp", out / ".a.png", out / "a.png.x.tmp", out / "keep.png"]
    for path in stale + others:
        path.write_bytes(b"partial")
    removed = remove_stale_temps([out / "a.png", out / "b.c.png", tmp_path / "nowhere" / "x.png"])
    assert removed == 2
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in others)


def test_a_temp_named_by_atomic_path_is_recognised(tmp_path: Path) -> None:
    """What a SIGKILL during ``atomic_path`` leaves is exactly what gets cleaned up."""
    final = tmp_path / "result.png"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        left = tmp.with_name(tmp.name)  # the name mkstemp chose
        raise RuntimeError("simulated crash")
    left.write_bytes(b"as if the process had been killed before cleaning up")
    assert remove_stale_temps([final]) == 1
    assert list(tmp_path.iterdir()) == []


def test_a_name_up_to_the_file_systems_limit_is_written(tmp_path: Path) -> None:
    """A temporary named ``.<name>.*.tmp`` was 14 bytes longer than ``<name>``: names of 242
    to 255 bytes could not be written at all (issue 26 item 9)."""
    final = tmp_path / ("é" * 100 + "a" * 46 + ".png")  # 250 bytes
    with atomic_path(final) as tmp:
        assert len(os.fsencode(tmp.name)) < 64
        assert tmp.name.startswith(".éééé")  # still says whose it is
        tmp.write_bytes(b"done")
    assert final.read_bytes() == b"done"
    assert [p.name for p in tmp_path.iterdir()] == [final.name]


def test_a_killed_writers_short_temporary_is_recognised_and_only_its_own(tmp_path: Path) -> None:
    finals = [tmp_path / ("a" * 250 + ".png"), tmp_path / ("a" * 249 + "b.png")]  # same start
    for final in finals:
        with pytest.raises(RuntimeError), atomic_path(final) as tmp:
            left = Path(tmp)
            raise RuntimeError("simulated crash")
        left.write_bytes(b"as if killed")
    assert remove_stale_temps(finals[:1]) == 1
    assert len(list(tmp_path.iterdir())) == 1  # the other name's temporary is left alone
    assert remove_stale_temps(finals[1:]) == 1
