"""``dkt harmonize``'s own options, one alias each, so the command's signature is one line a
parameter. The options other commands share (model, backend, device, precision, CPU
fallback) are in :mod:`dkt_cli.options`. Nothing here imports numpy or torch: ``--help``
answers without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from dkt.limits import UPSAMPLERS
from dkt_cli.options import MODEL_PANEL

_FOLDERS = "Folders"
_CUTOUT = "Cut-out on a painting"
_SCALE = "Scale"


def _opt(help_: str, panel: str | None = None, *names: str, **kwargs: Any) -> Any:
    """A ``typer.Option``, help and panel first, so each alias below stays short."""
    return typer.Option(*names, help=help_, rich_help_panel=panel, **kwargs)


Composite = Annotated[
    Path | None,
    typer.Argument(
        help="Composite image (a photo object pasted into a painting).", metavar="COMPOSITE"
    ),
]
Mask = Annotated[
    str | None,
    _opt(
        "Mask of the pasted object: white (or opaque alpha) is the object, grey is blended "
        "softly. A grey or palette mask whose largest value is 1 is a 0/1 label mask (as "
        "segmentation tools write): 1 is the object. An empty mask is an error. 'alpha': the "
        "composite's own alpha channel is the mask (a file named alpha: ./alpha).",
        None, "--mask", "-m", metavar="MASK|alpha",
    ),
]  # fmt: skip
Output = Annotated[Path | None, _opt("Output image file.", None, "--output", "-o")]
Painting = Annotated[
    Path | None, _opt("Painting to paste --object on (instead of COMPOSITE --mask).", _CUTOUT)
]
Cutout = Annotated[
    Path | None,
    _opt(
        "Cut-out of the object: an image with transparency (PNG, WebP, TIFF); its alpha is "
        "the mask.",
        _CUTOUT,
        "--object",
    ),
]
At = Annotated[
    str | None,
    _opt(
        "Where the cut-out's top-left corner goes on the painting, in pixels (may be "
        "negative). Default: centred.",
        _CUTOUT,
        metavar="X,Y",
    ),
]
Scale = Annotated[float, _opt("Resize the cut-out by this factor first.", _CUTOUT)]
SaveComposite = Annotated[
    Path | None,
    _opt(
        "Also keep the pasted composite here (.png), and its mask beside it as <name>_mask.png.",
        _CUTOUT,
    ),
]
Composites = Annotated[Path | None, _opt("Folder of composites (searched recursively).", _FOLDERS)]
Masks = Annotated[Path | None, _opt("Folder of masks, same relative paths.", _FOLDERS)]
Out = Annotated[Path | None, _opt("Output folder; the sub-folder tree is kept.", _FOLDERS)]
CompositePattern = Annotated[str, _opt("Composite file stem, e.g. '{key}_comp'.", _FOLDERS)]
MaskPattern = Annotated[
    str, _opt("Mask file stem for a composite's {key}, e.g. '{key}_mask'.", _FOLDERS)
]
OutPattern = Annotated[str, _opt("Output file stem.", _FOLDERS)]
OutSuffix = Annotated[
    str,
    _opt(
        "Output format in folder mode: .png, .webp, .tif and .bmp keep the background "
        "byte-identical; .jpg does not.",
        _FOLDERS,
    ),
]
SkipExisting = Annotated[bool, _opt("Leave outputs that exist alone.", None, "--skip-existing")]
Overwrite = Annotated[bool, _opt("Replace outputs that exist.", None, "--overwrite")]
Size = Annotated[
    int | None,
    _opt(
        "Working resolution (long side), at least 8; 0 = the image's own. Default: the model's.",
        MODEL_PANEL,
    ),
]
Upsample = Annotated[
    str,
    _opt(
        f"How the result reaches full resolution: {UPSAMPLERS[0]} (a local colour transform, "
        f"keeps fine detail) or {UPSAMPLERS[1]} (the upsampled change).",
        MODEL_PANEL,
    ),
]
Strength = Annotated[
    str,
    _opt(
        "Style strength from 0 (the composite as pasted, byte for byte) to 1 (full "
        "harmonization); in between, the object moves part of the way. ONNX exports and "
        "engines made before this option existed run at 1 only.",
        MODEL_PANEL,
        metavar="S",
    ),
]
Manifest = Annotated[
    Path | None,
    _opt(
        "CSV (header composite,mask,output) or .jsonl listing the jobs; relative paths are "
        "relative to the manifest.",
        _SCALE,
    ),
]
OutputRoot = Annotated[
    Path | None,
    _opt(
        "With --manifest: the folder every output must lie in; a manifest naming an output "
        "elsewhere (../x.png, an absolute path) is refused.",
        _SCALE,
        show_default="the manifest's folder",
    ),
]
ShardOption = Annotated[
    str | None,
    _opt(
        "Do only shard I of N (1-based, e.g. 2/8), chosen by a hash of each item's name: N "
        "processes with I = 1..N do everything once.",
        _SCALE,
        metavar="I/N",
    ),
]
Workers = Annotated[
    int,
    _opt(
        "Reader and writer threads that overlap decoding and encoding with the model; 0 = "
        "one image at a time, no pipeline.",
        _SCALE,
    ),
]
Batch = Annotated[
    int | None,
    _opt(
        "Images of the same working size run through the model together (on the CPU "
        "batching is no faster and multiplies the model's memory).",
        _SCALE,
        show_default="4 on a GPU, 1 on the CPU",
    ),
]
Threads = Annotated[
    int | None,
    _opt(
        "CPU threads for the model. With the pipeline the default leaves one core per worker "
        "to the readers and writers; with --workers 0 it is the runtime's own.",
        _SCALE,
        min=1,
        show_default="cores - workers, at least 1",
    ),
]
MaxInflightMb = Annotated[
    int,
    _opt(
        "Memory (MB) for the images in flight in the pipeline: decoded, waiting for the "
        "model, waiting to be written. Images wait for room; one bigger than this still "
        "runs, alone. 0 = no limit but their count.",
        _SCALE,
        "--max-inflight-mb",
        min=0,
    ),
]
MaxPixels = Annotated[
    int,
    _opt(
        "Refuse images with more pixels (decompression-bomb guard); 0 = no limit.",
        _SCALE,
        min=0,
    ),
]
Ray = Annotated[
    str | None,
    _opt(
        "Run on Ray (needs the ray extra of dkt): --ray alone (or 'local') starts a Ray instance "
        "on this machine for the run; 'auto' joins the running cluster (ray start), "
        "ray://HOST:PORT a remote one. Every worker must see the input and output paths (a "
        "shared file system).",
        _SCALE,
        metavar="[local|auto|ADDRESS]",
    ),
]
RayWorkers = Annotated[
    int | None,
    _opt(
        "Ray workers (each opens the model once).",
        _SCALE,
        min=1,
        show_default="as many as the cluster's GPUs, or CPUs, hold",
    ),
]
RayGpusPerWorker = Annotated[
    float | None,
    _opt(
        "GPUs each Ray worker takes; 0: CPU workers of --threads cores (default 1).",
        _SCALE,
        min=0,
        show_default="1 where the cluster has GPUs, else 0",
    ),
]
Quiet = Annotated[bool, _opt("Only print errors.", None, "--quiet", "-q")]
JsonOutput = Annotated[bool, _opt("Print a JSON summary on stdout.", None, "--json")]
