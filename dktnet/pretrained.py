"""Where the pretrained relu3_1 VGG-19 and its feature inverter are found.

WCT's truncated normalised VGG-19 (``vgg_normalised_conv3_1.pth``) and the decoder trained to
invert its relu3_1 features (``feature_invertor_conv3_1.pth``) are the two real pretrained
networks small enough to keep beside a project. ``dkt train`` starts ``vgg19-relu3`` from
them and ``dkt evaluate`` builds its training-free ``adain`` baseline from them. They are
looked up, in order, in a folder the user names, in ``$DKT_WEIGHTS_DIR`` and in the cache
folder; a named folder that lacks them is an error, never a fall-through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dkt.dktnet.downloads import cache_dir
from dkt.dktnet.errors import PathError

__all__ = [
    "ENV_DIR",
    "INVERTER_FILE",
    "VGG_RELU3_FILE",
    "MissingPretrainedError",
    "Relu3Weights",
    "find_relu3_weights",
]

ENV_DIR = "DKT_WEIGHTS_DIR"
VGG_RELU3_FILE = "vgg_normalised_conv3_1.pth"
INVERTER_FILE = "feature_invertor_conv3_1.pth"


class MissingPretrainedError(PathError):
    """The relu3_1 VGG-19 or its inverter is not where it was looked for."""


@dataclass(frozen=True)
class Relu3Weights:
    """The two files, and where they were found (``path``, the env variable or ``cache``)."""

    vgg: Path
    inverter: Path
    source: str


def _in(folder: Path) -> Relu3Weights | None:
    vgg, inverter = folder / VGG_RELU3_FILE, folder / INVERTER_FILE
    return Relu3Weights(vgg, inverter, "") if vgg.is_file() and inverter.is_file() else None


def find_relu3_weights(
    folder: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Relu3Weights:
    """The relu3_1 VGG-19 and inverter files: ``folder``, then ``$DKT_WEIGHTS_DIR``, then cache."""
    env = os.environ if env is None else env
    named = [(folder, "path"), (env.get(ENV_DIR) or None, f"${ENV_DIR}")]
    for place, source in named:
        if place is None:
            continue
        found = _in(Path(place))
        if found is None:
            raise MissingPretrainedError(
                place, f"needs {VGG_RELU3_FILE} and {INVERTER_FILE} ({source})"
            )
        return Relu3Weights(found.vgg, found.inverter, source)
    found = _in(cache_dir(env))
    if found is None:
        raise MissingPretrainedError(
            cache_dir(env),
            f"no {VGG_RELU3_FILE} and {INVERTER_FILE} here: pass their folder, or set "
            f"${ENV_DIR} to it",
        )
    return Relu3Weights(found.vgg, found.inverter, "cache")
