"""Tests for ``dkt.inference.pipeline.run_pipelined``: threads keep the sequential contract.

Fake backends record the batches they are given, so batching, isolation and the read-ahead
bound are visible; a slow one gives the reader threads time to run ahead of the model.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from backends.base import Backend, LoadOptions
from dkt.imaging.imageio import read_image, write_image
from dkt.inference import jobs as jobs_module
from dkt.inference.cpu import CoreShare
from dkt.inference.harmonizer import Harmonizer
from dkt.inference.jobs import Existing, job_bytes, run_jobs
from dkt.inference.pairing import Job
from dkt.inference.pipeline import ByteBudget, run_pipelined

pytestmark = pytest.mark.usefixtures("one_thread")


class RecordingBackend(Backend):
    """Brightens the object; records batch shapes; optionally slow, failing or interrupting."""

    name: ClassVar[str] = "recording"

    def __init__(self, delay: float = 0.0, interrupt_on: int | None = None) -> None:
        self.delay = delay
        self.interrupt_on = interrupt_on
        self.batches: list[tuple[int, ...]] = []
        self.poison: float | None = None  # a batch holding an image this bright fails

    @classmethod
    def load(cls, model: Path, options: LoadOptions = LoadOptions()) -> Backend:
        return cls()

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        self.batches.append(composite.shape)
        if len(self.batches) == self.interrupt_on:
            raise KeyboardInterrupt
        time.sleep(self.delay)
        if self.poison is not None and any(
            abs(float(c.mean()) - self.poison) < 1e-6 for c in composite
        ):
            raise RuntimeError("backend rejected this input")
        return np.clip(composite + 0.2 * mask, 0.0, 1.0).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name}


@pytest.fixture
def make_jobs(tmp_path: Path, write_pair):
    """``make_jobs(n, sizes=[(h, w)...])`` writes n pairs (sizes cycled) and returns the Jobs."""

    def _make(count: int, sizes=((40, 48),), out: str = "out") -> list[Job]:
        jobs = []
        for i in range(count):
            h, w = sizes[i % len(sizes)]
            comp, mask = tmp_path / "in" / f"{i:03d}.png", tmp_path / "in" / f"{i:03d}_m.png"
            if not comp.exists():
                write_pair(comp, mask, height=h, width=w, seed=i)
            jobs.append(Job(f"{i:03d}", comp, mask, tmp_path / out / f"{i:03d}.png"))
        return jobs

    return _make


def _comparable(summary) -> dict[str, Any]:
    data = summary.to_dict()
    for key in ("seconds_total", "seconds_model", "images_per_second"):
        data.pop(key)
    return data


def test_same_outputs_and_summary_as_the_sequential_run(make_jobs, tmp_path: Path) -> None:
    jobs = make_jobs(7, sizes=[(40, 48), (48, 40), (40, 48)])
    bad = jobs[2].composite.read_bytes()
    jobs[2].composite.write_bytes(bad[: len(bad) // 2])
    jobs[4] = Job(jobs[4].key, jobs[4].composite, None, jobs[4].output, ("004_m.png",))
    write_image(jobs[5].mask, np.full((40, 48), 255, np.uint8))  # full mask: no painting
    write_image(jobs[6].mask, np.zeros((40, 48), np.uint8))  # empty mask: a failure too
    parallel = [replace(j, output=tmp_path / "par" / j.output.name) for j in jobs]

    seq = run_jobs(jobs, Harmonizer(RecordingBackend(), 24))
    par = run_pipelined(parallel, Harmonizer(RecordingBackend(), 24), workers=2, batch=3)

    expected = _comparable(seq)
    expected["outputs"] = [o.replace(f"{tmp_path}/out", f"{tmp_path}/par") for o in seq.outputs]
    assert _comparable(par) == expected
    assert (par.done, par.failed) == (3, 4)
    assert [f.key for f in par.failures] == ["002", "004", "005", "006"]  # job order
    for a, b in zip(jobs, parallel, strict=True):
        if a.output.exists():
            assert a.output.read_bytes() == b.output.read_bytes(), a.key
        else:
            assert not b.output.exists()


def test_same_size_items_share_a_batch_and_sizes_never_mix(make_jobs) -> None:
    jobs = make_jobs(8, sizes=[(40, 48), (32, 64)])
    backend = RecordingBackend(delay=0.02)
    summary = run_pipelined(jobs, Harmonizer(backend, 24), workers=2, batch=3)
    assert summary.done == 8
    assert sum(shape[0] for shape in backend.batches) == 8
    assert max(shape[0] for shape in backend.batches) == 3
    # No assertion that the first batch is full: when the readers fall behind (a busy CI
    # machine) the scheduler rightly runs what is waiting rather than leave the model idle.
    assert {shape[1:] for shape in backend.batches} == {(3, 20, 24), (3, 12, 24)}


class WatchedShare(CoreShare):
    """Records, for every worker step that starts while the model runs, the steps running."""

    def __init__(self, cores: int, model_threads: int) -> None:
        super().__init__(cores, model_threads)
        self.lock = threading.Lock()
        self.running = 0
        self.steps = 0
        self.model_running = False
        self.beside_model: list[int] = []

    @contextlib.contextmanager
    def worker(self):
        with super().worker():
            with self.lock:
                self.running += 1
                self.steps += 1
                if self.model_running:
                    self.beside_model.append(self.running)
            try:
                yield
            finally:
                with self.lock:
                    self.running -= 1

    @contextlib.contextmanager
    def model(self):
        with super().model():
            self.model_running = True
            try:
                yield
            finally:
                self.model_running = False


def test_workers_leave_the_model_its_cores_and_results_do_not_change(
    make_jobs, tmp_path: Path
) -> None:
    jobs = make_jobs(10)
    plain = [replace(j, output=tmp_path / "plain" / j.output.name) for j in jobs]
    share = WatchedShare(cores=2, model_threads=1)
    shared = run_pipelined(jobs, Harmonizer(RecordingBackend(delay=0.03), 24), workers=3,
                           batch=1, share=share)  # fmt: skip
    unshared = run_pipelined(plain, Harmonizer(RecordingBackend(), 24), workers=3, batch=1)
    assert shared.done == unshared.done == 10
    assert share.steps == 20  # every read and every write ran as a worker step
    assert share.beside_model and max(share.beside_model) == 1  # never two beside the model
    for a, b in zip(jobs, plain, strict=True):
        assert a.output.read_bytes() == b.output.read_bytes()


def test_a_failing_batch_is_retried_item_by_item(make_jobs) -> None:
    jobs = make_jobs(3)
    backend = RecordingBackend(delay=0.02)
    harmonizer = Harmonizer(backend, 24)
    backend.poison = float(
        harmonizer.prepare(*jobs_module.read_job(jobs[1])).model_composite.mean()
    )
    summary = run_pipelined(jobs, harmonizer, workers=1, batch=3)
    assert summary.done == 2 and [f.key for f in summary.failures] == ["001"]
    assert "could not harmonize it (backend rejected this input)" in summary.failures[0].error
    assert str(jobs[1].composite) in summary.failures[0].error
    assert jobs[0].output.exists() and jobs[2].output.exists() and not jobs[1].output.exists()


def test_reading_ahead_is_bounded(make_jobs, monkeypatch: pytest.MonkeyPatch) -> None:
    """However fast the readers, only ``workers + batch`` images wait for the model."""
    jobs = make_jobs(16)
    read = {"n": 0}
    lock = threading.Lock()
    real = jobs_module.prepare_job

    def counting(*args, **kwargs):
        with lock:
            read["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr("dkt.inference.pipeline.prepare_job", counting)
    ahead: list[int] = []

    class Watching(RecordingBackend):
        def run(self, composite, mask):
            consumed = sum(shape[0] for shape in self.batches)
            ahead.append(read["n"] - consumed)
            return super().run(composite, mask)

    summary = run_pipelined(jobs, Harmonizer(Watching(delay=0.03), 24), workers=2, batch=2)
    assert summary.done == 16
    assert max(ahead) <= 2 + 2
    assert max(ahead) >= 2  # the readers did run ahead of the model


def test_interrupt_writes_what_the_model_finished_and_nothing_partial(
    make_jobs, tmp_path: Path
) -> None:
    jobs = make_jobs(6)
    done: list[str] = []
    backend = RecordingBackend(interrupt_on=3)
    summary = run_pipelined(jobs, Harmonizer(backend, 24), on_done=lambda j: done.append(j.key),
                            workers=2, batch=1)  # fmt: skip
    assert summary.interrupted
    assert (summary.done, summary.failed) == (2, 0)
    finished = [job for job in jobs if job.key in done]
    assert len(finished) == 2  # the two batches the model finished before Ctrl-C
    assert summary.outputs == [str(job.output) for job in finished]
    for job in finished:
        assert read_image(job.output).shape == (40, 48, 3)
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [job.output.name for job in finished]  # no partial or temporary file


@pytest.mark.parametrize("existing", [Existing.SKIP, Existing.FAIL])
def test_existing_outputs_follow_the_policy(make_jobs, existing: Existing) -> None:
    jobs = make_jobs(3)
    write_image(jobs[1].output, np.zeros((4, 4, 3), np.uint8))  # a whole image: kept
    kept = jobs[1].output.read_bytes()
    backend = RecordingBackend()
    summary = run_pipelined(jobs, Harmonizer(backend, 24), existing, workers=2, batch=2)
    assert summary.done == 2
    assert jobs[1].output.read_bytes() == kept
    if existing is Existing.SKIP:
        assert (summary.skipped, summary.failed) == (1, 0)
    else:
        assert summary.skipped == 0 and [f.key for f in summary.failures] == ["001"]
        assert "output exists" in summary.failures[0].error
    assert sum(shape[0] for shape in backend.batches) == 2


def test_bad_settings_are_refused(make_jobs) -> None:
    with pytest.raises(ValueError, match="workers and batch"):
        run_pipelined(make_jobs(1), Harmonizer(RecordingBackend(), 24), workers=0)


# --------------------------------------------------------------------------- byte budget


def test_the_budget_lets_items_in_while_they_fit_and_one_alone_whatever_its_size() -> None:
    budget = ByteBudget(100)
    assert budget.admits(1000)  # nothing held: even an oversize item goes
    budget.take(1000)
    assert not budget.admits(0)  # ...but alone, not even with an empty one
    budget.give(1000)
    for _ in range(3):
        assert budget.admits(30)
        budget.take(30)
    assert budget.held == 90 and not budget.admits(11) and budget.admits(10)
    budget.give(30)
    assert budget.admits(40) and budget.peak == 1000
    assert ByteBudget(None).admits(10**12)
    with pytest.raises(ValueError, match="byte budget"):
        ByteBudget(-1)


def test_item_bytes_come_from_the_header_and_unreadable_files_count_zero(
    make_jobs, tmp_path: Path
) -> None:
    job = make_jobs(1, sizes=[(40, 48)])[0]
    harmonizer = Harmonizer(RecordingBackend(), 24)
    assert job_bytes(job, harmonizer) == harmonizer.item_bytes(40, 48)
    assert harmonizer.item_bytes(40, 48) == 40 * 48 * 10 + 20 * 24 * 28
    (tmp_path / "junk.png").write_bytes(b"not an image")
    assert job_bytes(replace(job, composite=tmp_path / "junk.png"), harmonizer) == 0


def _run_watched(jobs, budget_bytes, monkeypatch, *, batch=1):
    """Run with ``budget_bytes``, checking the budget after every admission; (summary, log)."""
    log: list[tuple[int, int]] = []
    real_take = ByteBudget.take

    def take(self, nbytes):
        real_take(self, nbytes)
        log.append((self.held, self.items))
        assert self.held <= self.limit or self.items == 1, (self.held, self.items)

    monkeypatch.setattr(ByteBudget, "take", take)
    result: dict[str, Any] = {}

    def target():
        backend = RecordingBackend(delay=0.005)
        result["summary"] = run_pipelined(jobs, Harmonizer(backend, 24), workers=2, batch=batch,
                                          max_inflight_bytes=budget_bytes)  # fmt: skip

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "the pipeline deadlocked"
    return result["summary"], log


def test_the_budget_bounds_the_bytes_in_flight_and_changes_no_result(
    make_jobs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mixed sizes, one image over the whole budget: bounded, in order, same files."""
    sizes = [(40, 48)] * 3 + [(160, 192)] + [(40, 48), (48, 40)] * 3
    jobs = make_jobs(len(sizes), sizes=sizes)
    harmonizer = Harmonizer(RecordingBackend(), 24)
    small = harmonizer.item_bytes(40, 48)
    budget = 3 * small  # three small images at a time; the big one (16x) only alone
    assert harmonizer.item_bytes(160, 192) > budget
    reference = run_jobs(jobs, harmonizer)
    parallel = [replace(j, output=tmp_path / "par" / j.output.name) for j in jobs]

    summary, log = _run_watched(parallel, budget, monkeypatch, batch=2)

    assert summary.done == len(jobs) and not summary.failures
    assert summary.outputs == [str(j.output) for j in parallel]  # job order
    assert max(items for _, items in log) == 3  # the budget, not the count, was the limit
    assert any(items == 1 and held > budget for held, items in log)  # the big one, alone
    for a, b in zip(jobs, parallel, strict=True):
        assert a.output.read_bytes() == b.output.read_bytes(), a.key
    assert reference.done == summary.done


