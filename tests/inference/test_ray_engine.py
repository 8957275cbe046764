"""Harmonizing on Ray (``dkt harmonize --ray``, :class:`HarmonizeBatch`).

The fast tests call the worker and the planning directly, without Ray. Those marked
``slow`` start a local Ray cluster of 2 CPUs for the module (about 10 s on a busy 2-core
machine) and run real example composites through it against the local run; they skip,
saying so, where Ray is not installed (``pip install 'dkt[ray]'``).
"""

from __future__ import annotations

import _thread
import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from backends.base import LoadOptions
from backends.registry import open_backend
from dkt.dktnet import BUNDLED_MODEL
from dkt.errors import ClusterError
from dkt.inference.harmonizer import Harmonizer
from dkt.inference.jobs import Existing
from dkt.inference.pairing import OUTPUT_MARKER, Job, plan_folder
from dkt.inference.pipeline import run_all
from dkt.inference.ray_engine import (
    DONE,
    FAILED,
    SKIPPED,
    TASK_RETRIES,
    UNUSABLE,
    ClusterOptions,
    HarmonizeBatch,
    ModelOptions,
    WorkerPlan,
    as_given,
    harmonize_on_ray,
    job_from_row,
    job_row,
    plan_workers,
    require_ray,
)
from dkt_cli.app import app

README = Path(__file__).resolve().parents[2] / "README.md"
PATTERNS = {"composite_pattern": "{key}_comp", "mask_pattern": "{key}_mask"}
#: The model's options in every run here: one thread, so local and Ray runs compute alike.
OPTIONS = ModelOptions(load=LoadOptions(device="cpu", threads=1))


def real_folder(shared_data: Path, folder: Path, count: int) -> Path:
    """``count`` example composites and their masks, linked (not copied) into ``folder``."""
    source = shared_data / "example_composites"
    folder.mkdir(parents=True)
    for comp in sorted(source.glob("*_comp.*"))[:count]:
        key = comp.name.split("_comp")[0]
        mask = next(source.glob(f"{key}_mask.*"))
        for path in (comp, mask):
            (folder / path.name).symlink_to(path)
    return folder


def local_reference(jobs: list[Job], model: Path) -> dict[str, bytes]:
    """The local pipeline's outputs, by output name: what every Ray run must reproduce."""
    engine = open_backend(model, LoadOptions(device="cpu", threads=1))
    summary = run_all(jobs, Harmonizer(engine), Existing.OVERWRITE, threads=1)
    assert summary.done == len(jobs), summary.failures
    return {Path(out).name: Path(out).read_bytes() for out in summary.outputs}


def outputs(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.name != OUTPUT_MARKER}


