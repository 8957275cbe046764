"""Harmonizing on a Ray cluster: the local run's plan and record, another executor.

The plan is the local one (:func:`~dkt.inference.pairing.plan_folder`, a manifest, a shard),
each file runs through the same steps (:func:`~dkt.inference.jobs.run_one`: read, harmonize,
write atomically) and each failure reads the same (:func:`~dkt.inference.jobs.failure_for`);
only where the work happens differs. Ray Data streams the jobs to a pool of actors, each
of which opens the model once (:class:`HarmonizeBatch`, also usable on a user's own
dataset), and the driver turns the rows that come back into the local
:class:`~dkt.inference.jobs.RunSummary`, advancing the progress bar as they arrive.

Failures. A worker process that dies (killed, out of memory, a lost node) takes its task
with it; Ray restarts the actor and runs the task again, a few times. A retry is exact
because every output is written atomically and the existing-output policy is decided on the
driver before anything runs: an output the driver saw absent is sent to be written (a retry
rewrites the same bytes), one it saw present is sent to be checked (``--skip-existing``), so
nothing this run wrote is ever counted as skipped or refused. A task that still fails drops
out, and its files are reported by name as not done. Ctrl-C stops the cluster's work; a
re-run with ``--skip-existing`` does what is left.

The model file travels in Ray's object store (:class:`ShippedModel`), not over a shared
disk; the images themselves are paths, so every worker must see the same file system.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from backends.base import LoadOptions
from backends.registry import open_backend
from dkt.atomic import atomic_write_bytes, remove_stale_temps
from dkt.dktnet import BUNDLED_MODEL
from dkt.dktnet.strength import DEFAULT_STRENGTH
from dkt.errors import ClusterError, DktError
from dkt.imaging.imageio import DEFAULT_MAX_PIXELS
from dkt.inference.harmonizer import Harmonizer
from dkt.inference.jobs import (
    FILE_ERRORS,
    Existing,
    Failure,
    RunSummary,
    existing_output_blocks,
    failure_for,
    run_one,
)
from dkt.inference.pairing import Job

INSTALL_HINT = "pip install 'dkt[ray]'"
#: Times Ray runs a task again after its worker died, before its files are reported not done.
TASK_RETRIES = 3
#: Row statuses in :class:`HarmonizeBatch`'s output.
DONE, SKIPPED, FAILED, UNUSABLE = "done", "skipped", "failed", "model-unusable"
#: Jobs per block, at most: a finished block is what the driver's progress bar sees, and
#: what a retry redoes. Runs of a few hundred files get one job a block, so that progress
#: is per file and workers share the work evenly to the end; big runs get up to this many,
#: so that the driver does not track a million tiny blocks.
MAX_JOBS_PER_BLOCK = 8
#: Blocks per worker wanted before blocks grow past one job.
BLOCKS_PER_WORKER = 16


def require_ray() -> ModuleType:
    """``ray`` with Ray Data, or a one-line :class:`ClusterError` naming the install."""
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ClusterError(
            f"--ray needs Ray with Ray Data ({exc}); install: {INSTALL_HINT}"
        ) from exc
    return ray


# --------------------------------------------------------------------------- the model


#: Per worker process: the folder a shipped model was unpacked into, by content digest.
_UNPACKED: dict[str, Path] = {}


def model_files(model: Path) -> dict[str, bytes]:
    """The model file and its companions: files beside it named ``<model name>.<more>``.

    A TensorRT engine needs its ``model.engine.json`` sidecar, and an ONNX export with
    external weights its ``model.onnx.data``: a worker opens the model as it is here.
    """
    model = Path(model)
    if not model.is_file():
        raise ClusterError(f"{model}: no such model file")
    files = {model.name: model.read_bytes()}
    for entry in os.scandir(model.parent):
        if entry.name.startswith(model.name + ".") and entry.is_file():
            files[entry.name] = Path(entry.path).read_bytes()
    return files


@dataclass(frozen=True)
class ShippedModel:
    """A model file in Ray's object store: workers unpack it on their own disk, once.

    >>> shipped = ShippedModel.ship(Path("model.safetensors"))      # doctest: +SKIP
    >>> ds.map_batches(HarmonizeBatch, fn_constructor_kwargs={"model": shipped})  # doctest: +SKIP
    """

    name: str
    digest: str
    files: Any  # ray.ObjectRef to dict[str, bytes]

    @classmethod
    def ship(cls, model: Path | str) -> ShippedModel:
        ray = require_ray()
        files = model_files(Path(model))
        digest = hashlib.sha256()
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name])
        return cls(Path(model).name, digest.hexdigest(), ray.put(files))

    def unpack(self) -> Path:
        """The model's path on this machine (a folder named after its content, reused)."""
        if self.digest in _UNPACKED:
            return _UNPACKED[self.digest] / self.name
        ray = require_ray()
        folder = Path(tempfile.gettempdir()) / "dkt-ray-models" / self.digest[:32]
        files: dict[str, bytes] = ray.get(self.files)
        for name, data in files.items():
            path = folder / name
            if not (path.is_file() and path.stat().st_size == len(data)):
                atomic_write_bytes(path, data)  # workers on one node may unpack at once
        _UNPACKED[self.digest] = folder
        return folder / self.name


