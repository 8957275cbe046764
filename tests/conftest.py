"""Shared fixtures.

Tests that need real images read ``../shared/data`` in place (nothing from it is ever
copied into the project) and skip, with the reason printed by ``-ra``, where it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.evaluation.synthetic import smooth_object, square_mask, striped_painting
from tests.export_fixtures import (  # noqa: F401 - fixtures for every test folder
    dynamo_onnx,
    fp16_onnx,
    old_style_onnx,
    tiny_checkpoint,
    torchscript_odd_onnx,
)

_DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_DATA = Path(os.environ.get("DKT_SHARED_DATA", _DEFAULT))
SHARED_WEIGHTS = Path(os.environ.get("DKT_SHARED_WEIGHTS", _DEFAULT.parent / "weights"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The project's real image collection; skips the test where it is absent."""
    if not (SHARED_DATA / "MANIFEST.md").is_file():
        pytest.skip(f"real images not found at {SHARED_DATA} (set DKT_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    """The real pretrained relu3_1 VGG-19 and its inverter; skips the test where absent."""
    from dkt.dktnet.pretrained import INVERTER_FILE, VGG_RELU3_FILE

    if not all((SHARED_WEIGHTS / name).is_file() for name in (VGG_RELU3_FILE, INVERTER_FILE)):
        pytest.skip(f"pretrained relu3_1 weights not found at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


@pytest.fixture(scope="session")
def shared_cd16x_weights() -> Path:
    """The real distilled VGG-19 approximation (cd16x) to relu4_1 and relu5_1, the relu4_1
    decoder; skips the test where absent."""
    from dkt.dktnet.pretrained import CD16X_RELU4_FILES

    names = (*CD16X_RELU4_FILES, "cd16x_encoder_relu5_1.pth")
    missing = [name for name in names if not (SHARED_WEIGHTS / name).is_file()]
    if missing:
        pytest.skip(f"distilled cd16x weights {', '.join(missing)} not found at {SHARED_WEIGHTS}")
    return SHARED_WEIGHTS


# --------------------------------------------------------------------------- tiny model

#: A network small enough to build, save, load and run in milliseconds on a busy CPU.
TINY_CONFIG: dict[str, object] = {
    "lite_channels": (4, 8, 8, 16),
    "kernel_dim": 4,
    "prototypes": 2,
    "generator_hidden": 8,
    "working_size": 64,
}
TINY_PROVENANCE: dict[str, object] = {
    "trainer": "tests/conftest.py",
    "note": "random tiny test model",
    "steps": 0,
}


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Every test runs torch on one thread: the suite's tensors are tiny, and on a small
    shared CPU two threads contending make them up to 100x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def one_thread():
    """One intra-op torch thread: on a small shared CPU, contention makes tiny ops crawl."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_provenance() -> dict[str, object]:
    """The provenance recorded in :func:`tiny_model`'s file."""
    return dict(TINY_PROVENANCE)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised tiny DKTNet checkpoint (working size 64) with provenance."""
    import torch

    from dkt.dktnet.checkpoint import save_checkpoint
    from dkt.dktnet.config import DKTNetConfig
    from dkt.dktnet.model import DKTNet

    torch.manual_seed(0)
    model = DKTNet(DKTNetConfig(**TINY_CONFIG)).eval()
    path = tmp_path_factory.mktemp("models") / "tiny.safetensors"
    save_checkpoint(path, model, provenance=TINY_PROVENANCE)
    return path


# --------------------------------------------------------------------------- images


def synthetic_pair(height: int = 64, width: int = 80, seed: int = 0):
    """A painting-like composite (uint8 HxWx3, values 40..200) and an ellipse mask (0/255).

    The painting is smooth colour bands plus noise; the object is a flat, saturated blob
    that clearly does not belong, centred off-middle and well inside the frame.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            120 + 60 * np.sin(xx / 7.0 + seed),
            120 + 60 * np.cos(yy / 9.0),
            120 + 40 * np.sin((xx + yy) / 11.0),
        ],
        axis=-1,
    )
    painting = np.clip(base + rng.normal(0, 10, base.shape), 40, 200).astype(np.uint8)
    cy, cx = height * 0.55, width * 0.4
    ry, rx = height * 0.22, width * 0.2
    inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1.0
    composite = painting.copy()
    composite[inside] = (60, 190, 70)
    mask = np.where(inside, 255, 0).astype(np.uint8)
    return composite, mask


@pytest.fixture
def make_pair():
    """:func:`synthetic_pair` as a fixture: ``make_pair(height, width, seed)``."""
    return synthetic_pair


@pytest.fixture
def write_pair():
    """Write a synthetic composite and its mask as PNG; returns the (composite, mask) arrays."""
    from dkt.imaging.imageio import write_image

    def _write(composite_path: Path, mask_path: Path, *, height=64, width=80, seed=0):
        composite, mask = synthetic_pair(height, width, seed)
        write_image(composite_path, composite)
        write_image(mask_path, mask)
        return composite, mask

    return _write


# ``dkt train`` / ``run_training`` at the smallest size that still runs every part of the
# objective (the discriminator needs 32 px); tests add their own run.* keys.
TINY_TRAIN_SETS = [
    "model.lite_channels=[4, 8, 8, 16]",
    "model.kernel_dim=4",
    "model.prototypes=3",
    "model.generator_hidden=16",
    "adversarial.channels=8",
    "adversarial.warmup_steps=1",
    "adversarial.ramp_steps=0",
    "data.size=32",
    "data.batch_size=2",
    "data.workers=0",
    "data.filter_ratio=null",
    "run.tensorboard=false",
    "loss.network=random:0",
]


@pytest.fixture
def train_data(tmp_path: Path) -> Path:
    """6 paintings (48x48) and 3 photos, each with one ``_obj01`` instance mask."""
    from dkt.imaging.imageio import write_image

    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    yy, xx = np.mgrid[0:48, 0:48]
    for i in range(6):
        painting = rng.integers(0, 256, (1, 1, 3)) * 0.6 + rng.integers(0, 100, (48, 48, 3))
        write_image(root / "paintings" / f"p{i}.png", painting.clip(0, 255).astype(np.uint8))
    for i in range(3):
        write_image(root / "photos" / f"ph{i}.jpg", rng.integers(0, 256, (48, 48, 3), np.uint8))
        blob = ((yy - 24) ** 2 + (xx - 20 - 2 * i) ** 2 < (10 + i) ** 2).astype(np.uint8) * 255
        write_image(root / "masks" / f"ph{i}_obj01.png", blob)
    return root


@pytest.fixture
def composite_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(composite, mask, painting): a smooth orange square pasted into a striped painting."""
    painting = striped_painting()
    mask = square_mask()
    comp = np.where(mask[..., None] > 0, smooth_object(), painting).astype(np.uint8)
    return comp, mask, painting
