"""A tiny evaluation set on disk for the ``dkt evaluate`` / ``dkt study`` tests.

Three 64x64 composites (a smooth object in a striped painting), their masks, a tiny
randomly initialised DKTNet checkpoint and a folder of "another tool's" results that
lacks one of them. Small enough that a full evaluation runs in about a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dkt.dktnet.checkpoint import save_checkpoint
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet
from dkt.imaging.imageio import write_image
from tests.evaluation.synthetic import smooth_object, square_mask, striped_painting

KEYS = ("a", "b", "c")
SIZE = 64


@dataclass(frozen=True)
class EvalSet:
    root: Path
    composites: Path
    masks: Path
    model: Path
    results: Path  # holds results for "a" and "b" only


def tiny_model(path: Path) -> Path:
    torch.manual_seed(0)
    config = DKTNetConfig(
        lite_channels=(4, 8, 8, 16), kernel_dim=4, prototypes=2, generator_hidden=8,
        working_size=64,
    )  # fmt: skip
    save_checkpoint(path, DKTNet(config))
    return path


def make_eval_set(root: Path) -> EvalSet:
    comps, masks, results = root / "comps", root / "masks", root / "results"
    for i, key in enumerate(KEYS):
        painting = striped_painting(SIZE, SIZE, seed=i)
        mask = square_mask(SIZE, SIZE, top=16 + 2 * i, size=28)
        comp = np.where(mask[..., None] > 0, smooth_object(SIZE, SIZE), painting).astype(np.uint8)
        write_image(comps / f"{key}.png", comp)
        write_image(masks / f"{key}.png", (mask * 255).astype(np.uint8))
        if key != "c":
            write_image(results / f"{key}.png", comp)
    return EvalSet(root, comps, masks, tiny_model(root / "tiny.safetensors"), results)