def temporaries(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- without Ray


def test_a_cpu_cluster_gets_one_worker_per_core_share() -> None:
    plan = plan_workers({"CPU": 8.0}, ClusterOptions(), threads=2)
    assert plan == WorkerPlan(workers=4, cpus=2.0, gpus=0.0)


def test_a_gpu_cluster_gets_one_worker_per_gpu() -> None:
    plan = plan_workers({"CPU": 64.0, "GPU": 8.0}, ClusterOptions(), threads=None)
    assert plan == WorkerPlan(workers=8, cpus=1.0, gpus=1.0)
    half = plan_workers({"CPU": 64.0, "GPU": 8.0}, ClusterOptions(gpus_per_worker=0.5), None)
    assert half.workers == 16


def test_asking_for_gpus_the_cluster_lacks_says_how_to_use_its_cpus() -> None:
    with pytest.raises(ClusterError, match=r"has 0 GPU.*--ray-gpus-per-worker 0"):
        plan_workers({"CPU": 2.0}, ClusterOptions(gpus_per_worker=1), None)


def test_a_job_survives_the_trip_through_a_dataset_row(tmp_path: Path) -> None:
    job = Job("sub/a", tmp_path / "a.jpg", None, tmp_path / "out" / "a.png", ("sub/a.png",))
    row = job_row(3, job, Existing.SKIP)
    batch = {name: np.array([value]) for name, value in row.items()}
    assert job_from_row(batch, 0) == job


def test_workers_get_absolute_paths_and_messages_come_back_as_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker of an existing cluster runs in its own folder: ``in/a.jpg`` there is another
    file (every job of a relative --composites failed 'no such file'). Its message then
    names the path as the user typed it, as a local run does."""
    monkeypatch.chdir(tmp_path)
    job = Job("a", Path("in/a.jpg"), Path("in/a_mask.png"), Path("out/a.png"))
    row = job_row(0, job, Existing.OVERWRITE)
    assert row["composite"] == str(tmp_path / "in" / "a.jpg")
    assert row["output"] == str(tmp_path / "out" / "a.png")
    worded = f"{tmp_path / 'in' / 'a.jpg'}: no such file"
    assert as_given(worded, job) == "in/a.jpg: no such file"


def test_the_map_batches_class_reports_each_row_as_a_local_run_would(
    shared_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """Called as Ray Data calls it: a good file is written, a corrupt one and one without a
    mask fail alone with the local run's words, an existing output is skipped."""
    folder = real_folder(shared_data, tmp_path / "in", 2)
    (folder / "broken_comp.png").write_bytes(b"not an image")
    (folder / "broken_mask.png").symlink_to(next(folder.glob("*_mask.*")).resolve())
    (folder / "lonely_comp.png").symlink_to(next(folder.glob("*_comp.*")).resolve())
    jobs = plan_folder(folder, folder, tmp_path / "out", **PATTERNS)
    worker = HarmonizeBatch(tiny_model, existing="skip", device="cpu", threads=1)
    first = worker({"composite": np.array([str(jobs[0].composite)]),
                    "mask": np.array([str(jobs[0].mask)]),
                    "output": np.array([str(jobs[0].output)])})  # fmt: skip
    assert list(first["status"]) == [DONE] and Path(jobs[0].output).is_file()
    rows = [job_row(i, job, Existing.SKIP) for i, job in enumerate(jobs)]
    batch = {name: np.array([row[name] for row in rows]) for name in rows[0]}
    result = worker(batch)
    by_key = dict(zip(result["key"], zip(result["status"], result["error"], strict=True),
                      strict=True))  # fmt: skip
    assert by_key[jobs[0].key] == (SKIPPED, "")
    assert by_key[jobs[1].key] == (DONE, "") and jobs[1].output.is_file()
    assert by_key["broken"][0] == FAILED and "broken_comp.png" in by_key["broken"][1]
    assert by_key["lonely"] == (
        FAILED,
        f"{folder / 'lonely_comp.png'}: no mask found "
        "(looked for lonely_mask.{png,bmp,jpeg,jpg,tif,tiff,webp})",
    )
    assert list(result["index"]) == list(range(len(jobs)))


def test_a_model_a_worker_cannot_open_is_said_on_every_row(tmp_path: Path) -> None:
    """The driver stops at the first such row with this one line (exit 2 in the CLI), as a
    local run stops before its first image."""
    worker = HarmonizeBatch(tmp_path / "missing.safetensors", device="cpu")
    result = worker({"composite": np.array(["a.png"]), "mask": np.array(["m.png"]),
                     "output": np.array([str(tmp_path / "o.png")])})  # fmt: skip
    assert list(result["status"]) == [UNUSABLE]
    assert "missing.safetensors" in result["error"][0]
    assert not (tmp_path / "o.png").exists()


def test_without_ray_the_cli_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tiny_model: Path, tmp_path: Path, write_pair
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(ClusterError, match=re.escape("pip install 'dkt[ray]'")):
        require_ray()
    write_pair(tmp_path / "c" / "a.png", tmp_path / "m" / "a.png")
    result = CliRunner().invoke(app, ["harmonize", "--composites", str(tmp_path / "c"),
                                      "--masks", str(tmp_path / "m"), "--out",
                                      str(tmp_path / "o"), "--model", str(tiny_model),
                                      "--ray", "local"])  # fmt: skip
    assert result.exit_code == 2
    assert "pip install 'dkt[ray]'" in result.stderr and "Traceback" not in result.output


# --------------------------------------------------------------------------- on a Ray cluster


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray instance of 2 CPUs for this module, shut down after it."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'dkt[ray]')")
    pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'dkt[ray]')")
    ray.init(address="local", num_cpus=2, logging_level="WARNING", include_dashboard=False)
    yield ray
    ray.shutdown()


def _worker_pids(doing: bytes = b"") -> list[int]:
    """Processes of :class:`HarmonizeBatch` actors (Ray names them after it, and after the
    method they run: ``).submit`` is a task)."""
    pids = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                cmdline = Path(entry.path, "cmdline").read_bytes()
            except OSError:
                continue
            if b"MapBatches(HarmonizeBatch)" + doing in cmdline:
                pids.append(int(entry.name))
    return pids


