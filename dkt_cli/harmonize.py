"""``dkt harmonize``: one composite, or whole folders of them.

The work is :mod:`dkt.inference.run`'s, the front door :meth:`dkt.Harmonizer.harmonize_folder`
and ``dkt serve`` use too; this module parses, calls and prints, and imports the library only
when the command runs, so ``--help`` answers without numpy or torch. Every library error is
a one-line ``error:`` and exit code 2; a file that failed makes it 1.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dkt import dktnet
from dkt.limits import DEFAULT_MAX_INFLIGHT_MB, DEFAULT_MAX_PIXELS
from dkt_cli import harmonize_options as opt
from dkt_cli.console import fail, job_progress, say
from dkt_cli.options import (
    AllowCpuFallback,
    BackendName,
    Device,
    ModelFile,
    Precision,
    request_from,
)
from dkt_cli.report import finish, print_notes

if TYPE_CHECKING:
    from dkt.inference import run as front

HELP = """Harmonize one composite (COMPOSITE --mask MASK -o OUT), a cut-out pasted on a
    painting (--painting --object), or whole folders.

    Outside the mask the output is byte-identical to the input. A bad file is reported and
    skipped; the exit code is 1 when any file failed, 2 for bad options.

    Examples:

      dkt harmonize comp.jpg --mask mask.png -o out.png

      dkt harmonize comp.jpg --mask mask.png -o subtle.png --strength 0.5

      dkt harmonize --composites comps/ --masks masks/ --out results/ --skip-existing

      dkt harmonize --composites data/ --masks data/ --out results/ \\
        --composite-pattern '{key}_comp' --mask-pattern '{key}_mask'

      dkt harmonize --manifest jobs.csv --shard 3/8 --skip-existing

      dkt harmonize --composites comps/ --masks masks/ --out results/ --ray auto

      dkt harmonize --painting painting.jpg --object cutout.png --at 120,80 --scale 0.5 -o out.png

      dkt harmonize composite_rgba.png --mask alpha -o out.png
    """


def harmonize(
    composite: opt.Composite = None,
    mask: opt.Mask = None,
    output: opt.Output = None,
    painting: opt.Painting = None,
    cutout: opt.Cutout = None,
    at: opt.At = None,
    scale: opt.Scale = 1.0,
    save_composite: opt.SaveComposite = None,
    composites: opt.Composites = None,
    masks: opt.Masks = None,
    out: opt.Out = None,
    composite_pattern: opt.CompositePattern = "{key}",
    mask_pattern: opt.MaskPattern = "{key}",
    out_pattern: opt.OutPattern = "{key}",
    out_suffix: opt.OutSuffix = ".png",
    skip_existing: opt.SkipExisting = False,
    overwrite: opt.Overwrite = False,
    model: ModelFile = dktnet.BUNDLED_MODEL,
    backend: BackendName = None,
    device: Device = "auto",
    precision: Precision = None,
    allow_cpu_fallback: AllowCpuFallback = False,
    size: opt.Size = None,
    upsample: opt.Upsample = "guided",
    strength: opt.Strength = "1",
    manifest: opt.Manifest = None,
    output_root: opt.OutputRoot = None,
    shard: opt.ShardOption = None,
    workers: opt.Workers = 2,
    batch: opt.Batch = None,
    threads: opt.Threads = None,
    max_inflight_mb: opt.MaxInflightMb = DEFAULT_MAX_INFLIGHT_MB,
    max_pixels: opt.MaxPixels = DEFAULT_MAX_PIXELS,
    ray: opt.Ray = None,
    ray_workers: opt.RayWorkers = None,
    ray_gpus_per_worker: opt.RayGpusPerWorker = None,
    quiet: opt.Quiet = False,
    json_output: opt.JsonOutput = False,
) -> None:
    params = dict(locals())  # first, so it holds the parameters only
    from dkt.errors import DktError
    from dkt.inference import run as front

    try:
        options, settings = _options(params)
        inputs = request_from(front.Inputs, params)
        with contextlib.ExitStack() as stack:
            scratch = _scratch(stack) if inputs.pasting else None
            planned = front.plan(inputs, scratch=scratch, max_pixels=options.max_pixels)
            if not quiet:
                print_notes(planned.notes)
                print_notes(planned.warnings, "warning")
            front.check_outputs(planned)
            if ray is not None:
                return _on_ray(planned, params, options, settings)
            _run_here(planned, params, options, settings)
    except DktError as exc:
        fail(str(exc))


harmonize.__doc__ = HELP


def _options(params: dict[str, Any]) -> tuple[front.RunOptions, dict[str, Any]]:
    """The run's options and the harmonizer's settings (size, upsample, strength), checked in
    the order, and words, of ``dkt.Harmonizer`` and the server."""
    from dkt.inference import run as front
    from dkt.inference.options import check_size, check_upsample

    policy = front.existing_policy(params["skip_existing"], params["overwrite"])
    settings: dict[str, Any] = {"size": check_size(params["size"])}
    settings["upsample"] = check_upsample(params["upsample"])
    options = front.RunOptions(policy, params["workers"], params["batch"],
                               params["max_pixels"] or None, params["max_inflight_mb"])  # fmt: skip
    settings["strength"] = _strength(params["strength"])
    return options, settings


def _strength(text: str) -> float:
    """``--strength`` as a number in [0, 1]; taken as text so that "abc" gets this one line
    too, not the option parser's boxed usage message."""
    from dkt.dktnet.strength import check_strength
    from dkt.errors import StrengthError

    try:
        return check_strength(text)
    except StrengthError:
        fail(f"--strength {text}: give a number from 0 (the composite as pasted) to 1 (full "
             "harmonization)")  # fmt: skip