@dataclass(frozen=True)
class ModelOptions:
    """How each worker opens and runs the model: ``dkt harmonize``'s model options; ``load``
    is how the backend is opened (device, precision, CPU fallback, threads)."""

    backend: str | None = None
    load: LoadOptions = LoadOptions(device="auto")
    size: int | None = None
    upsample: str = "guided"
    strength: float = DEFAULT_STRENGTH
    max_pixels: int | None = DEFAULT_MAX_PIXELS

    @classmethod
    def from_kwargs(cls, options: dict[str, Any]) -> ModelOptions:
        """From :class:`HarmonizeBatch`'s keyword arguments: ``load`` as a
        :class:`LoadOptions` or its ``asdict``, and any of its fields given flat
        (``device="cuda"``, ``threads=4``), which win."""
        options = dict(options)
        load = options.pop("load", None)
        load = LoadOptions(**load) if isinstance(load, dict) else load or cls.load
        flat = {name: options.pop(name) for name in _LOAD_FIELDS if name in options}
        return cls(load=replace(load, **flat), **options)


_LOAD_FIELDS = tuple(f.name for f in fields(LoadOptions))


# --------------------------------------------------------------------------- the worker


class HarmonizeBatch:
    """Harmonize a batch of rows of a Ray Data dataset: ``ds.map_batches(HarmonizeBatch, ...)``.

    Rows name files every worker can read and write: ``composite``, ``mask`` and
    ``output`` paths (a row without a mask fails alone, as a missing mask does). An
    ``existing`` column (``fail``, ``skip``, ``overwrite``) decides per row what to do with an
    output already there; without one, ``existing`` here does. The default, ``skip``, makes
    a retried task or a re-run redo only what is missing. Each output row says what
    happened: ``status`` (``done``, ``skipped``, ``failed``), ``error`` (the one line a local
    run prints), ``note``, ``seconds_model``, with ``composite``, ``output``, ``key`` and any
    ``index`` passed through.

    The model is opened once, when Ray starts the actor: ``model`` is a path every worker
    can read (the bundled model is installed with dkt) or a :class:`ShippedModel`. The
    other keyword arguments are :class:`ModelOptions`.
    """

    def __init__(
        self, model: Path | str | ShippedModel = BUNDLED_MODEL, existing: str = "skip",
        **options: Any,
    ) -> None:  # fmt: skip
        self.options = ModelOptions.from_kwargs(options)
        self.existing = Existing(existing)
        self.unusable: str | None = None
        try:
            path = model.unpack() if isinstance(model, ShippedModel) else Path(model)
            engine = open_backend(path, self.options.load, backend=self.options.backend)
        except DktError as exc:  # every row says so; the driver stops at the first
            self.unusable = str(exc)
            return
        try:
            self.harmonizer = Harmonizer(
                engine, self.options.size, self.options.upsample, self.options.strength
            )
        except DktError as exc:  # a model that runs at strength 1 only
            engine.close()
            self.unusable = str(exc)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        count = len(batch["composite"])
        rows = [self._run(batch, i) for i in range(count)]
        columns = {name: np.array([row[name] for row in rows]) for name in _OUTCOME_COLUMNS}
        columns["seconds_model"] = columns["seconds_model"].astype(np.float64)
        if "index" in batch:
            columns["index"] = np.asarray(batch["index"], dtype=np.int64)
        return columns

    def _run(self, batch: dict[str, np.ndarray], i: int) -> dict[str, Any]:
        job = job_from_row(batch, i)
        if self.unusable is not None:
            return _outcome(job, UNUSABLE, error=self.unusable)
        existing = Existing(str(batch["existing"][i])) if "existing" in batch else self.existing
        record = RunSummary(total=1)
        if existing_output_blocks(job, existing, record):
            if record.failures:
                return _outcome(job, FAILED, error=record.failures[0].error)
            return _outcome(job, SKIPPED)
        note = "\n".join(record.notes)
        try:
            seconds = run_one(job, self.harmonizer, self.options.max_pixels)
        except FILE_ERRORS as exc:
            return _outcome(job, FAILED, error=failure_for(job, exc).error, note=note)
        return _outcome(job, DONE, note=note, seconds=seconds)


