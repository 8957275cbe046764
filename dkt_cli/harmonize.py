"""``dkt harmonize``: one composite, or whole folders of them."""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.markup import escape
from rich.table import Table

from backends.base import Backend
from backends.registry import open_backend
from dkt import dktnet
from dkt.dktnet.strength import check_strength
from dkt.errors import DktError, OptionError, PairingError, ShardError, StrengthError
from dkt.imaging.imageio import (
    DEFAULT_MAX_PIXELS,
    is_lossy,
    output_format,
    read_metadata,
    write_image,
)
from dkt.inference.cpu import pipeline_threads
from dkt.inference.harmonizer import Harmonizer
from dkt.inference.jobs import Existing, RunSummary
from dkt.inference.manifest import plan_manifest
from dkt.inference.options import check_batch, check_size, check_upsample, check_workers
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
from dkt.inference.pipeline import DEFAULT_MAX_INFLIGHT_MB, default_batch, run_all
from dkt.inference.ray_engine import ClusterOptions, ModelOptions, harmonize_on_ray
from dkt.inference.sharding import Shard, parse_shard, select
from dkt_cli.console import (
    EXIT_FAILED,
    err,
    fail,
    job_progress,
    plain_line,
    print_json,
    printable,
    say,
)
from dkt_cli.options import MODEL_PANEL, BackendName, ModelFile

_FOLDERS = "Folders"
_CUTOUT = "Cut-out on a painting"
#: ``--mask alpha``: the composite's alpha channel is its mask.
ALPHA = "alpha"
_MODEL = MODEL_PANEL
_SCALE = "Scale"


def _plan(
    composite: Path | None,
    mask: str | None,
    output: Path | None,
    composites: Path | None,
    masks: Path | None,
    out: Path | None,
    patterns: dict[str, str],
    manifest: Path | None = None,
    notes: list[str] | None = None,
    output_root: Path | None = None,
) -> list[Job]:
    """Jobs for single-image, folder or manifest mode; a mix of them is a usage error."""
    single = [composite, mask, output]
    folder = [composites, masks, out]
    if manifest is not None:
        if any(v is not None for v in single + folder):
            fail("--manifest lists the images itself; drop COMPOSITE, --mask, -o and the folders")
        return plan_manifest(manifest, output_root)
    if any(v is not None for v in single) and any(v is not None for v in folder):
        fail("give either COMPOSITE --mask -o, or --composites --masks --out, not both")
    if composite is not None:
        if mask is None or output is None:
            fail("one image needs --mask MASK (or --mask alpha) and -o OUTPUT")
        if mask == ALPHA:
            return [plan_alpha(composite, output)]
        return [plan_single(composite, Path(mask), output)]
    if composites is None or masks is None or out is None:
        fail("give COMPOSITE --mask MASK -o OUTPUT, or --composites DIR --masks DIR --out DIR")
    jobs = plan_folder(composites, masks, out, **patterns, notes=notes)
    if not jobs:
        fail(f"{composites}: no composites found matching '{patterns['composite_pattern']}'")
    return jobs


def _check_cutout_options(
    painting: Path | None,
    cutout: Path | None,
    at: str | None,
    scale: float,
    save_composite: Path | None,
    other_inputs: list[object],
) -> bool:
    """Whether this is a cut-out run; a half-given or mixed set of inputs is a usage error."""
    if painting is None and cutout is None:
        if at is not None or scale != 1.0 or save_composite is not None:
            fail("--at, --scale and --save-composite go with --painting and --object")
        return False
    if painting is None or cutout is None:
        fail("--painting and --object go together: give both")
    if any(value is not None for value in other_inputs):
        fail("--painting and --object make the composite and its mask; drop COMPOSITE, "
             "--mask, the folders and --manifest")  # fmt: skip
    return True