def _scratch(stack: contextlib.ExitStack) -> Path:
    """A folder for a pasted composite and its mask, gone when the run ends."""
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="dkt-")))


def _run_here(planned: front.Plan, params: dict[str, Any], options: front.RunOptions,
              settings: dict[str, Any]) -> None:  # fmt: skip
    """The local pipeline: open the model, run, report."""
    from dkt.inference import run as front

    load = request_from(front.LoadOptions, params)
    opened = front.open_harmonizer(params["model"], load, **settings, backend=params["backend"],
                                   workers=options.workers)  # fmt: skip
    if opened.backend.fallback_note:  # a CPU run is far slower than asked for
        say("warning", opened.backend.fallback_note)
    with opened, job_progress(params["quiet"], len(planned.jobs), "harmonizing") as advance:
        summary = front.run(planned, opened, options, advance)
        extra = {"seconds_load": round(opened.seconds, 3), "strength": settings["strength"],
                 "backend": opened.describe(),
                 "pipeline": front.pipeline_settings(opened, options)}  # fmt: skip
    finish(summary, extra, quiet=params["quiet"], json_output=params["json_output"],
           shard=planned.shard)  # fmt: skip


def _on_ray(planned: front.Plan, params: dict[str, Any], options: front.RunOptions,
            settings: dict[str, Any]) -> None:  # fmt: skip
    """``--ray``: the same plan, report and exit codes, run by dkt.inference.ray_engine."""
    from dkt.inference import run as front
    from dkt.inference.ray_engine import ClusterOptions

    address = params["ray"]
    cluster = ClusterOptions(None if address == "local" else address, params["ray_workers"],
                             params["ray_gpus_per_worker"])  # fmt: skip
    load = request_from(front.LoadOptions, params)
    with job_progress(params["quiet"], len(planned.jobs), "harmonizing on Ray") as advance:
        done = front.run_on_ray(planned, params["model"], load, options, cluster, advance,
                                backend=params["backend"], **settings)  # fmt: skip
    extra = {"strength": settings["strength"], "backend": done.describe()}
    finish(done.summary, extra, quiet=params["quiet"], json_output=params["json_output"],
           shard=planned.shard)  # fmt: skip
