"""Tests for ``dkt.inference.jobs.run_jobs``: a bad file never stops a run, nothing half-written."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
from PIL import Image

from backends.base import Backend, LoadOptions
from dkt.imaging.imageio import read_image, write_image
from dkt.inference.harmonizer import Harmonizer
from dkt.inference.jobs import Existing, failure_for, run_jobs
from dkt.inference.pairing import Job

SENTINEL = b"an earlier result the user wants to keep"


class ShiftBackend(Backend):
    """Brightens the object; raises KeyboardInterrupt on call number ``interrupt_on``."""

    name: ClassVar[str] = "shift"

    def __init__(self, interrupt_on: int | None = None) -> None:
        self.calls = 0
        self.interrupt_on = interrupt_on

    @classmethod
    def load(cls, model: Path, options: LoadOptions = LoadOptions()) -> ShiftBackend:
        return cls()

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls == self.interrupt_on:
            raise KeyboardInterrupt
        return np.clip(composite + 0.2 * mask, 0.0, 1.0).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


@pytest.fixture
def make_job(tmp_path: Path, write_pair):
    """``make_job(key)`` writes a composite and mask under tmp_path and returns the Job."""

    def _make(key: str, *, seed: int = 0, with_mask: bool = True) -> Job:
        comp, mask = tmp_path / "in" / f"{key}.png", tmp_path / "in" / f"{key}_mask.png"
        write_pair(comp, mask, height=40, width=48, seed=seed)
        if not with_mask:
            mask.unlink()
        return Job(
            key=key,
            composite=comp,
            mask=mask if with_mask else None,
            output=tmp_path / "out" / f"{key}.png",
            mask_candidates=(f"{key}_mask.png",),
        )

    return _make


def _leftovers(root: Path) -> list[str]:
    """Hidden or temporary files an interrupted write could leave behind."""
    return [p.name for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def test_all_good_jobs_are_written(make_job) -> None:
    jobs = [make_job("a", seed=1), make_job("b", seed=2)]
    seen: list[str] = []
    summary = run_jobs(jobs, Harmonizer(ShiftBackend(), 24), on_done=lambda j: seen.append(j.key))
    assert (summary.total, summary.done, summary.skipped, summary.failed) == (2, 2, 0, 0)
    assert seen == ["a", "b"]
    assert summary.outputs == [str(j.output) for j in jobs]
    for job in jobs:
        assert read_image(job.output).shape == (40, 48, 3)
    assert summary.seconds_total >= summary.seconds_model > 0


def test_missing_mask_fails_naming_the_composite(make_job) -> None:
    jobs = [make_job("nomask", with_mask=False), make_job("good")]
    summary = run_jobs(jobs, Harmonizer(ShiftBackend(), 24))
    assert summary.done == 1 and summary.failed == 1
    failure = summary.failures[0]
    assert failure.key == "nomask"
    assert str(jobs[0].composite) in failure.error
    assert "no mask found" in failure.error and "nomask_mask.png" in failure.error
    assert not jobs[0].output.exists()
    assert jobs[1].output.exists()


def test_existing_output_fails_by_default_and_is_left_alone(make_job) -> None:
    job = make_job("a")
    job.output.parent.mkdir(parents=True)
    job.output.write_bytes(SENTINEL)
    summary = run_jobs([job], Harmonizer(ShiftBackend(), 24), Existing.FAIL)
    assert summary.done == 0 and summary.failed == 1
    assert "output exists" in summary.failures[0].error
    assert "--overwrite" in summary.failures[0].error
    assert job.output.read_bytes() == SENTINEL


def test_existing_output_is_skipped_with_skip(make_job) -> None:
    job = make_job("a")
    write_image(job.output, np.zeros((4, 4, 3), np.uint8))  # a whole image (it must decode)
    kept = job.output.read_bytes()
    backend = ShiftBackend()
    summary = run_jobs([job], Harmonizer(backend, 24), Existing.SKIP)
    assert (summary.done, summary.skipped, summary.failed) == (0, 1, 0)
    assert backend.calls == 0
    assert job.output.read_bytes() == kept


def test_existing_output_is_replaced_with_overwrite(make_job) -> None:
    job = make_job("a")
    job.output.parent.mkdir(parents=True)
    job.output.write_bytes(SENTINEL)
    summary = run_jobs([job], Harmonizer(ShiftBackend(), 24), Existing.OVERWRITE)
    assert (summary.done, summary.skipped, summary.failed) == (1, 0, 0)
    assert read_image(job.output).shape == (40, 48, 3)


def test_corrupt_image_fails_and_the_next_job_still_runs(make_job) -> None:
    bad, good = make_job("bad", seed=1), make_job("good", seed=2)
    data = bad.composite.read_bytes()
    bad.composite.write_bytes(data[: len(data) // 2])  # truncated mid-stream
    summary = run_jobs([bad, good], Harmonizer(ShiftBackend(), 24))
    assert summary.done == 1 and summary.failed == 1
    assert summary.failures[0].key == "bad"
    assert str(bad.composite) in summary.failures[0].error
    assert "truncated or corrupt" in summary.failures[0].error
    assert not bad.output.exists()
    assert read_image(good.output).shape == (40, 48, 3)


def test_keyboard_interrupt_stops_with_a_summary_and_complete_earlier_outputs(
    make_job, tmp_path: Path
) -> None:
    jobs = [make_job(k, seed=i) for i, k in enumerate("abcd")]
    done: list[str] = []
    summary = run_jobs(
        jobs, Harmonizer(ShiftBackend(interrupt_on=3), 24), on_done=lambda j: done.append(j.key)
    )
    assert summary.interrupted
    assert (summary.total, summary.done, summary.failed) == (4, 2, 0)
    assert done == ["a", "b"]
    for job in jobs[:2]:
        assert read_image(job.output).shape == (40, 48, 3)  # complete, decodable files
    assert not jobs[2].output.exists() and not jobs[3].output.exists()
    assert _leftovers(tmp_path / "out") == []


def test_interrupt_while_writing_leaves_no_partial_file(
    make_job, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the middle of saving: neither a truncated output nor a temp file remains."""
    jobs = [make_job("a", seed=1), make_job("b", seed=2)]
    real_save = Image.Image.save
    saves = {"n": 0}

    def save_then_interrupt(self, fp, *args, **kwargs):
        saves["n"] += 1
        if saves["n"] == 2:
            Path(fp).write_bytes(b"\x89PNG half a file")
            raise KeyboardInterrupt
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_then_interrupt)
    summary = run_jobs(jobs, Harmonizer(ShiftBackend(), 24))
    assert summary.interrupted and summary.done == 1
    monkeypatch.undo()
    assert read_image(jobs[0].output).shape == (40, 48, 3)
    assert not jobs[1].output.exists()
    assert _leftovers(tmp_path / "out") == []