_OUTCOME_COLUMNS = ("key", "composite", "output", "status", "error", "note", "seconds_model")


def _outcome(
    job: Job, status: str, *, error: str = "", note: str = "", seconds: float = 0.0
) -> dict[str, Any]:
    return {"key": job.key, "composite": str(job.composite), "output": str(job.output),
            "status": status, "error": error, "note": note, "seconds_model": seconds}  # fmt: skip


def _text(value: object) -> str:
    """A cell as text: '' for a missing value (None, NaN from pandas)."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def job_from_row(batch: dict[str, np.ndarray], i: int) -> Job:
    """Row ``i`` of a batch as the local run's :class:`Job`."""
    composite = Path(_text(batch["composite"][i]))
    mask = _text(batch["mask"][i]) if "mask" in batch else ""
    key = _text(batch["key"][i]) if "key" in batch else str(composite)
    candidates = _text(batch["mask_candidates"][i]) if "mask_candidates" in batch else ""
    in_alpha = bool(batch["mask_in_alpha"][i]) if "mask_in_alpha" in batch else False
    return Job(key, composite, Path(mask) if mask else None, Path(_text(batch["output"][i])),
               tuple(candidates.splitlines()), in_alpha)  # fmt: skip


def job_row(index: int, job: Job, existing: Existing) -> dict[str, Any]:
    """``job`` as a dataset row (what :func:`job_from_row` reads back), its paths absolute.

    A worker does not run in the driver's folder: a relative path there names another file.
    """
    return {"index": index, "key": job.key, "composite": os.path.abspath(job.composite),
            "mask": "" if job.mask is None else os.path.abspath(job.mask),
            "output": os.path.abspath(job.output),
            "mask_candidates": "\n".join(job.mask_candidates),
            "mask_in_alpha": job.mask_in_alpha, "existing": existing.value}  # fmt: skip


def as_given(text: str, job: Job) -> str:
    """A worker's message with the paths written as the user gave them, as a local run
    words it (the worker saw them absolute, :func:`job_row`)."""
    for path in (job.composite, job.mask, job.output):
        if path is not None and not Path(path).is_absolute():
            text = text.replace(os.path.abspath(path), str(path))
    return text


# --------------------------------------------------------------------------- the driver


@dataclass(frozen=True)
class ClusterOptions:
    """Where to run and how to split the cluster: ``--ray``, ``--ray-gpus-per-worker``.

    ``address``: ``None`` starts a Ray instance on this machine for the run; ``auto`` (the
    cluster this machine runs or belongs to), ``host:port`` or ``ray://host:port`` joins
    that cluster. ``workers``: actors (default:
    as many as the cluster's GPUs, or CPUs, hold). ``gpus_per_worker``: default 1 where the
    cluster has GPUs, else 0 (a CPU worker uses ``threads`` cores, default 1).
    """

    address: str | None = None
    workers: int | None = None
    gpus_per_worker: float | None = None


@dataclass(frozen=True)
class WorkerPlan:
    """The actor pool a run asks Ray for."""

    workers: int
    cpus: float
    gpus: float


def plan_workers(resources: dict[str, float], cluster: ClusterOptions,
                 threads: int | None) -> WorkerPlan:  # fmt: skip
    """One GPU per worker where the cluster has GPUs, else ``threads`` CPUs each."""
    have_gpus = resources.get("GPU", 0.0)
    gpus = cluster.gpus_per_worker
    if gpus is None:
        gpus = 1.0 if have_gpus >= 1 else 0.0
    if gpus < 0:
        raise ClusterError(f"--ray-gpus-per-worker {gpus}: give 0 (CPU workers) or more")
    if gpus > have_gpus:
        raise ClusterError(
            f"--ray-gpus-per-worker {gpus:g}: the Ray cluster has {have_gpus:g} GPU(s); "
            "pass --ray-gpus-per-worker 0 to run on its CPUs"
        )
    cpus = 1.0 if gpus else float(threads or 1)
    fits = have_gpus / gpus if gpus else resources.get("CPU", 1.0) / cpus
    workers = cluster.workers or max(1, int(fits))
    return WorkerPlan(workers, cpus, gpus)


