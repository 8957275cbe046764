"""The loss network Φ (VGG-19 to relu4_1) and where its weights come from.

A pretrained VGG-19 is the real thing (a path to AdaIN's ``vgg_normalised.pth`` or
torchvision's ``vgg19`` weights). Where none exists, a seeded random-weight VGG-19 may be
used, but only when asked for by name (``random:SEED``), and its use is written into every
checkpoint trained with it so nobody mistakes the result for a paper-faithful model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dktnet.checkpoint import file_sha256
from dktnet.encoders import VGG19Encoder
from dktnet.vgg_weights import load_vgg19_encoder, random_vgg19_encoder


@dataclass(frozen=True)
class LossNetwork:
    network: VGG19Encoder
    provenance: dict[str, object]


def load_loss_network(spec: str) -> LossNetwork:
    """``random:SEED`` for the stand-in, otherwise a path to pretrained VGG-19 weights."""
    if spec.startswith("random:"):
        try:
            seed = int(spec.split(":", 1)[1])
        except ValueError:
            raise ValueError(
                f"--loss-network {spec!r}: the random stand-in takes an integer seed, e.g. random:0"
            ) from None
        return LossNetwork(
            random_vgg19_encoder(seed).eval(),
            {
                "kind": "random-vgg19",
                "seed": seed,
                "pretrained": False,
                "note": "seeded random-weight VGG-19 stand-in; no pretrained weights were used",
            },
        )
    path = Path(spec)
    return LossNetwork(
        load_vgg19_encoder(path).eval(),
        {"kind": "vgg19", "pretrained": True, "file": path.name, "sha256": file_sha256(path)},
    )