def test_summary_to_dict_has_counts_and_timings(make_job) -> None:
    jobs = [make_job("a"), make_job("nomask", with_mask=False)]
    data = run_jobs(jobs, Harmonizer(ShiftBackend(), 24)).to_dict()
    assert (data["total"], data["done"], data["skipped"], data["failed"]) == (2, 1, 0, 1)
    assert data["failures"][0]["key"] == "nomask"
    assert data["failures"][0]["composite"] == str(jobs[1].composite)
    assert data["images_per_second"] > 0
    assert data["interrupted"] is False


def test_rerun_removes_temporaries_a_killed_run_left_for_its_outputs(
    make_job, tmp_path: Path
) -> None:
    job = make_job("a")
    out = tmp_path / "out"
    out.mkdir()
    (out / ".a.png.q8w7e6r5.tmp").write_bytes(b"\x89PNG cut off by SIGKILL")
    (out / ".other.png.q8w7e6r5.tmp").write_bytes(b"another process's file")
    summary = run_jobs([job], Harmonizer(ShiftBackend(), 24))
    assert summary.done == 1
    assert sorted(p.name for p in out.iterdir()) == [".other.png.q8w7e6r5.tmp", "a.png"]


def test_max_pixels_is_applied_to_composite_and_mask(make_job) -> None:
    job = make_job("a")  # 48x40 = 1920 pixels
    summary = run_jobs([job], Harmonizer(ShiftBackend(), 24), max_pixels=1919)
    assert summary.failed == 1
    assert "over the limit of 1919 (decompression-bomb guard)" in summary.failures[0].error
    assert run_jobs([job], Harmonizer(ShiftBackend(), 24), max_pixels=1920).done == 1


def test_a_failed_write_names_the_output_not_the_hidden_temporary(tmp_path: Path) -> None:
    """Issue 26: it was ``c.png: PermissionError: [Errno 13] ...: 'out/.r.png.j9nk.tmp'``."""
    job = Job("c", tmp_path / "c.png", tmp_path / "m.png", tmp_path / "out" / "r.png")
    temporary = tmp_path / "out" / ".r.png.j9nkg36w.tmp"
    line = failure_for(job, PermissionError(13, "Permission denied", str(temporary))).error
    assert line == f"{job.output}: cannot write it (Permission denied)"
    blocked = failure_for(job, FileExistsError(17, "File exists", str(tmp_path / "out"))).error
    assert blocked == f"{job.output}: cannot create its folder {tmp_path / 'out'} (File exists)"


def test_a_runtime_refusing_one_input_reads_without_python_class_names(tmp_path: Path) -> None:
    job = Job("c", tmp_path / "c.png", tmp_path / "m.png", tmp_path / "r.png")
    line = failure_for(job, RuntimeError("backend rejected this input\nstack details")).error
    assert line == f"{job.composite}: could not harmonize it (backend rejected this input)"
    assert "Error" not in failure_for(job, ValueError()).error
