"""The one front door for harmonizing files: plan, check the outputs, open the model, run.

``dkt harmonize``, :meth:`dkt.Harmonizer.harmonize_folder` and ``dkt serve`` each used to
open a backend, plan the folder, mark the output folders and budget memory in code of their
own, and drifted apart (three commits fixed drift between them). They now call these verbs,
in this order:

- :func:`plan`: what to do, from :class:`Inputs` (jobs, notes, warnings); a cut-out is
  pasted here, into a scratch folder the caller owns;
- :func:`check_outputs`: refuse an output no writer knows or no one can write, before the
  model loads;
- :func:`open_harmonizer`: the backend and the harmonizer, from :class:`LoadOptions`;
- :func:`run` (or :func:`run_on_ray`): mark the output folders and run, as
  :class:`RunOptions` say.

Nothing here prints: notes and warnings come back as lines for the caller to show, and
every refusal is a one-line :class:`~dkt.errors.DktError`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from backends.base import Backend, LoadOptions
from backends.registry import open_backend
from dkt.dktnet.strength import DEFAULT_STRENGTH
from dkt.errors import DktError, UsageError
from dkt.imaging.imageio import is_lossy, output_format, read_metadata, write_image
from dkt.inference.cpu import pipeline_threads
from dkt.inference.harmonizer import Harmonizer
from dkt.inference.jobs import Existing, RunSummary
from dkt.inference.manifest import plan_manifest
from dkt.inference.options import check_batch, check_workers
from dkt.inference.pairing import (
    Job,
    check_output_folders,
    mark_output_folder,
    path_problem,
    plan_alpha,
    plan_folder,
    plan_single,
    shorten,
)
from dkt.inference.paste import paste_files
from dkt.inference.pipeline import default_batch, run_all
from dkt.inference.ray_engine import ClusterOptions, ModelOptions, RayRun, harmonize_on_ray
from dkt.inference.sharding import Shard, parse_shard, select
from dkt.limits import DEFAULT_MAX_INFLIGHT_MB, DEFAULT_MAX_PIXELS

__all__ = [
    "ALPHA",
    "Inputs",
    "LoadOptions",
    "OpenedModel",
    "Plan",
    "RunOptions",
    "check_outputs",
    "existing_policy",
    "mark_outputs",
    "open_harmonizer",
    "parse_at",
    "plan",
    "run",
    "run_on_ray",
]

#: ``mask="alpha"`` (``--mask alpha``): the composite's alpha channel is its mask.
ALPHA = "alpha"
#: Called after each job, done, skipped or failed (a progress bar's advance).
OnDone = Callable[[Job], None]


@dataclass(frozen=True)
class Inputs:
    """What to harmonize, in exactly one of four modes (``dkt harmonize``'s inputs):

    - one composite: ``composite``, ``mask`` (a file, or :data:`ALPHA`) and ``output``;
    - folders: ``composites``, ``masks`` and ``out``, with the four patterns;
    - a manifest listing the jobs, its outputs confined to ``output_root`` (default: the
      manifest's folder);
    - a cut-out pasted on a painting: ``painting``, ``cutout`` and ``output``, placed
      ``at`` (X,Y text or a pair; default centred) after resizing by ``scale``, the
      composite kept at ``save_composite`` (.png) when given.

    ``shard`` (``"I/N"`` or a :class:`Shard`) splits a folder or a manifest. A mix of modes,
    or a mode half given, is a :class:`~dkt.errors.UsageError` from :func:`plan`.
    """

    composite: Path | None = None
    mask: str | Path | None = None
    output: Path | None = None
    painting: Path | None = None
    cutout: Path | None = None
    at: tuple[int, int] | str | None = None
    scale: float = 1.0
    save_composite: Path | None = None
    composites: Path | None = None
    masks: Path | None = None
    out: Path | None = None
    composite_pattern: str = "{key}"
    mask_pattern: str = "{key}"
    out_pattern: str = "{key}"
    out_suffix: str = ".png"
    manifest: Path | None = None
    output_root: Path | None = None
    shard: str | Shard | None = None

    @property
    def pasting(self) -> bool:
        """Whether this is (or tries to be) a cut-out run, which needs a scratch folder."""
        return self.painting is not None or self.cutout is not None


@dataclass(frozen=True)
class RunOptions:
    """How to run the jobs: what to do with outputs already there, the pipeline's reader
    and writer threads (0: one image at a time), images per model run (``None``: 4 on a
    GPU, 1 on the CPU), the pixel limit of an input (``None``: none) and the memory of the
    images in flight (``None`` or 0: no limit but their count).

    The model's own CPU threads are a load option (:attr:`LoadOptions.threads`), resolved
    once by :func:`open_harmonizer`; the run uses the threads the model was opened with.
    """

    existing: Existing = Existing.FAIL
    workers: int = 2
    batch: int | None = None
    max_pixels: int | None = DEFAULT_MAX_PIXELS
    max_inflight_mb: int | None = DEFAULT_MAX_INFLIGHT_MB

    def __post_init__(self) -> None:
        # Before anything is planned or made, in the words the other front doors use.
        object.__setattr__(self, "workers", check_workers(self.workers))
        object.__setattr__(self, "batch", check_batch(self.batch))

    @property
    def max_inflight_bytes(self) -> int | None:
        return self.max_inflight_mb << 20 if self.max_inflight_mb else None


def existing_policy(skip_existing: bool, overwrite: bool) -> Existing:
    """``--skip-existing`` / ``--overwrite`` as a policy; both at once is a usage error."""
    if skip_existing and overwrite:
        raise UsageError("--skip-existing and --overwrite contradict each other; pick one")
    if skip_existing:
        return Existing.SKIP
    return Existing.OVERWRITE if overwrite else Existing.FAIL


# --------------------------------------------------------------------------- planning


@dataclass
class Plan:
    """The jobs of a run and what the user should hear before it starts.

    ``notes`` (folders skipped, ...) and ``warnings`` (lossy outputs) are one line each.
    ``out`` is folder mode's output folder (marked even when it exists).
    """

    jobs: list[Job]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    shard: Shard | None = None
    out: Path | None = None
    #: Scratch paths of a pasted composite and mask -> the files the user gave.
    given: dict[str, str] = field(default_factory=dict)

    def name_given_files(self, summary: RunSummary) -> None:
        """A failure names the files the user gave, not the composite and mask pasted into a
        scratch folder that is gone when the run ends."""
        if not self.given:
            return
        composite = self.given[str(self.jobs[0].composite)]
        for failure in summary.failures:
            for scratch, user in self.given.items():
                failure.error = failure.error.replace(scratch, user)
            failure.composite = composite


def plan(
    inputs: Inputs, *, scratch: Path | None = None, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> Plan:
    """The jobs ``inputs`` ask for; a cut-out is pasted into ``scratch`` (unless kept at
    ``save_composite``), a folder the caller keeps until the run has ended.

    Raises :class:`~dkt.errors.UsageError` for a mix of modes or a mode half given, and the
    planner's own error (a :class:`~dkt.errors.PairingError`, a paste's) naming the file.
    """
    pasting = _check_cutout_options(inputs)
    shard = _shard(inputs.shard, single=inputs.composite is not None or pasting)
    if inputs.output_root is not None and inputs.manifest is None:
        raise UsageError(
            "--output-root goes with --manifest: it confines the outputs a manifest lists"
        )
    if pasting:
        result = _pasted_plan(inputs, scratch, max_pixels)
    else:
        result = Plan([], shard=shard, out=inputs.out)
        result.jobs = select(_plan_jobs(inputs, result.notes), shard)
    result.warnings = _lossy_warnings(result.jobs)
    return result


def _plan_jobs(inputs: Inputs, notes: list[str]) -> list[Job]:
    """Jobs for single-image, folder or manifest mode; a mix of them is a usage error."""
    single = [inputs.composite, inputs.mask, inputs.output]
    folder = [inputs.composites, inputs.masks, inputs.out]
    if inputs.manifest is not None:
        if any(v is not None for v in single + folder):
            raise UsageError(
                "--manifest lists the images itself; drop COMPOSITE, --mask, -o and the folders"
            )
        return plan_manifest(inputs.manifest, inputs.output_root)
    if any(v is not None for v in single) and any(v is not None for v in folder):
        raise UsageError("give either COMPOSITE --mask -o, or --composites --masks --out, not both")
    if inputs.composite is not None:
        if inputs.mask is None or inputs.output is None:
            raise UsageError("one image needs --mask MASK (or --mask alpha) and -o OUTPUT")
        if inputs.mask == ALPHA:
            return [plan_alpha(inputs.composite, inputs.output)]
        return [plan_single(inputs.composite, Path(inputs.mask), inputs.output)]
    if inputs.composites is None or inputs.masks is None or inputs.out is None:
        raise UsageError(
            "give COMPOSITE --mask MASK -o OUTPUT, or --composites DIR --masks DIR --out DIR"
        )
    jobs = plan_folder(inputs.composites, inputs.masks, inputs.out, notes=notes,
                       composite_pattern=inputs.composite_pattern,
                       mask_pattern=inputs.mask_pattern, out_pattern=inputs.out_pattern,
                       out_suffix=inputs.out_suffix)  # fmt: skip
    if not jobs:
        raise UsageError(
            f"{inputs.composites}: no composites found matching '{inputs.composite_pattern}'"
        )
    return jobs


def _check_cutout_options(inputs: Inputs) -> bool:
    """Whether this is a cut-out run; a half-given or mixed set of inputs is a usage error."""
    if not inputs.pasting:
        if inputs.at is not None or inputs.scale != 1.0 or inputs.save_composite is not None:
            raise UsageError("--at, --scale and --save-composite go with --painting and --object")
        return False
    if inputs.painting is None or inputs.cutout is None:
        raise UsageError("--painting and --object go together: give both")
    others = (inputs.composite, inputs.mask, inputs.composites, inputs.masks, inputs.out,
              inputs.manifest)  # fmt: skip
    if any(value is not None for value in others):
        raise UsageError("--painting and --object make the composite and its mask; drop "
                         "COMPOSITE, --mask, the folders and --manifest")  # fmt: skip
    return True


def _shard(shard: str | Shard | None, single: bool) -> Shard | None:
    if shard is None:
        return None
    if single:
        raise UsageError("--shard splits a folder or a manifest, not one image")
    return shard if isinstance(shard, Shard) else parse_shard(shard)


def parse_at(text: str | None) -> tuple[int, int] | None:
    """``--at X,Y`` as a pair of pixels (``None``: centred)."""
    if text is None:
        return None
    x, sep, y = text.partition(",")
    with contextlib.suppress(ValueError):
        if sep:
            return int(x), int(y)
    raise UsageError(f"--at {text!r}: give the position as X,Y in pixels, e.g. --at 120,80")


def _pasted_plan(inputs: Inputs, scratch: Path | None, max_pixels: int | None) -> Plan:
    """Paste the cut-out, write the composite and mask the run reads, and plan that one job.

    They go to ``save_composite`` (and ``<name>_mask.png`` beside it) when asked, else to
    ``scratch``.
    """
    assert inputs.painting is not None and inputs.cutout is not None
    painting, cutout, output = inputs.painting, inputs.cutout, inputs.output
    if output is None:
        raise UsageError("--painting and --object need -o OUTPUT")
    keep = inputs.save_composite
    if keep is not None and keep.suffix.lower() != ".png":
        raise UsageError(f"--save-composite {keep}: use a .png file (it must be lossless)")
    place = inputs.at if not isinstance(inputs.at, str) else parse_at(inputs.at)
    name = f"{cutout.stem}-on-{painting.stem}"[:60]  # two long stems are past a name's limit
    if keep is not None:
        comp_path = keep
    elif scratch is not None:
        comp_path = scratch / f"{name}.png"
    else:
        raise ValueError("a cut-out run needs a scratch folder, or save_composite")
    mask_path = comp_path.with_name(f"{comp_path.stem}_mask.png")
    for path, what in ((output, "output"), (mask_path, "--save-composite's mask")):
        if (problem := path_problem(path)) is not None:
            raise UsageError(f"{what} {shorten(str(path))}: {problem}")
    composite, mask = paste_files(painting, cutout, place, inputs.scale, max_pixels=max_pixels)
    write_image(comp_path, composite, meta=read_metadata(painting))  # the result keeps it
    write_image(mask_path, np.round(mask * 255).astype(np.uint8))
    job = plan_single(comp_path, mask_path, output)
    given = {} if keep is not None else {
        str(job.composite): f"{cutout} on {painting}", str(job.mask): f"{cutout} (its alpha)"
    }  # fmt: skip
    return Plan([job], given=given)


def _lossy_warnings(jobs: list[Job]) -> list[str]:
    """Once per run: a JPEG output cannot keep the painting's pixels as they were."""
    lossy = [job for job in jobs if is_lossy(job.output)]
    if not lossy:
        return []
    return [
        f"{len(lossy)} output(s) are JPEG ({lossy[0].output}{' ...' if len(lossy) > 1 else ''}"
        "): JPEG re-encodes the painting lossily, so the background is no longer "
        "byte-identical to the input; use .png, .webp or .tif to keep it"
    ]


# --------------------------------------------------------------------------- outputs


def check_outputs(planned: Plan) -> None:
    """Refuse an output suffix no writer knows, or an output that cannot be written, before
    the model loads, not after it ran."""
    for job in planned.jobs:
        output_format(job.output)
    check_output_folders(job.output for job in planned.jobs)


def mark_outputs(planned: Plan) -> None:
    """Mark the folders results go to, so a later scan of a folder around them skips them.

    Folder mode marks ``out``. With one image or a manifest only folders dkt is about to
    create are marked: an existing folder may be the very one holding the composites. Done
    by the run verbs, once the model is open: a model that fails to load leaves no folder.
    """
    out = planned.out
    folders = {out} if out is not None else {job.output.parent for job in planned.jobs}
    for folder in sorted(folders):
        if folder == out or not folder.exists():
            # An unwritable folder is reported by each write that fails, naming its file.
            with contextlib.suppress(OSError):
                mark_output_folder(folder)


# --------------------------------------------------------------------------- the model


@dataclass
class OpenedModel:
    """A loaded backend and the harmonizer on it, as :func:`open_harmonizer` made them.

    ``options`` are the load options it was opened with (threads resolved); ``seconds``
    the time loading took. Close it (or use it in a ``with`` block) to free the model.
    """

    backend: Backend
    harmonizer: Harmonizer
    options: LoadOptions
    seconds: float

    def describe(self) -> dict[str, Any]:
        return self.backend.describe()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> OpenedModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_harmonizer(
    model: Path,
    load: LoadOptions = LoadOptions(),
    size: int | None = None,
    upsample: str = "guided",
    strength: float = DEFAULT_STRENGTH,
    *,
    backend: str | None = None,
    workers: int = 0,
) -> OpenedModel:
    """Open ``model`` and the harmonizer that runs it at ``size``, ``upsample``, ``strength``.

    With a pipeline of ``workers`` and no ``load.threads``, the model gets the cores the
    readers and writers leave (:func:`~dkt.inference.cpu.pipeline_threads`). A model that
    cannot run at ``strength`` is closed again and its one-line error raised.
    """
    if load.threads is None and workers > 0:
        load = replace(load, threads=pipeline_threads(workers))
    started = time.perf_counter()
    engine = open_backend(model, load, backend=backend)
    seconds = time.perf_counter() - started
    try:
        harmonizer = Harmonizer(engine, size, upsample, strength)
    except DktError:  # a model that runs at strength 1 only
        engine.close()
        raise
    return OpenedModel(engine, harmonizer, load, seconds)


# --------------------------------------------------------------------------- running


def run(
    planned: Plan, model: OpenedModel, options: RunOptions, on_done: OnDone = lambda job: None
) -> RunSummary:
    """Run the planned jobs on this machine (the streaming pipeline, or one at a time).

    A bad file fails alone (``summary.failures``), every output is written atomically, and
    ``on_done`` is called after each job. The output folders are marked first.
    """
    mark_outputs(planned)
    summary = run_all(planned.jobs, model.harmonizer, options.existing, on_done,
                      workers=options.workers, batch=options.batch,
                      threads=model.options.threads, max_pixels=options.max_pixels,
                      max_inflight_bytes=options.max_inflight_bytes)  # fmt: skip
    planned.name_given_files(summary)
    return summary


def pipeline_settings(model: OpenedModel, options: RunOptions) -> dict[str, Any]:
    """The pipeline a :func:`run` used, resolved (for ``--json``)."""
    return {"workers": options.workers, "batch": options.batch or default_batch(model.backend),
            "threads": model.options.threads,
            "max_inflight_mb": options.max_inflight_mb or None}  # fmt: skip


def run_on_ray(
    planned: Plan,
    model: Path,
    load: LoadOptions,
    options: RunOptions,
    cluster: ClusterOptions,
    on_done: OnDone = lambda job: None,
    *,
    backend: str | None = None,
    size: int | None = None,
    upsample: str = "guided",
    strength: float = DEFAULT_STRENGTH,
) -> RayRun:
    """Run the same planned jobs on a Ray cluster (:mod:`dkt.inference.ray_engine`); the
    summary is the one :func:`run` gives. Each worker opens the model itself."""
    mark_outputs(planned)
    worker = ModelOptions(backend, load, size, upsample, strength, options.max_pixels)
    done = harmonize_on_ray(planned.jobs, model, worker, options.existing, on_done,
                            cluster=cluster)  # fmt: skip
    planned.name_given_files(done.summary)
    return done