@dataclass
class RayRun:
    """What a cluster run did: the local run's summary, and the pool it ran on."""

    summary: RunSummary
    address: str
    plan: WorkerPlan

    def describe(self) -> dict[str, Any]:
        return {"engine": "ray", "address": self.address, **asdict(self.plan)}


def _bootstrap(address: str) -> tuple[str, int] | None:
    """The host and port ``ray.init(address)`` would dial (``auto``: from ``RAY_ADDRESS`` or
    the file a ``ray start`` on this machine leaves); ``None`` when it cannot be told."""
    if address.startswith("ray://"):
        host, _, port = address[len("ray://") :].partition("/")[0].rpartition(":")
    else:
        try:
            from ray._private.services import canonicalize_bootstrap_address
        except ImportError:  # a Ray without it: let ray.init say what it finds
            return None
        try:
            found = canonicalize_bootstrap_address(address)
        except Exception:  # a malformed address: ray.init words it
            return None
        if found is None:
            return None
        host, _, port = found.rpartition(":")
    return (host.strip("[]"), int(port)) if port.isdigit() else None


def _check_answers(address: str, timeout: float = 3.0) -> None:
    """Refuse, within seconds, an address where nothing listens.

    ``ray.init`` waits minutes on one, deaf to Ctrl-C, and ``auto`` finds one whenever a
    stopped ``ray start`` left its address file behind.
    """
    target = _bootstrap(address)
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as exc:
        raise ClusterError(
            f"--ray {address}: no Ray cluster answers at {target[0]}:{target[1]} ({exc}); "
            "start one (ray start --head), or use --ray local for a Ray of this run's own"
        ) from exc


@contextlib.contextmanager
def connected(address: str | None) -> Iterator[str]:
    """Ray for this run; yields where it runs.

    ``None``: a new Ray instance on this machine, stopped afterwards. Else the cluster at
    ``address`` (``auto``: the one this machine runs or belongs to), left afterwards. A Ray
    the caller already started (``ray.init`` in a notebook, a test) is used as it is and
    left running.
    """
    ray = require_ray()
    if ray.is_initialized():
        yield ray.get_runtime_context().gcs_address
        return
    if address is not None:
        _check_answers(address)
    try:
        ray.init(address=address or "local", logging_level=logging.WARNING)
    except KeyboardInterrupt:  # Ctrl-C while Ray starts: stop what it started
        ray.shutdown()
        raise
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        where = address or "local"
        raise ClusterError(f"--ray {where}: cannot start or join Ray ({reason})") from exc
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _quiet_data_context() -> Iterator[None]:
    """Ray Data without its own progress bars and log lines, failed blocks dropped (their
    files are reported by name): the driver's report is dkt's, in dkt's words."""
    from ray.data import DataContext

    context = DataContext.get_current()
    saved = (context.enable_progress_bars, context.max_errored_blocks)
    context.enable_progress_bars = False
    context.max_errored_blocks = -1
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    data_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        context.enable_progress_bars, context.max_errored_blocks = saved
        data_logger.setLevel(level)


def _rows_for(jobs: Sequence[Job], existing: Existing, summary: RunSummary,
              on_done: Callable[[Job], None]) -> list[dict[str, Any]]:  # fmt: skip
    """Rows for the jobs that must run, the existing-output policy applied here, once.

    ``FAIL``: an existing output is refused now, exactly as a local run refuses it. Every
    other job's row says ``skip`` (its output was there: a worker checks it decodes) or
    ``overwrite`` (it was not: anything there when a retry runs is this run's own work).
    """
    rows = []
    for index, job in enumerate(jobs):
        if existing is Existing.FAIL and existing_output_blocks(job, existing, summary):
            on_done(job)
            continue
        present = existing is Existing.SKIP and job.output.exists()
        policy = Existing.SKIP if present else Existing.OVERWRITE
        rows.append(job_row(index, job, policy))
    return rows


