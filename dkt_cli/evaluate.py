"""``dkt evaluate``: several methods on one set of composites, every metric, one table.

Human output (progress, the table, notes) goes to stderr; ``--json`` puts the full report,
per-item scores included, on stdout; ``--csv`` writes the table; ``--sheet`` a contact
sheet (composite | each method) to look at. The exit code is 1 when any composite or any
method's result for it could not be scored (the table is still printed).

The work is :func:`dkt.evaluation.run.evaluate`'s; this module parses, calls and prints,
and imports it only when the command runs, so ``--help`` answers without torch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dkt_cli.console import EXIT_FAILED, err, fail, print_json, progress_bar
from dkt_cli.evaluate_report import print_report
from dkt_cli.options import request_from

if TYPE_CHECKING:
    from dkt.evaluation.run import Callbacks

_INPUTS = "Inputs"
_METRICS = "Metrics"
_MODELS = "Models"
_OUTPUT = "Output"


def _opt(help_: str, panel: str | None = None, *names: str, **kwargs: Any) -> Any:
    """A ``typer.Option``, help and panel first, so each alias below stays short."""
    return typer.Option(*names, help=help_, rich_help_panel=panel, **kwargs)


Composites = Annotated[Path, _opt("Folder of composites (searched recursively).", _INPUTS)]
Masks = Annotated[Path, _opt("Folder of masks, same relative paths.", _INPUTS)]
Methods = Annotated[
    str,
    _opt(
        "Comma-separated: composite, reinhard, adain, adain-relu4, bundled, a model file, or a "
        "folder of results from another tool.",
        _INPUTS,
    ),
]
CompositePattern = Annotated[str, _opt("Composite file stem, e.g. '{key}_comp'.", _INPUTS)]
MaskPattern = Annotated[str, _opt("Mask file stem, e.g. '{key}_mask'.", _INPUTS)]
OutputsPattern = Annotated[str, _opt("Result file stem in a method's folder.", _INPUTS)]
Limit = Annotated[
    int | None, _opt("Evaluate only the first N composites (by key).", _INPUTS, min=1)
]
References = Annotated[Path | None, _opt("Folder of reference paintings for FID/KID.", _METRICS)]
InceptionWeights = Annotated[
    Path | None,
    _opt(
        "FID Inception weights (pt_inception-2015-12-05-6726825d.pth or .safetensors). "
        "Default: $DKT_INCEPTION_WEIGHTS, then the cache folder.",
        _METRICS,
    ),
]
DownloadInception = Annotated[
    bool,
    _opt(
        "Download the FID Inception weights into the cache if absent (checksum-verified).",
        _METRICS,
        "--download-inception",
    ),
]
VggWeights = Annotated[
    Path | None,
    _opt("Pretrained VGG-19 weights for the style/content losses of docs/method.md.", _METRICS),
]
VggDeepWeights = Annotated[
    Path | None,
    _opt(
        "A distilled VGG-19 encoder (cd16x_encoder_relu5_1.pth or ..._relu4_1.pth) whose "
        "approximate taps add what --vgg-weights lacks (relu4_1, relu5_1); the report labels "
        "them as the distilled approximation.",
        _METRICS,
    ),
]
AdainWeights = Annotated[
    Path | None,
    _opt(
        "Folder with the baselines' weights: vgg_normalised_conv3_1.pth and "
        "feature_invertor_conv3_1.pth ('adain'), cd16x_encoder_relu4_1.pth and "
        "cd16x_decoder_relu4_1.pth ('adain-relu4'). Default: $DKT_WEIGHTS_DIR, then the cache "
        "folder.",
        _MODELS,
    ),
]
Backend = Annotated[str | None, _opt("Backend for model files; default from the suffix.", _MODELS)]
Device = Annotated[str, _opt("auto, cpu, cuda, cuda:N.", _MODELS)]
Precision = Annotated[
    str | None,
    _opt(
        "fp32, fp16 or bf16 (GPU) for checkpoints. Default: fp32, or what an exported file was "
        "built for.",
        _MODELS,
    ),
]
Size = Annotated[
    int | None,
    _opt("Working resolution for models (long side); default: the model's.", _MODELS, min=0),
]
CsvPath = Annotated[Path | None, _opt("Write the table as CSV.", _OUTPUT, "--csv")]
Sheet = Annotated[
    Path | None, _opt("Write a contact sheet (PNG): composite | each method.", _OUTPUT)
]
SheetRows = Annotated[int, _opt("Composites on the contact sheet.", _OUTPUT, min=1)]
SaveOutputs = Annotated[
    Path | None,
    _opt("Also save every result as DIR/<method>/<key>.png (e.g. for a study).", _OUTPUT),
]
Quiet = Annotated[bool, _opt("Only print errors.", None, "--quiet", "-q")]
JsonOutput = Annotated[bool, _opt("Print the full report as JSON on stdout.", None, "--json")]


def evaluate(
    composites: Composites,
    masks: Masks,
    methods: Methods,
    composite_pattern: CompositePattern = "{key}",
    mask_pattern: MaskPattern = "{key}",
    outputs_pattern: OutputsPattern = "{key}",
    limit: Limit = None,
    references: References = None,
    inception_weights: InceptionWeights = None,
    download_inception: DownloadInception = False,
    vgg_weights: VggWeights = None,
    vgg_deep_weights: VggDeepWeights = None,
    adain_weights: AdainWeights = None,
    backend: Backend = None,
    device: Device = "auto",
    precision: Precision = None,
    size: Size = None,
    csv_path: CsvPath = None,
    sheet: Sheet = None,
    sheet_rows: SheetRows = 8,
    save_outputs: SaveOutputs = None,
    quiet: Quiet = False,
    json_output: JsonOutput = False,
) -> None:
    """Score methods side by side: style, content and background metrics, FID/KID, timing.

    Example: dkt evaluate --composites comps --masks masks --methods
    composite,reinhard,bundled,model.onnx,phdnet_results/ --references paintings
    """
    params = dict(locals())  # first, so it holds the parameters only
    from dkt.errors import DktError, EmptySheetError
    from dkt.evaluation.run import EvaluateRequest
    from dkt.evaluation.run import evaluate as run

    try:
        result = run(request_from(EvaluateRequest, params), _callbacks(quiet))
    except KeyboardInterrupt:
        err.print("interrupted: no table for a partial evaluation")
        raise typer.Exit(130) from None
    except EmptySheetError as exc:
        fail(str(exc), code=EXIT_FAILED)
    except DktError as exc:
        fail(str(exc))
    if json_output:
        print_json(result.to_dict())
    if not quiet or result.failed:
        print_report(result, references, quiet)
    if result.failed:
        raise typer.Exit(EXIT_FAILED)


def _callbacks(quiet: bool) -> Callbacks:
    """Warnings always; notes and progress bars unless ``--quiet``."""
    from dkt.evaluation.run import Callbacks

    @contextlib.contextmanager
    def stage(what: str, total: int | None) -> Iterator[Callable[[], None]]:
        with progress_bar(quiet) as progress:
            task = progress.add_task(what, total=total)
            yield lambda: progress.advance(task)

    def note(message: str) -> None:
        if not quiet:
            err.print(message)

    return Callbacks(warn=lambda m: err.print(f"[yellow]warning:[/] {m}"), note=note, stage=stage)
