"""``dkt train``: train a DKTNet model on photos with object masks x paintings."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dkt_cli.console import err, fail
from dktnet.config import DKTNetConfig
from dktnet.errors import DktError
from dktnet.model import MULTIPLE, DKTNet
from training.data import CompositeConfig, CompositeDataset, find_foregrounds, find_paintings
from training.loop import TrainSettings
from training.loop import train as run_training
from training.lossnet import load_loss_network

_DATA = "Data"


def train(
    paintings: Annotated[
        Path, typer.Option(help="Folder of paintings (backgrounds).", rich_help_panel=_DATA)
    ],
    photos: Annotated[
        Path, typer.Option(help="Folder of photos (foregrounds).", rich_help_panel=_DATA)
    ],
    masks: Annotated[
        Path,
        typer.Option(
            help="Folder of object masks named <photo>_objNN.png or <photo>.png.",
            rich_help_panel=_DATA,
        ),
    ],
    loss_network: Annotated[
        str,
        typer.Option(
            help="Pretrained VGG-19 weights file (AdaIN vgg_normalised.pth or torchvision vgg19), "
            "or 'random:SEED' to use a seeded random-weight stand-in (recorded in the model).",
        ),
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint to write.")] = Path(
        "runs/dktnet-lite.safetensors"
    ),
    steps: Annotated[int, typer.Option(min=1)] = 2000,
    batch_size: Annotated[int, typer.Option(min=1)] = 4,
    size: Annotated[int, typer.Option(help="Training resolution (multiple of 8).", min=8)] = 256,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 2e-4,
    workers: Annotated[int, typer.Option(help="Data-loading worker processes.", min=0)] = 0,
    checkpoint_every: Annotated[int, typer.Option(min=1)] = 200,
    log_every: Annotated[int, typer.Option(min=1)] = 20,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train a lite DKTNet with the style, content and reconstruction losses."""
    if size % MULTIPLE:
        fail(f"--size {size} must be a multiple of {MULTIPLE}")
    try:
        painting_files = find_paintings(paintings)
        foregrounds = find_foregrounds(photos, masks)
        dataset = CompositeDataset(
            painting_files, foregrounds, CompositeConfig(size=size, seed=seed), skip_bad=True
        )
        loss_net = load_loss_network(loss_network)
    except (DktError, ValueError) as exc:
        fail(str(exc))
    if not loss_net.provenance.get("pretrained"):
        err.print(
            "[yellow]warning:[/] training with a random-weight loss network (not pretrained); "
            "the checkpoint records this"
        )
    err.print(f"{len(painting_files)} paintings, {len(foregrounds)} foregrounds; writing {output}")
    settings = TrainSettings(
        steps=steps, batch_size=batch_size, lr=lr, workers=workers,
        checkpoint_every=checkpoint_every, log_every=log_every, seed=seed,
    )  # fmt: skip
    provenance = {"data": {"paintings": len(painting_files), "foregrounds": len(foregrounds)}}
    try:
        run_training(DKTNet(DKTNetConfig(working_size=size)), dataset, loss_net, settings, output,
                     provenance=provenance, log=err.print)  # fmt: skip
    except KeyboardInterrupt:
        fail(f"interrupted; the last checkpoint is {output}", code=130)
    if dataset.skipped:
        err.print(f"skipped {len(dataset.skipped)} unreadable file(s)")
    err.print(
        f"done: {output}\nharmonize with it:  "
        f"dkt harmonize COMPOSITE --mask MASK -o OUT --model {output}",
        soft_wrap=True,
    )