def _record(row: dict[str, Any], job: Job, summary: RunSummary) -> None:
    """Add one returned row to the summary, as the local run records a job."""
    if row["note"]:
        summary.notes.extend(as_given(str(row["note"]), job).splitlines())
    status = str(row["status"])
    if status == DONE:
        summary.done += 1
        summary.outputs.append(str(job.output))
        summary.seconds_model += float(row["seconds_model"])
    elif status == SKIPPED:
        summary.skipped += 1
    else:
        summary.failures.append(Failure(job.key, str(job.composite),
                                        as_given(str(row["error"]), job)))  # fmt: skip


def _not_done(job: Job) -> Failure:
    return Failure(job.key, str(job.composite),
                   f"{job.composite}: not done: the Ray worker running it died "
                   f"{TASK_RETRIES + 1} times (killed, out of memory, or its node lost; see "
                   "the Ray logs); re-run with --skip-existing")  # fmt: skip


def harmonize_on_ray(
    jobs: Sequence[Job],
    model: Path,
    options: ModelOptions,
    existing: Existing = Existing.FAIL,
    on_done: Callable[[Job], None] = lambda job: None,
    *,
    cluster: ClusterOptions | None = None,
) -> RayRun:
    """Run ``jobs`` on a Ray cluster; the summary is the one a local run of them gives.

    Raises :class:`ClusterError` when Ray is missing or the cluster does not answer, and the
    model's own error (a :class:`DktError`) when no worker can open it. Ctrl-C stops the
    cluster's work and returns what was done, ``interrupted`` set.
    """
    cluster = cluster or ClusterOptions()
    ray = require_ray()
    jobs = list(jobs)
    summary = RunSummary(total=len(jobs))
    started = time.perf_counter()
    remove_stale_temps(job.output for job in jobs)
    rows = _rows_for(jobs, existing, summary, on_done)
    address, plan = cluster.address or "local", WorkerPlan(0, 0.0, 0.0)
    try:
        with connected(cluster.address) as address:
            plan = plan_workers(ray.cluster_resources(), cluster, options.load.threads)
            if rows:
                shipped = ShippedModel.ship(model)
                _run_rows(rows, jobs, shipped, options, plan, summary, on_done)
    except KeyboardInterrupt:  # before the first result, or while Ray shuts down
        summary.interrupted = True
    # A killed worker's temporary file is garbage once its job is done or given up.
    remove_stale_temps(job.output for job in jobs)
    order = {job.key: i for i, job in enumerate(jobs)}
    position = {str(job.output): i for i, job in enumerate(jobs)}
    summary.outputs.sort(key=position.__getitem__)
    summary.failures.sort(key=lambda failure: order[failure.key])
    summary.seconds_total = time.perf_counter() - started
    return RayRun(summary, address, plan)


def _run_rows(
    rows: list[dict[str, Any]],
    jobs: list[Job],
    shipped: ShippedModel,
    options: ModelOptions,
    plan: WorkerPlan,
    summary: RunSummary,
    on_done: Callable[[Job], None],
) -> None:
    import ray.data

    threads = options.load.threads if plan.gpus else int(plan.cpus)
    worker_options = {**asdict(options), "threads": threads}
    per_block = max(1, min(MAX_JOBS_PER_BLOCK, len(rows) // (plan.workers * BLOCKS_PER_WORKER)))
    pending = {int(row["index"]) for row in rows}
    with _quiet_data_context():
        dataset = ray.data.from_items(rows, override_num_blocks=-(-len(rows) // per_block))
        with warnings.catch_warnings():  # no named parameter bounds the retries yet
            warnings.simplefilter("ignore", DeprecationWarning)
            results = dataset.map_batches(
                HarmonizeBatch,
                fn_constructor_kwargs={"model": shipped, **worker_options},
                batch_size=1,
                compute=ray.data.ActorPoolStrategy(size=plan.workers),
                num_cpus=plan.cpus,
                num_gpus=plan.gpus,
                max_task_retries=TASK_RETRIES,
            )
        stream = iter(results.iter_rows())
        try:
            for row in stream:
                index = int(row["index"])
                if index not in pending:
                    continue
                if row["status"] == UNUSABLE:
                    raise DktError(str(row["error"]))
                pending.discard(index)
                _record(row, jobs[index], summary)
                on_done(jobs[index])
        except KeyboardInterrupt:
            summary.interrupted = True
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    if not summary.interrupted:
        summary.failures.extend(_not_done(jobs[index]) for index in sorted(pending))