def _parse_at(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    x, sep, y = text.partition(",")
    try:
        if sep:
            return int(x), int(y)
    except ValueError:
        pass
    fail(f"--at {text!r}: give the position as X,Y in pixels, e.g. --at 120,80")


def _pasted_job(
    painting: Path,
    cutout: Path,
    at: str | None,
    scale: float,
    output: Path | None,
    save_composite: Path | None,
    scratch: Path,
    max_pixels: int | None,
) -> Job:
    """Paste the cut-out, write the composite and mask the run reads, and plan that one job.

    They go to ``--save-composite`` (and ``<name>_mask.png`` beside it) when asked, else to
    ``scratch``, a folder that lives as long as the run.
    """
    if output is None:
        fail("--painting and --object need -o OUTPUT")
    if save_composite is not None and save_composite.suffix.lower() != ".png":
        fail(f"--save-composite {save_composite}: use a .png file (it must be lossless)")
    place = _parse_at(at)
    name = f"{cutout.stem}-on-{painting.stem}"[:60]  # two long stems are past a name's limit
    comp_path = save_composite or scratch / f"{name}.png"
    mask_path = comp_path.with_name(f"{comp_path.stem}_mask.png")
    for path, what in ((output, "output"), (mask_path, "--save-composite's mask")):
        if (problem := path_problem(path)) is not None:
            fail(f"{what} {shorten(str(path))}: {problem}")
    try:
        composite, mask = paste_files(painting, cutout, place, scale, max_pixels=max_pixels)
    except DktError as exc:
        fail(str(exc))
    write_image(comp_path, composite, meta=read_metadata(painting))  # the result keeps it
    write_image(mask_path, np.round(mask * 255).astype(np.uint8))
    try:
        return plan_single(comp_path, mask_path, output)
    except PairingError as exc:
        fail(str(exc))


def _name_pasted_inputs(summary: RunSummary, job: Job, painting: Path, cutout: Path) -> None:
    """A failure names the files the user gave, not the composite and mask pasted into a
    temporary folder that is gone when the run ends."""
    shown = {str(job.mask): f"{cutout} (its alpha)", str(job.composite): f"{cutout} on {painting}"}
    for failure in summary.failures:
        for scratch, user in shown.items():
            failure.error = failure.error.replace(scratch, user)
        failure.composite = shown[str(job.composite)]


def _strength(text: str) -> float:
    """``--strength`` as a number in [0, 1]; taken as text so that "abc" gets this one line
    too, not the option parser's boxed usage message."""
    try:
        return check_strength(text)
    except StrengthError:
        fail(f"--strength {text}: give a number from 0 (the composite as pasted) to 1 (full "
             "harmonization)")  # fmt: skip


def _existing_policy(skip_existing: bool, overwrite: bool) -> Existing:
    if skip_existing and overwrite:
        fail("--skip-existing and --overwrite contradict each other; pick one")
    if skip_existing:
        return Existing.SKIP
    return Existing.OVERWRITE if overwrite else Existing.FAIL


def _shard(text: str | None, single: bool) -> Shard | None:
    if text is None:
        return None
    if single:
        fail("--shard splits a folder or a manifest, not one image")
    try:
        return parse_shard(text)
    except ShardError as exc:
        fail(str(exc))


def _check_outputs(jobs: list[Job]) -> None:
    """Refuse an output suffix no writer knows, or an output that cannot be written, before
    the model loads, not after it ran."""
    try:
        for job in jobs:
            output_format(job.output)
        check_output_folders(job.output for job in jobs)
    except DktError as exc:
        fail(str(exc))


def _mark_output_folders(jobs: list[Job], out: Path | None) -> None:
    """Mark the folders results go to, so a later scan of a folder around them skips them.

    Folder mode marks ``--out``. With one image or a manifest only folders dkt is about to
    create are marked: an existing folder may be the very one holding the composites.
    """
    folders = {out} if out is not None else {job.output.parent for job in jobs}
    for folder in sorted(folders):
        if folder == out or not folder.exists():
            # An unwritable folder is reported by each write that fails, naming its file.
            with contextlib.suppress(OSError):
                mark_output_folder(folder)


def _warn_lossy(jobs: list[Job]) -> None:
    """Once per run: a JPEG output cannot keep the painting's pixels as they were."""
    lossy = [job for job in jobs if is_lossy(job.output)]
    if lossy:
        say(
            "warning",
            f"{len(lossy)} output(s) are JPEG ({lossy[0].output}"
            f"{' ...' if len(lossy) > 1 else ''}): JPEG re-encodes the painting lossily, so "
            "the background is no longer byte-identical to the input; use .png, .webp or "
            ".tif to keep it",
        )


def _say_fallback(engine: Backend) -> None:
    """One line when --allow-cpu-fallback was used: a CPU run is far slower than asked for."""
    if engine.fallback_note:
        say("warning", engine.fallback_note)


def _print_failures(summary: RunSummary) -> None:
    """A table on a terminal; elsewhere (logs, pipes, CI) one whole ``path: error`` line each.

    A table is sized to the terminal; written to a file it is cut at 80 columns, which
    truncates the very file names a log reader needs to find.
    """
    if err.is_terminal:
        table = Table(title=f"{summary.failed} file(s) failed", title_justify="left")
        table.add_column("item", style="bold")
        table.add_column("error")
        for failure in summary.failures:
            table.add_row(escape(printable(failure.key)), escape(printable(failure.error)))
        err.print(table)
        return
    for failure in summary.failures:
        plain_line(failure.error)


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        say("note", note)


def _report(summary: RunSummary, shard: Shard | None = None) -> None:
    _print_notes(summary.notes)
    if summary.failures:
        _print_failures(summary)
    note = " (interrupted)" if summary.interrupted else ""
    where = f" in shard {shard}" if shard else ""
    err.print(
        f"{summary.done} harmonized, {summary.skipped} skipped, {summary.failed} failed "
        f"of {summary.total}{where}{note} in {summary.seconds_total:.1f} s",
        soft_wrap=True,
    )


def _run_on_ray(jobs: list[Job], model: Path, options: ModelOptions, policy: Existing,
                cluster: ClusterOptions, quiet: bool, json_output: bool,
                part: Shard | None) -> None:  # fmt: skip
    """``--ray``: the same jobs, report and exit codes, run by dkt.inference.ray_engine."""
    with job_progress(quiet, len(jobs), "harmonizing on Ray") as advance:
        try:
            run = harmonize_on_ray(jobs, model, options, policy, advance,
                                   cluster=cluster)  # fmt: skip
        except DktError as exc:
            fail(str(exc))
    if json_output:
        print_json({**run.summary.to_dict(), "strength": options.strength,
                    "backend": run.describe()})  # fmt: skip
    if not quiet or run.summary.failures:
        _report(run.summary, part)
    if run.summary.failures or run.summary.interrupted:
        raise typer.Exit(EXIT_FAILED if run.summary.failures else 130)


def harmonize(
    composite: Annotated[
        Path | None,
        typer.Argument(
            help="Composite image (a photo object pasted into a painting).", metavar="COMPOSITE"
        ),
    ] = None,
    mask: Annotated[
        str | None,
        typer.Option(
            "--mask",
            "-m",
            help="Mask of the pasted object: white (or opaque alpha) is the object, grey is "
            "blended softly. A grey or palette mask whose largest value is 1 is a 0/1 label "
            "mask (as segmentation tools write): 1 is the object. An empty mask is an error. "
            "'alpha': the composite's own alpha channel is the mask (a file named alpha: "
            "./alpha).",
            metavar="MASK|alpha",
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output image file.")
    ] = None,
    painting: Annotated[
        Path | None,
        typer.Option(
            help="Painting to paste --object on (instead of COMPOSITE --mask).",
            rich_help_panel=_CUTOUT,
        ),
    ] = None,
    cutout: Annotated[
        Path | None,
        typer.Option(
            "--object",
            help="Cut-out of the object: an image with transparency (PNG, WebP, TIFF); its "
            "alpha is the mask.",
            rich_help_panel=_CUTOUT,
        ),
    ] = None,
    at: Annotated[
        str | None,
        typer.Option(
            help="Where the cut-out's top-left corner goes on the painting, in pixels "
            "(may be negative). Default: centred.",
            metavar="X,Y",
            rich_help_panel=_CUTOUT,
        ),
    ] = None,
    scale: Annotated[
        float,
        typer.Option(help="Resize the cut-out by this factor first.", rich_help_panel=_CUTOUT),
    ] = 1.0,
    save_composite: Annotated[
        Path | None,
        typer.Option(
            help="Also keep the pasted composite here (.png), and its mask beside it as "
            "<name>_mask.png.",
            rich_help_panel=_CUTOUT,
        ),
    ] = None,
    composites: Annotated[
        Path | None,
        typer.Option(help="Folder of composites (searched recursively).", rich_help_panel=_FOLDERS),
    ] = None,
    masks: Annotated[
        Path | None,
        typer.Option(help="Folder of masks, same relative paths.", rich_help_panel=_FOLDERS),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Output folder; the sub-folder tree is kept.", rich_help_panel=_FOLDERS),
    ] = None,
    composite_pattern: Annotated[
        str, typer.Option(help="Composite file stem, e.g. '{key}_comp'.", rich_help_panel=_FOLDERS)
    ] = "{key}",
    mask_pattern: Annotated[
        str,
        typer.Option(
            help="Mask file stem for a composite's {key}, e.g. '{key}_mask'.",
            rich_help_panel=_FOLDERS,
        ),
    ] = "{key}",
    out_pattern: Annotated[
        str, typer.Option(help="Output file stem.", rich_help_panel=_FOLDERS)
    ] = "{key}",
    out_suffix: Annotated[
        str,
        typer.Option(
            help="Output format in folder mode: .png, .webp, .tif and .bmp keep the background "
            "byte-identical; .jpg does not.",
            rich_help_panel=_FOLDERS,
        ),
    ] = ".png",
    skip_existing: Annotated[
        bool, typer.Option("--skip-existing", help="Leave outputs that exist alone.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace outputs that exist.")
    ] = False,
    model: ModelFile = dktnet.BUNDLED_MODEL,
    backend: BackendName = None,
    device: Annotated[
        str,
        typer.Option(
            help="auto, cpu, cuda, cuda:N; for .onnx also tensorrt[:N] (ORT's TensorRT provider).",
            rich_help_panel=_MODEL,
        ),
    ] = "auto",
    precision: Annotated[
        str | None,
        typer.Option(
            help="fp32, fp16 or bf16 (GPU). Default: fp32, or what an exported file was built for.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    allow_cpu_fallback: Annotated[
        bool,
        typer.Option(
            "--allow-cpu-fallback",
            help="Run on the CPU if the GPU asked for is unusable.",
            rich_help_panel=_MODEL,
        ),
    ] = False,
    size: Annotated[
        int | None,
        typer.Option(
            help="Working resolution (long side), at least 8; 0 = the image's own. "
            "Default: the model's.",
            rich_help_panel=_MODEL,
        ),
    ] = None,
    upsample: Annotated[
        str,
        typer.Option(
            help="How the result reaches full resolution: guided (a local colour transform, "
            "keeps fine detail) or residual (the upsampled change).",
            rich_help_panel=_MODEL,
        ),
    ] = "guided",
    strength: Annotated[
        str,
        typer.Option(
            help="Style strength from 0 (the composite as pasted, byte for byte) to 1 (full "
            "harmonization); in between, the object moves part of the way. ONNX exports "
            "and engines made before this option existed run at 1 only.",
            metavar="S",
            rich_help_panel=_MODEL,
        ),
    ] = "1",
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="CSV (header composite,mask,output) or .jsonl listing the jobs; "
            "relative paths are relative to the manifest.",
            rich_help_panel=_SCALE,
        ),
    ] = None,
    output_root: Annotated[
        Path | None,
        typer.Option(
            help="With --manifest: the folder every output must lie in; a manifest naming "
            "an output elsewhere (../x.png, an absolute path) is refused.",
            show_default="the manifest's folder",
            rich_help_panel=_SCALE,
        ),
    ] = None,
    shard: Annotated[
        str | None,
        typer.Option(
            help="Do only shard I of N (1-based, e.g. 2/8), chosen by a hash of each "
            "item's name: N processes with I = 1..N do everything once.",
            metavar="I/N",
            rich_help_panel=_SCALE,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Reader and writer threads that overlap decoding and encoding with the "
            "model; 0 = one image at a time, no pipeline.",
            rich_help_panel=_SCALE,
        ),
    ] = 2,
    batch: Annotated[
        int | None,
        typer.Option(
            help="Images of the same working size run through the model together (on the "
            "CPU batching is no faster and multiplies the model's memory).",
            show_default="4 on a GPU, 1 on the CPU",
            rich_help_panel=_SCALE,
        ),
    ] = None,
    threads: Annotated[
        int | None,
        typer.Option(
            help="CPU threads for the model. With the pipeline the default leaves one core "
            "per worker to the readers and writers; with --workers 0 it is the runtime's own.",
            min=1,
            show_default="cores - workers, at least 1",
            rich_help_panel=_SCALE,
        ),
    ] = None,
    max_inflight_mb: Annotated[
        int,
        typer.Option(
            "--max-inflight-mb",
            help="Memory (MB) for the images in flight in the pipeline: decoded, waiting "
            "for the model, waiting to be written. Images wait for room; one bigger than "
            "this still runs, alone. 0 = no limit but their count.",
            min=0,
            rich_help_panel=_SCALE,
        ),
    ] = DEFAULT_MAX_INFLIGHT_MB,
    max_pixels: Annotated[
        int,
        typer.Option(
            help="Refuse images with more pixels (decompression-bomb guard); 0 = no limit.",
            min=0,
            rich_help_panel=_SCALE,
        ),
    ] = DEFAULT_MAX_PIXELS,
    ray: Annotated[
        str | None,
        typer.Option(
            help="Run on Ray (pip install 'dkt[ray]'): 'local' starts or joins a Ray instance "
            "on this machine, 'auto' or ray://HOST:PORT an existing cluster. Every worker "
            "must see the input and output paths (a shared file system).",
            metavar="local|auto|ADDRESS",
            rich_help_panel=_SCALE,
        ),
    ] = None,
    ray_workers: Annotated[
        int | None,
        typer.Option(
            help="Ray workers (each opens the model once).",
            min=1,
            show_default="as many as the cluster's GPUs, or CPUs, hold",
            rich_help_panel=_SCALE,
        ),
    ] = None,
    ray_gpus_per_worker: Annotated[
        float | None,
        typer.Option(
            help="GPUs each Ray worker takes; 0: CPU workers of --threads cores (default 1).",
            min=0,
            show_default="1 where the cluster has GPUs, else 0",
            rich_help_panel=_SCALE,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only print errors.")] = False,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON summary on stdout.")
    ] = False,
) -> None:
    """Harmonize one composite (COMPOSITE --mask MASK -o OUT), a cut-out pasted on a
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
    patterns = {"composite_pattern": composite_pattern, "mask_pattern": mask_pattern,
                "out_pattern": out_pattern, "out_suffix": out_suffix}  # fmt: skip
    policy = _existing_policy(skip_existing, overwrite)
    try:  # the same checks, and words, as dkt.Harmonizer and the server
        size, upsample = check_size(size), check_upsample(upsample)
        workers, batch = check_workers(workers), check_batch(batch)
    except OptionError as exc:
        fail(str(exc))
    style = _strength(strength)
    given = [composite, mask, composites, masks, out, manifest]
    pasting = _check_cutout_options(painting, cutout, at, scale, save_composite, given)
    part = _shard(shard, single=composite is not None or pasting)
    if output_root is not None and manifest is None:
        fail("--output-root goes with --manifest: it confines the outputs a manifest lists")
    notes: list[str] = []
    limit = max_pixels or None
    with contextlib.ExitStack() as scratch_dir:
        if pasting:
            scratch = Path(scratch_dir.enter_context(tempfile.TemporaryDirectory(prefix="dkt-")))
            jobs = [_pasted_job(painting, cutout, at, scale, output, save_composite, scratch,
                                limit)]  # fmt: skip
        else:
            try:
                jobs = select(_plan(composite, mask, output, composites, masks, out, patterns,
                                    manifest, notes, output_root), part)  # fmt: skip
            except PairingError as exc:
                fail(str(exc))
        if not quiet:
            _print_notes(notes)
            _warn_lossy(jobs)
        _check_outputs(jobs)
        if ray is not None:
            _mark_output_folders(jobs, out)
            options = ModelOptions(backend=backend, device=device, precision=precision,
                                   allow_cpu_fallback=allow_cpu_fallback, threads=threads,
                                   size=size, upsample=upsample, strength=style,
                                   max_pixels=limit)  # fmt: skip
            cluster = ClusterOptions(None if ray == "local" else ray, ray_workers,
                                     ray_gpus_per_worker)  # fmt: skip
            _run_on_ray(jobs, model, options, policy, cluster, quiet, json_output, part)
            return
        if threads is None and workers > 0:
            threads = pipeline_threads(workers)
        load_start = time.perf_counter()
        try:
            engine = open_backend(
                model,
                backend=backend,
                device=device,
                precision=precision,
                allow_cpu_fallback=allow_cpu_fallback,
                threads=threads,
            )
        except DktError as exc:
            fail(str(exc))
        load_seconds = time.perf_counter() - load_start
        try:
            harmonizer = Harmonizer(engine, size, upsample, style)
        except DktError as exc:  # a model that runs at strength 1 only
            engine.close()
            fail(str(exc))
        _say_fallback(engine)
        if batch is None:
            batch = default_batch(engine)
        pipeline = {"workers": workers, "batch": batch, "threads": threads,
                    "max_inflight_mb": max_inflight_mb or None}  # fmt: skip
        _mark_output_folders(jobs, out)
        with engine, job_progress(quiet, len(jobs), "harmonizing") as advance:
            budget = max_inflight_mb << 20 if max_inflight_mb else None
            summary = run_all(jobs, harmonizer, policy, advance,
                              workers=workers, batch=batch, threads=threads, max_pixels=limit,
                              max_inflight_bytes=budget)  # fmt: skip
            description = engine.describe()
        if pasting and save_composite is None:
            _name_pasted_inputs(summary, jobs[0], painting, cutout)
        if json_output:
            extra = {"seconds_load": round(load_seconds, 3), "strength": style,
                     "backend": description}  # fmt: skip
            print_json({**summary.to_dict(), **extra, "pipeline": pipeline})
        if not quiet or summary.failures:
            _report(summary, part)
        if summary.failures or summary.interrupted:
            raise typer.Exit(EXIT_FAILED if summary.failures else 130)