@pytest.mark.slow
def test_the_cli_on_ray_writes_what_the_local_run_writes(
    ray_cluster, shared_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    folder = real_folder(shared_data, tmp_path / "in", 10)
    common = ["harmonize", "--composites", folder, "--masks", folder,
              "--composite-pattern", "{key}_comp", "--mask-pattern", "{key}_mask",
              "--model", tiny_model, "--device", "cpu", "--threads", "1"]  # fmt: skip
    runner = CliRunner()
    local = runner.invoke(app, [str(a) for a in [*common, "--out", tmp_path / "local"]])
    assert local.exit_code == 0, local.output
    on_ray = runner.invoke(
        app,
        [
            str(a)
            for a in [*common, "--out", tmp_path / "ray", "--ray", "local", "--ray-workers", "2"]
        ],
    )
    assert on_ray.exit_code == 0, on_ray.output
    assert "10 harmonized, 0 skipped, 0 failed of 10" in on_ray.stderr
    assert outputs(tmp_path / "ray") == outputs(tmp_path / "local")
    assert len(outputs(tmp_path / "ray")) == 10
    assert (tmp_path / "ray" / OUTPUT_MARKER).is_file()
    again = runner.invoke(app, [str(a) for a in [*common, "--out", tmp_path / "ray",
                                                 "--ray", "local"]])  # fmt: skip
    assert again.exit_code == 1  # outputs exist, as locally: each refused by name
    assert "10 failed of 10" in again.stderr and "output exists" in again.stderr


@pytest.mark.slow
def test_a_bad_file_fails_alone_with_the_local_runs_words(
    ray_cluster, shared_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    folder = real_folder(shared_data, tmp_path / "in", 8)
    (folder / "broken_comp.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    (folder / "broken_mask.png").symlink_to(next(folder.glob("*_mask.*")).resolve())
    jobs = plan_folder(folder, folder, tmp_path / "out", **PATTERNS)
    engine = open_backend(tiny_model, LoadOptions(device="cpu", threads=1))
    local = run_all(jobs, Harmonizer(engine), Existing.FAIL, threads=1)
    for out in local.outputs:
        Path(out).unlink()
    run = harmonize_on_ray(jobs, tiny_model, OPTIONS, Existing.FAIL)
    assert (run.summary.done, run.summary.failed) == (8, 1)
    assert run.summary.failures == local.failures
    assert "broken_comp.jpg" in run.summary.failures[0].error
    assert temporaries(tmp_path / "out") == []


@pytest.mark.slow
def test_a_killed_worker_loses_and_corrupts_nothing(
    ray_cluster, shared_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """SIGKILL one worker as the first result arrives: Ray restarts it and runs its task
    again, and every output is the local run's, byte for byte."""
    folder = real_folder(shared_data, tmp_path / "in", 16)
    jobs = plan_folder(folder, folder, tmp_path / "out", **PATTERNS)
    reference = local_reference(plan_folder(folder, folder, tmp_path / "ref", **PATTERNS),
                                tiny_model)  # fmt: skip
    killed: list[int] = []

    def kill_one(job: Job) -> None:
        pids = _worker_pids(b").submit") or _worker_pids()  # one running a task, if any
        if not killed and pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    run = harmonize_on_ray(jobs, tiny_model, OPTIONS, Existing.FAIL, kill_one,
                           cluster=ClusterOptions(workers=2))  # fmt: skip
    assert killed, "no Ray worker process was found to kill"
    assert not Path(f"/proc/{killed[0]}").exists()
    assert (run.summary.done, run.summary.failed, run.summary.skipped) == (16, 0, 0)
    assert outputs(tmp_path / "out") == reference
    assert temporaries(tmp_path / "out") == []


@pytest.mark.slow
def test_after_ctrl_c_a_skip_existing_run_finishes_the_work(
    ray_cluster, shared_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    folder = real_folder(shared_data, tmp_path / "in", 12)
    jobs = plan_folder(folder, folder, tmp_path / "out", **PATTERNS)
    reference = local_reference(plan_folder(folder, folder, tmp_path / "ref", **PATTERNS),
                                tiny_model)  # fmt: skip
    first = harmonize_on_ray(
        jobs, tiny_model, OPTIONS, Existing.FAIL, lambda job: _thread.interrupt_main()
    )  # Ctrl-C at the first result
    assert first.summary.interrupted
    assert 0 < first.summary.done < len(jobs)
    written = outputs(tmp_path / "out")
    assert all(reference[name] == data for name, data in written.items())  # none half-written
    second = harmonize_on_ray(jobs, tiny_model, OPTIONS, Existing.SKIP)
    assert not second.summary.interrupted and second.summary.failed == 0
    assert second.summary.skipped >= first.summary.done
    assert second.summary.skipped + second.summary.done == len(jobs)
    assert outputs(tmp_path / "out") == reference
    assert temporaries(tmp_path / "out") == []


@pytest.mark.slow
def test_the_readme_ray_data_example_runs(
    ray_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_pair
) -> None:
    """The README's Ray Data example, as written, on two pairs it names."""
    section = README.read_text(encoding="utf-8").split("\n## Many machines\n", 1)[1]
    example = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], flags=re.S)[0]
    for key in ("a", "b"):
        write_pair(tmp_path / "comps" / f"{key}.png", tmp_path / "masks" / f"{key}.png")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, str(README), "exec"), {})  # the README's own code
    assert sorted(p.name for p in (tmp_path / "results").glob("*.png")) == ["a.png", "b.png"]


@pytest.mark.slow
def test_a_file_whose_worker_dies_every_time_is_reported_not_done(
    ray_cluster, shared_data: Path, tmp_path: Path
) -> None:
    """Every worker is killed while it runs the task: after Ray's retries the run still ends,
    naming the file as not done, and leaves no partial output."""
    folder = real_folder(shared_data, tmp_path / "in", 1)
    jobs = plan_folder(folder, folder, tmp_path / "out", **PATTERNS)
    running = threading.Event()
    kills: list[int] = []

    def kill_every_running_worker() -> None:
        while not running.is_set():
            for pid in _worker_pids(b").submit"):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
            time.sleep(0.01)

    killer = threading.Thread(target=kill_every_running_worker, daemon=True)
    killer.start()
    try:
        run = harmonize_on_ray(jobs, BUNDLED_MODEL, OPTIONS, Existing.FAIL,
                               cluster=ClusterOptions(workers=1))  # fmt: skip
    finally:
        running.set()
        killer.join()
    assert (run.summary.done, run.summary.failed) == (0, 1), kills
    assert run.summary.failures[0].error == (
        f"{jobs[0].composite}: not done: the Ray worker running it died {TASK_RETRIES + 1} "
        "times (killed, out of memory, or its node lost; see the Ray logs); re-run with "
        "--skip-existing"
    )
    assert not (tmp_path / "out").exists() or temporaries(tmp_path / "out") == []


@pytest.mark.slow
def test_ctrl_c_on_the_cli_exits_130_and_skip_existing_finishes(
    ray_cluster, shared_data: Path, tiny_model: Path, tmp_path: Path
) -> None:
    """A real SIGINT to ``dkt harmonize --ray local`` (its own Ray instance) once results
    arrive: exit 130 with a summary and no traceback, nothing half-written; the same command
    with --skip-existing (here on the module's cluster) does the rest."""
    folder = real_folder(shared_data, tmp_path / "in", 47)
    out = tmp_path / "out"
    args = ["harmonize", "--composites", folder, "--masks", folder, "--out", out,
            "--composite-pattern", "{key}_comp", "--mask-pattern", "{key}_mask",
            "--model", tiny_model, "--device", "cpu", "--threads", "1", "--ray"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "dkt", *map(str, args), "local"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)  # fmt: skip
    deadline = time.monotonic() + 180
    while not any(out.glob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "(interrupted)" in stderr and "Traceback" not in stderr
    assert temporaries(out) == []
    written = len(outputs(out))
    assert 0 < written < 47
    reference = local_reference(plan_folder(folder, folder, tmp_path / "ref", **PATTERNS),
                                tiny_model)  # fmt: skip
    assert all(reference[name] == data for name, data in outputs(out).items())
    rerun = CliRunner().invoke(app, [*map(str, args), "auto", "--skip-existing"])
    assert rerun.exit_code == 0, rerun.output
    assert f"{47 - written} harmonized, {written} skipped, 0 failed of 47" in rerun.stderr
    assert outputs(out) == reference
