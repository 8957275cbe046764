"""``dkt export``: a checkpoint to ONNX, or to a TensorRT engine, with an optional parity check.

Shapes. An export covers a range of inputs given as the composite's NCHW shape, the way
``trtexec`` takes them: ``--min-shape 1x3x64x64 --opt-shape 1x3x512x512 --max-shape
4x3x1024x1024``. ``--dynamic`` (the default) needs ``--max-shape``; the minimum defaults to
1x3x16x16 and the opt shape to one image at the model's working size. ``--static`` fixes
everything to ``--opt-shape``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from backends.onnx_metadata import ONNX_PRECISIONS
from backends.shapes import build_profile
from dkt import dktnet
from dkt.dktnet.checkpoint import read_checkpoint_info
from dkt.errors import DktError
from dkt.export.calibration import calibration_samples
from dkt.export.onnx import DEFAULT_OPSET, EXPORTERS, export_onnx
from dkt.export.parity import NOTES, ParityReport, folder_images, verify_export
from dkt.export.quantize import MAX_CALIBRATION_IMAGES
from dkt_cli.console import EXIT_FAILED, err, fail, print_json

FORMATS = {"onnx": "onnx", "trt": "trt", "tensorrt": "trt", "engine": "trt"}
SUFFIXES = {"onnx": (".onnx",), "trt": (".engine", ".plan")}
_SHAPES = "Shapes"
_TRT = "TensorRT"
_VERIFY = "Verification"


def resolve_format(fmt: str | None, output: Path) -> str:
    """The canonical format (onnx or trt) from --format or, without it, the output suffix."""
    suffix = output.suffix.lower()
    if fmt is None:
        for name, suffixes in SUFFIXES.items():
            if suffix in suffixes:
                return name
        fail(f"{output}: cannot tell the format from '{suffix or '(no suffix)'}'; pass --format")
    canonical = FORMATS.get(fmt.lower())
    if canonical is None:
        fail(f"unknown format '{fmt}' (use onnx, or trt / tensorrt / engine)")
    if suffix not in SUFFIXES[canonical]:
        fail(
            f"{output}: a {canonical} export should end in {' or '.join(SUFFIXES[canonical])} "
            "(the suffix picks the backend when the file is used)"
        )
    return canonical


def _device_index(device: str) -> int:
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        fail(f"TensorRT builds on a GPU: --device must be cuda or cuda:N, not '{device}'")
    return int(index or 0)


def _parity_table(report: ParityReport) -> Table:
    table = Table(title=f"parity vs eager fp32 ({report.precision})", title_justify="left")
    for column in ("case", "shape", "max abs", "mean abs", "PSNR dB", "background"):
        table.add_column(column, justify="left" if column in ("case", "shape") else "right")
    for case in report.cases:
        table.add_row(
            case.name,
            "x".join(str(d) for d in case.shape),
            f"{case.max_abs:.2e}",
            f"{case.mean_abs:.2e}",
            "inf" if case.psnr == float("inf") else f"{case.psnr:.1f}",
            "exact" if case.background_exact else "[red]changed[/]",
        )
    return table


def export(
    model: Annotated[
        Path, typer.Argument(help="Checkpoint (.safetensors). Default: the bundled model.")
    ] = dktnet.BUNDLED_MODEL,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Output .onnx, .engine or .plan file.")
    ] = None,
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            "-f",
            help="onnx, or trt (aliases tensorrt, engine). Default: from the output suffix.",
        ),
    ] = None,
    dynamic: Annotated[
        bool,
        typer.Option(
            "--dynamic/--static",
            help="Dynamic batch and size (within --min/--max-shape), or one fixed shape.",
            rich_help_panel=_SHAPES,
        ),
    ] = True,
    min_shape: Annotated[
        str | None,
        typer.Option(
            help="Smallest input, e.g. 1x3x64x64 (default 1x3x16x16).", rich_help_panel=_SHAPES
        ),
    ] = None,
    opt_shape: Annotated[
        str | None,
        typer.Option(
            help="Shape to tune for, e.g. 1x3x512x512 (default: the working size).",
            rich_help_panel=_SHAPES,
        ),
    ] = None,
    max_shape: Annotated[
        str | None,
        typer.Option(
            help="Largest input, e.g. 4x3x1024x1024 (default 4x3x2048x2048).",
            rich_help_panel=_SHAPES,
        ),
    ] = None,
    opset: Annotated[int, typer.Option(help="ONNX opset (17 or newer).")] = DEFAULT_OPSET,
    precision: Annotated[
        str,
        typer.Option(
            help="fp32 or fp16 (in the graph), or int8 (ONNX Runtime; needs --calibration)."
        ),
    ] = "fp32",
    calibration: Annotated[
        Path | None,
        typer.Option(
            help="Folder of <key>_comp.* / <key>_mask.* composites like the ones you will "
            f"harmonize, for --precision int8 (the first {MAX_CALIBRATION_IMAGES} are used).",
        ),
    ] = None,
    exporter: Annotated[
        str, typer.Option(help=f"Torch ONNX exporter: {' or '.join(EXPORTERS)}.")
    ] = "dynamo",
    simplify: Annotated[
        bool,
        typer.Option(
            "--simplify", help="Simplify the graph (onnxslim if installed, else onnxruntime)."
        ),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Compare against the eager model; exit 1 over the bound.",
            rich_help_panel=_VERIFY,
        ),
    ] = False,
    verify_images: Annotated[
        Path | None,
        typer.Option(
            help="Folder of <key>_comp.* / <key>_mask.* pairs for --verify "
            "(default: the built-in demo sample).",
            rich_help_panel=_VERIFY,
        ),
    ] = None,
    device: Annotated[
        str,
        typer.Option(
            help="GPU to build and verify a TensorRT engine on (cuda:N).", rich_help_panel=_TRT
        ),
    ] = "cuda",
    workspace: Annotated[
        int, typer.Option(help="TensorRT builder workspace, MiB.", min=1, rich_help_panel=_TRT)
    ] = 4096,
    timing_cache: Annotated[
        Path | None,
        typer.Option(
            help="TensorRT timing cache file (default: ~/.cache/dkt/tensorrt/).",
            rich_help_panel=_TRT,
        ),
    ] = None,
    no_timing_cache: Annotated[
        bool,
        typer.Option(
            "--no-timing-cache", help="Build without a timing cache.", rich_help_panel=_TRT
        ),
    ] = False,
    keep_onnx: Annotated[
        Path | None,
        typer.Option(help="Also keep the intermediate ONNX file here.", rich_help_panel=_TRT),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Export a checkpoint to ONNX or a TensorRT engine (dkt harmonize --model runs either).

    Inputs are named composite [B,3,H,W] and mask [B,1,H,W], the output harmonized
    [B,3,H,W]; batch, height and width are dynamic within --min/--max-shape.
    """
    if output is None:
        fail("give the output file: -o model.onnx or -o model.engine")
    canonical = resolve_format(fmt, output)
    if precision not in ONNX_PRECISIONS:
        fail(f"unknown precision '{precision}' (use {', '.join(ONNX_PRECISIONS)})")
    if precision == "int8" and canonical != "onnx":
        fail("int8 is an ONNX Runtime export (--format onnx); TensorRT builds fp32 or fp16")
    if precision == "int8" and calibration is None:
        fail("--precision int8 needs --calibration DIR: composites and masks to calibrate on")
    if calibration is not None and precision != "int8":
        fail("--calibration is for --precision int8")
    if verify_images is not None and not verify_images.is_dir():
        fail(f"{verify_images}: not a folder")
    if canonical == "onnx" and (keep_onnx or timing_cache or no_timing_cache):
        fail("--keep-onnx and the timing-cache options are for --format trt")
    try:
        info = read_checkpoint_info(model)
        profile = build_profile(
            dynamic=dynamic,
            working_size=info.config.working_size,
            min_shape=min_shape,
            opt_shape=opt_shape,
            max_shape=max_shape,
        )
        images = folder_images(verify_images) if verify_images is not None else None
        if images == []:
            fail(f"{verify_images}: no <key>_comp.* / <key>_mask.* pairs found")
        samples = None
        if calibration is not None:
            samples = calibration_samples(calibration, info.config.working_size, profile)
        record: dict[str, object] = {"format": canonical, "profile": profile.to_dict()}
        if canonical == "onnx":
            result = export_onnx(
                model,
                output,
                profile=profile,
                precision=precision,
                opset=opset,
                exporter=exporter,
                simplify=simplify,
                calibration=samples,
            )
            record.update(
                output=str(result.path),
                seconds=round(result.seconds, 2),
                nodes=result.nodes,
                metadata=result.metadata,
            )
            verify_device = "cpu"
            summary = f"wrote {output} ({result.nodes} nodes, {result.seconds:.1f} s)"
            for note in result.notes:
                summary += f"; {note}"
        else:
            from dkt.export.tensorrt import export_engine

            index = _device_index(device)
            cache: Path | bool = False if no_timing_cache else (timing_cache or True)
            report = export_engine(
                model,
                output,
                profile=profile,
                precision=precision,
                opset=opset,
                exporter=exporter,
                simplify=simplify,
                workspace_mib=workspace,
                timing_cache=cache,
                device_index=index,
                keep_onnx=keep_onnx,
            )
            record.update(
                output=str(report.engine),
                sidecar=str(report.sidecar),
                seconds=round(report.seconds, 2),
                metadata=report.metadata.to_dict(),
            )
            verify_device = f"cuda:{index}"
            summary = (
                f"wrote {report.engine} and {report.sidecar.name} "
                f"(TensorRT {report.metadata.tensorrt_version}, {report.metadata.gpu_name}, "
                f"{report.seconds:.1f} s)"
            )
        err.print(escape(f"{summary}; shapes {profile.describe()}"))
        parity = None
        if verify:
            parity = verify_export(
                model,
                output,
                precision=precision,
                profile=profile,
                images=images,
                device=verify_device,
                working_size=info.config.working_size,
            )
            record["verify"] = parity.to_dict()
    except DktError as exc:
        fail(str(exc))
    if json_output:
        print_json(record)
    if parity is not None:
        err.print(_parity_table(parity))
        verdict = "[green]passed[/]" if parity.passed else "[bold red]FAILED[/]"
        err.print(
            f"parity {verdict}: max abs {parity.max_abs:.2e} (bound {parity.bound:.0e}), "
            f"mean abs {parity.mean_abs:.2e}, min PSNR {parity.min_psnr:.1f} dB"
        )
        if parity.precision in NOTES:
            err.print(f"[dim]{escape(NOTES[parity.precision])}[/]")
        if not parity.passed:
            raise typer.Exit(EXIT_FAILED)
