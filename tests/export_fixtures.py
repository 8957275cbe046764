"""Fixtures for the export and backend tests: a tiny checkpoint and ONNX files made from it.

The dynamo exporter takes 15 to 25 s on a loaded two-core machine, so each exported file is
made once per session and shared; the TorchScript exporter (about a second) makes the
variants.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from backends.shapes import ShapeProfile
from dkt.dktnet.checkpoint import save_checkpoint
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet

TINY_CONFIG = DKTNetConfig(
    lite_channels=(4, 8, 8, 16), kernel_dim=4, prototypes=2, generator_hidden=8, working_size=64
)
#: Exported at 64x64 (a multiple of 8), dynamic up to 2x3x128x128.
PROFILE = ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 128))
#: Exported at 61x77 (not a multiple of 8).
ODD_PROFILE = ShapeProfile((1, 9, 9), (1, 61, 77), (3, 128, 128))


def make_checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    save_checkpoint(path, DKTNet(TINY_CONFIG))
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.safetensors")


def _export(tmp_path_factory, checkpoint, name, **kwargs) -> Path:
    pytest.importorskip("onnx", reason="onnx not installed (pip install 'dkt[onnx]')")
    from dkt.export.onnx import export_onnx

    out = tmp_path_factory.mktemp("onnx") / name
    export_onnx(checkpoint, out, **kwargs)
    return out


@pytest.fixture(scope="session")
def dynamo_onnx(tmp_path_factory, tiny_checkpoint) -> Path:
    pytest.importorskip("onnxscript", reason="onnxscript not installed: no dynamo exporter")
    return _export(tmp_path_factory, tiny_checkpoint, "dynamo.onnx", profile=PROFILE)


@pytest.fixture(scope="session")
def torchscript_odd_onnx(tmp_path_factory, tiny_checkpoint) -> Path:
    return _export(
        tmp_path_factory,
        tiny_checkpoint,
        "ts-odd.onnx",
        profile=ODD_PROFILE,
        exporter="torchscript",
    )


@pytest.fixture(scope="session")
def fp16_onnx(tmp_path_factory, tiny_checkpoint) -> Path:
    return _export(
        tmp_path_factory,
        tiny_checkpoint,
        "fp16.onnx",
        profile=PROFILE,
        precision="fp16",
        exporter="torchscript",
    )


@pytest.fixture(scope="session")
def old_style_onnx(tmp_path_factory, tiny_checkpoint) -> Path:
    """An export without the strength input: the two-input graph dkt wrote before strength."""
    return _export(
        tmp_path_factory,
        tiny_checkpoint,
        "old-style.onnx",
        profile=PROFILE,
        exporter="torchscript",
        strength_input=False,
    )
