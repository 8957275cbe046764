"""``dkt train``: train DKTNet from a config preset or file, on one or many GPUs or the CPU.

Everything about a run is in its config (``--config`` plus ``--set key=value`` overrides);
the data and run-length options below are shortcuts for the matching ``--set`` keys. Under
``torchrun`` every process runs this same command; rank 0 alone prints and writes.

The work is :func:`training.run.train`'s; this module parses, calls and prints, and imports
it only when the command runs, so ``--help`` answers without torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dkt_cli.console import EXIT_FAILED, fail, plain_line, say
from dkt_cli.options import request_from

if TYPE_CHECKING:
    from training.run import Callbacks

_DATA = "Data (shortcuts for --set data.*)"
_RUN = "Run (shortcuts for --set run.* / data.*)"
#: The exit code of a run stopped with Ctrl-C (its checkpoint written).
_EXIT_INTERRUPTED = 130


def _opt(help_: str, panel: str | None = None, *names: str, **kwargs: Any) -> Any:
    """A ``typer.Option``, help and panel first, so each alias below stays short."""
    return typer.Option(*names, help=help_, rich_help_panel=panel, **kwargs)


Config = Annotated[
    str,
    _opt("Preset name (dktnet-lite, dktnet-relu3, dktnet-vgg19) or YAML file.", None,
         "--config", "-c"),
]  # fmt: skip
Sets = Annotated[
    list[str] | None,
    _opt("Override a config key: section.key=value (YAML value). Repeatable.", None, "--set"),
]
PrintConfig = Annotated[
    bool, _opt("Print the resolved config as YAML and exit.", None, "--print-config")
]
Paintings = Annotated[Path | None, _opt("Folder of paintings.", _DATA)]
PaintingsCsv = Annotated[Path | None, _opt("CSV list of paintings (WikiArt split style).", _DATA)]
Photos = Annotated[Path | None, _opt("Folder of photos.", _DATA)]
Masks = Annotated[Path | None, _opt("Folder of instance masks <photo>_objNN.png.", _DATA)]
Coco = Annotated[Path | None, _opt("COCO instances JSON.", _DATA)]
Yolo = Annotated[Path | None, _opt("Folder of YOLO segmentation labels.", _DATA)]
SkipBad = Annotated[
    bool | None,
    _opt("Skip unreadable images (counted at the end) instead of stopping at the first.", _DATA,
         "--skip-bad/--no-skip-bad"),
]  # fmt: skip
LossNetwork = Annotated[
    str | None,
    _opt(
        "Pretrained VGG-19 weights (AdaIN vgg_normalised.pth, torchvision vgg19, or a file "
        "truncated after conv3_1 such as vgg_normalised_conv3_1.pth: then the loss uses "
        "relu1_1..relu3_1 only), or 'random:SEED' for the seeded random-weight stand-in "
        "(recorded in the model). Default: $DKT_VGG19_WEIGHTS, then the cache folder."
    ),
]
DeepLossNetwork = Annotated[
    str | None,
    _opt(
        "A distilled VGG-19 encoder (cd16x_encoder_relu4_1.pth or ..._relu5_1.pth) whose "
        "approximate relu4_1 (, relu5_1) taps extend the loss network past what "
        "--loss-network reaches; recorded per tap as distilled."
    ),
]
DecoderInit = Annotated[
    str | None,
    _opt(
        "The pretrained inverter the decoder starts from: vgg19-relu3 takes "
        "feature_invertor_conv3_1.pth, cd16x-relu4 cd16x_decoder_relu4_1.pth."
    ),
]
EncoderInit = Annotated[
    str | None,
    _opt(
        "cd16x-relu4 only: the distilled encoder file (cd16x_encoder_relu4_1.pth) its frozen "
        "encoder is loaded from."
    ),
]
DownloadWeights = Annotated[
    bool, _opt("Download torchvision's VGG-19 (sha256-checked) if none is found.")
]
RunDir = Annotated[Path | None, _opt("Run directory (default runs/<config>-<time>).")]
Resume = Annotated[
    Path | None,
    _opt(
        "Continue the run in this directory from its last checkpoint (with --steps N, a longer "
        "or shorter run: the learning-rate schedule follows the new length)."
    ),
]
Init = Annotated[
    Path | None, _opt("Start from this model's weights (fine-tuning; same model config).")
]
Device = Annotated[str, _opt("auto, cpu, cuda or cuda:N.")]
Steps = Annotated[
    int | None,
    _opt("Optimiser steps to train for (run.steps); with --resume, the new total.", _RUN, min=1),
]
BatchSize = Annotated[
    int | None,
    _opt(
        "Composites per step in each process (data.batch_size); under torchrun each GPU takes "
        "this many.",
        _RUN,
        min=1,
    ),
]
Size = Annotated[int | None, _opt("Training resolution (multiple of 8).", _RUN, min=32)]
Workers = Annotated[
    int | None,
    _opt(
        "DataLoader processes that make composites (data.workers); 0 makes them in the "
        "training process.",
        _RUN,
        min=0,
    ),
]
Seed = Annotated[
    int | None,
    _opt(
        "Seed of the weights' initialisation and of every random draw (run.seed): the same "
        "seed and data give the same run.",
        _RUN,
    ),
]


def train(
    config: Config = "dktnet-lite",
    sets: Sets = None,
    print_config: PrintConfig = False,
    paintings: Paintings = None,
    paintings_csv: PaintingsCsv = None,
    photos: Photos = None,
    masks: Masks = None,
    coco: Coco = None,
    yolo: Yolo = None,
    skip_bad: SkipBad = None,
    loss_network: LossNetwork = None,
    deep_loss_network: DeepLossNetwork = None,
    decoder_init: DecoderInit = None,
    encoder_init: EncoderInit = None,
    download_weights: DownloadWeights = False,
    run_dir: RunDir = None,
    resume: Resume = None,
    init: Init = None,
    device: Device = "auto",
    steps: Steps = None,
    batch_size: BatchSize = None,
    size: Size = None,
    workers: Workers = None,
    seed: Seed = None,
) -> None:
    """Train DKTNet: style, content, adversarial, consistency and reconstruction losses."""
    params = dict(locals())  # first, so it holds the parameters only
    from dkt.errors import DktError, TrainingDivergedError
    from training.run import TrainRequest, resolve_config
    from training.run import train as run

    request = request_from(TrainRequest, params)
    try:
        if print_config:
            print(resolve_config(request).to_yaml(), end="")
            return
        result = run(request, _callbacks())
    except TrainingDivergedError as exc:  # a run that failed, not a usage error
        fail(str(exc), code=EXIT_FAILED)
    except DktError as exc:
        fail(str(exc))
    if result.interrupted:
        fail(
            f"interrupted at step {result.steps}; checkpoint written. "
            f"Continue with: dkt train --resume {result.run_dir}",
            code=_EXIT_INTERRUPTED,
        )
    if result.is_main:
        plain_line(f"done: {result.model} ({result.steps} steps)")
        plain_line(
            f"harmonize with it:  dkt harmonize COMPOSITE --mask MASK -o OUT --model {result.model}"
        )


def _callbacks() -> Callbacks:
    """Notes as plain lines (a log reader greps for them), warnings as ``warning:`` lines."""
    from training.run import Callbacks

    return Callbacks(note=plain_line, warn=lambda message: say("warning", message))


__all__ = ["train"]
