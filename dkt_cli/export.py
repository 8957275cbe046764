"""``dkt export``: a checkpoint to ONNX, or to a TensorRT engine, with an optional parity check.

Shapes. An export covers a range of inputs given as the composite's NCHW shape, the way
``trtexec`` takes them: ``--min-shape 1x3x64x64 --opt-shape 1x3x512x512 --max-shape
4x3x1024x1024``. ``--dynamic`` (the default) needs ``--max-shape``; the minimum defaults to
1x3x16x16 and the opt shape to one image at the model's working size. ``--static`` fixes
everything to ``--opt-shape``.

The work is :func:`dkt.export.run.export_model`'s, imported when the command runs (it needs
torch); this module parses, calls and prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from dkt import dktnet
from dkt.export.quantize import MAX_CALIBRATION_IMAGES
from dkt.export.request import DEFAULT_OPSET, DEFAULT_WORKSPACE_MIB, EXPORTERS, ExportRequest
from dkt_cli.console import EXIT_FAILED, err, fail, print_json
from dkt_cli.options import request_from

if TYPE_CHECKING:
    from dkt.export.parity import ParityReport

_SHAPES = "Shapes"
_TRT = "TensorRT"
_VERIFY = "Verification"


def _opt(help_: str, panel: str | None = None, *names: str, **kwargs: Any) -> Any:
    """A ``typer.Option``, help and panel first, so each alias below stays short."""
    return typer.Option(*names, help=help_, rich_help_panel=panel, **kwargs)


Model = Annotated[
    Path, typer.Argument(help="Checkpoint (.safetensors). Default: the bundled model.")
]
Output = Annotated[
    Path | None, _opt("Output .onnx, .engine or .plan file.", None, "--output", "-o")
]
Format = Annotated[
    str | None,
    _opt("onnx, or trt (aliases tensorrt, engine). Default: from the output suffix.", None,
         "--format", "-f"),
]  # fmt: skip
Dynamic = Annotated[
    bool,
    _opt("Dynamic batch and size (within --min/--max-shape), or one fixed shape.", _SHAPES,
         "--dynamic/--static"),
]  # fmt: skip
MinShape = Annotated[
    str | None, _opt("Smallest input, e.g. 1x3x64x64 (default 1x3x16x16).", _SHAPES)
]
OptShape = Annotated[
    str | None, _opt("Shape to tune for, e.g. 1x3x512x512 (default: the working size).", _SHAPES)
]
MaxShape = Annotated[
    str | None, _opt("Largest input, e.g. 4x3x1024x1024 (default 4x3x2048x2048).", _SHAPES)
]
Opset = Annotated[int, _opt("ONNX opset (17 or newer).")]
Precision = Annotated[
    str, _opt("fp32 or fp16 (in the graph), or int8 (ONNX Runtime; needs --calibration).")
]
Calibration = Annotated[
    Path | None,
    _opt("Folder of <key>_comp.* / <key>_mask.* composites like the ones you will harmonize, "
         f"for --precision int8 (the first {MAX_CALIBRATION_IMAGES} are used)."),
]  # fmt: skip
Exporter = Annotated[str, _opt(f"Torch ONNX exporter: {' or '.join(EXPORTERS)}.")]
Simplify = Annotated[
    bool, _opt("Simplify the graph (onnxslim if installed, else onnxruntime).", None, "--simplify")
]
Verify = Annotated[
    bool, _opt("Compare against the eager model; exit 1 over the bound.", _VERIFY, "--verify")
]
VerifyImages = Annotated[
    Path | None,
    _opt("Folder of <key>_comp.* / <key>_mask.* pairs for --verify (default: the built-in demo "
         "sample).", _VERIFY),
]  # fmt: skip
Device = Annotated[str, _opt("GPU to build and verify a TensorRT engine on (cuda:N).", _TRT)]
Workspace = Annotated[int, _opt("TensorRT builder workspace, MiB.", _TRT, min=1)]
TimingCache = Annotated[
    Path | None, _opt("TensorRT timing cache file (default: ~/.cache/dkt/tensorrt/).", _TRT)
]
NoTimingCache = Annotated[bool, _opt("Build without a timing cache.", _TRT, "--no-timing-cache")]
KeepOnnx = Annotated[Path | None, _opt("Also keep the intermediate ONNX file here.", _TRT)]
JsonOutput = Annotated[bool, _opt("Print JSON on stdout.", None, "--json")]


def export(
    model: Model = dktnet.BUNDLED_MODEL,
    output: Output = None,
    fmt: Format = None,
    dynamic: Dynamic = True,
    min_shape: MinShape = None,
    opt_shape: OptShape = None,
    max_shape: MaxShape = None,
    opset: Opset = DEFAULT_OPSET,
    precision: Precision = "fp32",
    calibration: Calibration = None,
    exporter: Exporter = EXPORTERS[0],
    simplify: Simplify = False,
    verify: Verify = False,
    verify_images: VerifyImages = None,
    device: Device = "cuda",
    workspace: Workspace = DEFAULT_WORKSPACE_MIB,
    timing_cache: TimingCache = None,
    no_timing_cache: NoTimingCache = False,
    keep_onnx: KeepOnnx = None,
    json_output: JsonOutput = False,
) -> None:
    """Export a checkpoint to ONNX or a TensorRT engine (dkt harmonize --model runs either).

    Inputs are named composite [B,3,H,W] and mask [B,1,H,W], the output harmonized
    [B,3,H,W]; batch, height and width are dynamic within --min/--max-shape.
    """
    request = request_from(ExportRequest, locals(), format="fmt")
    from dkt.errors import DktError
    from dkt.export.run import export_model

    try:
        report = export_model(request, on_written=lambda summary: err.print(escape(summary)))
    except DktError as exc:
        fail(str(exc))
    if json_output:
        print_json(report.record)
    if report.parity is not None:
        _print_parity(report.parity)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


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


def _print_parity(parity: ParityReport) -> None:
    """The table of cases, the verdict against the bound, and the precision's note."""
    from dkt.export.parity import NOTES

    err.print(_parity_table(parity))
    verdict = "[green]passed[/]" if parity.passed else "[bold red]FAILED[/]"
    err.print(
        f"parity {verdict}: max abs {parity.max_abs:.2e} (bound {parity.bound:.0e}), "
        f"mean abs {parity.mean_abs:.2e}, min PSNR {parity.min_psnr:.1f} dB"
    )
    if parity.precision in NOTES:
        err.print(f"[dim]{escape(NOTES[parity.precision])}[/]")
