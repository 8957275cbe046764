"""Where the pretrained weight files of the training-free baselines are found.

WCT's truncated normalised VGG-19 (``vgg_normalised_conv3_1.pth``) and the decoder trained to
invert its relu3_1 features (``feature_invertor_conv3_1.pth``) are the two real pretrained
networks small enough to keep beside a project. ``dkt train`` starts ``vgg19-relu3`` from
them and ``dkt evaluate`` builds its training-free ``adain`` baseline from them. The
distilled VGG-19 approximation of Collaborative Distillation ("16x") to relu4_1 and its
relu4_1 decoder (``cd16x_encoder_relu4_1.pth``, ``cd16x_decoder_relu4_1.pth``) make the
``adain-relu4`` baseline. Each set of files is looked up together, in order, in a folder the
user names, in ``$DKT_WEIGHTS_DIR`` and in the cache folder; a named folder that lacks any
of them is an error naming the missing files, never a fall-through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dkt.downloads import cache_dir
from dkt.errors import MissingPretrainedError

__all__ = [
    "CD16X_DECODER_RELU4_FILE",
    "CD16X_ENCODER_RELU4_FILE",
    "CD16X_RELU4_FILES",
    "ENV_DIR",
    "INVERTER_FILE",
    "RELU3_FILES",
    "VGG_RELU3_FILE",
    "MissingPretrainedError",
    "PretrainedFiles",
    "Relu3Weights",
    "find_pretrained",
    "find_relu3_weights",
]

ENV_DIR = "DKT_WEIGHTS_DIR"
VGG_RELU3_FILE = "vgg_normalised_conv3_1.pth"
INVERTER_FILE = "feature_invertor_conv3_1.pth"
#: The relu3_1 VGG-19 and its inverter (``vgg19-relu3``, the ``adain`` baseline).
RELU3_FILES = (VGG_RELU3_FILE, INVERTER_FILE)
CD16X_ENCODER_RELU4_FILE = "cd16x_encoder_relu4_1.pth"
CD16X_DECODER_RELU4_FILE = "cd16x_decoder_relu4_1.pth"
#: The distilled VGG-19 approximation to relu4_1 and its decoder (the ``adain-relu4`` baseline).
CD16X_RELU4_FILES = (CD16X_ENCODER_RELU4_FILE, CD16X_DECODER_RELU4_FILE)


@dataclass(frozen=True)
class PretrainedFiles:
    """The files asked for, in the order asked, and where they were found.

    ``source`` is ``path`` (the folder passed in), the env variable or ``cache``.
    """

    paths: tuple[Path, ...]
    source: str


@dataclass(frozen=True)
class Relu3Weights:
    """The two files, and where they were found (``path``, the env variable or ``cache``)."""

    vgg: Path
    inverter: Path
    source: str


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _missing(folder: Path, names: Sequence[str]) -> list[str]:
    return [name for name in names if not (folder / name).is_file()]


def find_pretrained(
    names: Sequence[str],
    folder: str | Path | None = None,
    env: Mapping[str, str] | None = None,
) -> PretrainedFiles:
    """The files ``names``, all from one place: ``folder``, then ``$DKT_WEIGHTS_DIR``, then cache.

    The first place that is given (``folder``, then the variable) is the only one searched:
    a folder the user named that lacks a file is a :class:`MissingPretrainedError` naming
    that folder and the missing files, never a quiet fall-through to the cache.
    """
    if not names:
        raise ValueError("find_pretrained needs at least one file name")
    env = os.environ if env is None else env
    named = [(folder, "path"), (env.get(ENV_DIR) or None, f"${ENV_DIR}")]
    for place, source in named:
        if place is None:
            continue
        missing = _missing(Path(place), names)
        if missing:
            raise MissingPretrainedError(place, f"needs {_and(missing)} ({source})")
        return PretrainedFiles(tuple(Path(place) / name for name in names), source)
    cache = cache_dir(env)
    missing = _missing(cache, names)
    if missing:
        raise MissingPretrainedError(
            cache,
            f"no {_and(missing)} here: pass their folder, or set ${ENV_DIR} to it",
        )
    return PretrainedFiles(tuple(cache / name for name in names), "cache")


def find_relu3_weights(
    folder: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Relu3Weights:
    """The relu3_1 VGG-19 and inverter files: ``folder``, then ``$DKT_WEIGHTS_DIR``, then cache."""
    found = find_pretrained(RELU3_FILES, folder, env)
    vgg, inverter = found.paths
    return Relu3Weights(vgg, inverter, found.source)
