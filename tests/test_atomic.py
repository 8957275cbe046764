"""Tests for ``dkt.atomic``: temporaries of killed writers, and only those, are removed."""

from __future__ import annotations

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