def test_a_budget_smaller_than_every_image_runs_them_one_at_a_time(
    make_jobs, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs = make_jobs(5)
    summary, log = _run_watched(jobs, 1, monkeypatch, batch=2)
    assert summary.done == 5
    assert {items for _, items in log} == {1}


_MEMORY_CHILD = """
import json, resource, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
from dkt.inference.harmonizer import Harmonizer
from backends.registry import open_backend
from dkt.inference.pairing import plan_folder
from dkt.inference.pipeline import run_pipelined
root, model = Path(sys.argv[1]), Path(sys.argv[2])
jobs = plan_folder(root / "comps", root / "masks", root / "out")
peaks = {}
def on_done(job):
    peaks[len(peaks) + 1] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
summary = run_pipelined(jobs, Harmonizer(open_backend(model), 64), on_done=on_done)
print(json.dumps({"done": summary.done, "after_20": peaks[20], "after_all": peaks[len(jobs)]}))
"""


@pytest.mark.slow
def test_peak_memory_over_1000_images_stays_within_20_percent_of_the_first_20(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    """Nothing accumulates per image: 1,000 images need the memory that 20 did.

    Each image holds about 0.6 MB in flight (composite, float mask, model inputs), so keeping
    every one would add some 600 MB, far past the 20 % margin.
    """
    for i in range(10):
        write_pair(tmp_path / "seed" / f"{i}.png", tmp_path / "seed" / f"{i}_m.png",
                   height=256, width=320, seed=i)  # fmt: skip
    (tmp_path / "comps").mkdir()
    (tmp_path / "masks").mkdir()
    for i in range(1000):
        shutil.copy(tmp_path / "seed" / f"{i % 10}.png", tmp_path / "comps" / f"{i:04d}.png")
        shutil.copy(tmp_path / "seed" / f"{i % 10}_m.png", tmp_path / "masks" / f"{i:04d}.png")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, str(tmp_path), str(tiny_model)],
                          capture_output=True, text=True, env=env, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["done"] == 1000
    assert data["after_all"] <= 1.2 * data["after_20"], data
