"""``dkt demo``: the tool working on a fresh install, with no data of your own.

The project ships no images, so the demo paints its own: a procedurally brushed painting with
a photographic-looking object pasted in. It harmonizes it with the chosen model and writes
composite | mask | result side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from backends.base import LoadOptions
from dkt import dktnet
from dkt.demo.figures import side_by_side
from dkt.demo.samples import make_demo_sample
from dkt.errors import DktError
from dkt.imaging.imageio import write_image
from dkt.inference.run import open_harmonizer
from dkt_cli.console import err, fail
from dkt_cli.options import BackendName, Device, ModelFile


def colour_distance(image: np.ndarray, mask: np.ndarray) -> float:
    """Distance between the mean colours of the object and the painting, in 0..1 RGB units."""
    fg = mask > 127
    pixels = image.astype(np.float64) / 255.0
    return float(np.linalg.norm(pixels[fg].mean(axis=0) - pixels[~fg].mean(axis=0)))


def demo(
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the figure (PNG).")
    ] = Path("dkt-demo.png"),
    seed: Annotated[int, typer.Option(help="Which generated sample.")] = 0,
    model: ModelFile = dktnet.BUNDLED_MODEL,
    backend: BackendName = None,
    device: Device = "auto",
) -> None:
    """Harmonize a generated sample and write composite | mask | result side by side."""
    sample = make_demo_sample(seed=seed)
    try:
        with open_harmonizer(model, LoadOptions(device), backend=backend) as opened:
            result = opened.harmonizer.harmonize(
                sample.composite, sample.mask.astype(np.float32) / 255.0
            )
            description = opened.describe()
        figure = side_by_side(
            [sample.composite, sample.mask, result], ["composite", "mask", "harmonized"]
        )
        write_image(output, figure)
    except DktError as exc:
        fail(str(exc))
    before = colour_distance(sample.composite, sample.mask)
    after = colour_distance(result, sample.mask)
    unchanged = bool(np.array_equal(result[sample.mask == 0], sample.composite[sample.mask == 0]))
    err.print(
        f"model: {description['model']} ({description['backend']} on {description['device']})",
        markup=False,
        soft_wrap=True,  # off a terminal rich wraps at 80 columns, splitting the path
    )
    err.print(f"object-to-painting colour distance: {before:.3f} -> {after:.3f}")
    err.print(f"painting outside the object unchanged: {'yes' if unchanged else 'NO'}")
    err.print(f"wrote {output}", markup=False, soft_wrap=True)
