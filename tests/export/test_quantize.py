"""int8 export: convolutions quantized, calibrated on composites, the background still exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from backends.shapes import ShapeProfile
from dkt.demo.samples import make_demo_sample
from dkt.dktnet.checkpoint import save_checkpoint
from dkt.dktnet.model import DKTNet
from dkt.errors import BackendError
from dkt.export.quantize import (
    MAX_CALIBRATION_IMAGES,
    Sample,
    calibration_shape,
    pad_sample,
    quantize_int8,
)

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install 'dkt[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (dkt[onnx])")

from backends.onnx_metadata import read_metadata  # noqa: E402
from dkt.export.onnx import export_onnx  # noqa: E402
from tests.export.test_onnx import assert_background_exact, run_both  # noqa: E402
from tests.export_fixtures import PROFILE, TINY_CONFIG  # noqa: E402


def demo_samples(count: int, box: tuple[int, int] = (64, 64)) -> list[Sample]:
    """Painting-like composites with an object as (3,h,w)/(1,h,w) float32, padded to box."""
    samples = []
    for seed in range(count):
        sample = make_demo_sample(box[0] - 8 * (seed % 2), box[1], seed=seed)
        composite = sample.composite.astype(np.float32).transpose(2, 0, 1) / 255.0
        mask = (sample.mask > 0).astype(np.float32)[None]
        samples.append(pad_sample(composite, mask, box))
    return samples


def test_pad_sample_pads_like_the_model() -> None:
    composite = np.arange(2 * 3, dtype=np.float32).reshape(1, 2, 3).repeat(3, axis=0)
    mask = np.ones((1, 2, 3), np.float32)
    padded, padded_mask = pad_sample(composite, mask, (4, 5))
    assert padded.shape == (3, 4, 5) and padded_mask.shape == (1, 4, 5)
    np.testing.assert_array_equal(padded[0, 3], [3, 4, 5, 5, 5])  # edge rows and columns
    assert padded_mask[:, :2, :3].all() and not padded_mask[:, 2:].any()
    assert not padded_mask[:, :, 3:].any()
    with pytest.raises(BackendError, match="does not fit in 2x2"):
        pad_sample(composite, mask, (2, 2))


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (ShapeProfile((1, 16, 16), (1, 512, 512), (4, 2048, 2048)), (1, 512, 512)),
        (ShapeProfile((1, 16, 16), (1, 256, 256), (2, 384, 300)), (1, 384, 300)),
        (ShapeProfile.static((2, 96, 128)), (2, 96, 128)),
    ],
)
def test_calibration_shape_is_the_working_size_within_the_profile(profile, expected) -> None:
    assert calibration_shape(profile, 512) == expected


@pytest.fixture(scope="module")
def unsaturated_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with its output layer scaled into [0, 1]: a random one saturates at 0
    or 1 almost everywhere, where an int8 error would vanish in the clamp."""
    torch.manual_seed(0)
    model = DKTNet(TINY_CONFIG)
    with torch.no_grad():
        model.decoder.out.weight.mul_(0.05)
        model.decoder.out.bias.fill_(0.5)
    path = tmp_path_factory.mktemp("ckpt") / "unsaturated.safetensors"
    save_checkpoint(path, model)
    return path


@pytest.fixture(scope="module")
def int8_onnx(tmp_path_factory: pytest.TempPathFactory, unsaturated_checkpoint: Path) -> Path:
    out = tmp_path_factory.mktemp("int8") / "q.onnx"
    export_onnx(
        unsaturated_checkpoint,
        out,
        profile=PROFILE,
        exporter="torchscript",
        precision="int8",
        calibration=demo_samples(3),
    )
    return out


def test_every_convolution_runs_on_int8_weights(int8_onnx: Path) -> None:
    nodes = onnx.load(str(int8_onnx)).graph.node
    dequantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    convs = [n for n in nodes if n.op_type == "Conv"]
    assert convs and all(c.input[0] in dequantized and c.input[1] in dequantized for c in convs)
    assert not [n for n in nodes if n.op_type == "QuantizeLinear" and "mask" in n.input]


def test_int8_export_records_its_calibration(int8_onnx: Path) -> None:
    metadata = read_metadata(int8_onnx)
    assert metadata["precision"] == "int8"
    assert metadata["calibration"] == {"composites": 3, "percentile": 99.99}


def test_int8_output_is_close_and_the_background_exact(
    unsaturated_checkpoint: Path, int8_onnx: Path
) -> None:
    composite, mask, expected, got = run_both(unsaturated_checkpoint, int8_onnx, 2, 61, 77)
    assert_background_exact(composite, mask, got)
    inside = np.broadcast_to(mask > 0, got.shape)
    difference = np.abs(got - expected)[inside]
    assert 0 < difference.mean() < 0.02, difference.mean()  # quantized, and not far off


def test_calibration_uses_at_most_the_documented_number(
    tiny_checkpoint: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import dkt.export.quantize as quantize

    seen = []
    original = quantize._Feeds.__init__

    def spy(self, samples, *rest):
        seen.append(len(samples))
        original(self, samples, *rest)

    monkeypatch.setattr(quantize._Feeds, "__init__", spy)
    export_onnx(
        tiny_checkpoint,
        tmp_path / "q.onnx",
        profile=PROFILE,
        exporter="torchscript",
        precision="int8",
        calibration=demo_samples(MAX_CALIBRATION_IMAGES + 2),
    )
    assert seen == [MAX_CALIBRATION_IMAGES]
    assert read_metadata(tmp_path / "q.onnx")["calibration"]["composites"] == MAX_CALIBRATION_IMAGES


def test_no_samples_or_samples_of_the_wrong_size_are_refused() -> None:
    with pytest.raises(BackendError, match="none were given"):
        quantize_int8(object(), [], (1, 64, 64))
    with pytest.raises(BackendError, match="must be 64x64"):
        quantize_int8(object(), demo_samples(1, (64, 72)), (1, 64, 64))


def test_a_static_export_with_a_fixed_batch_calibrates_at_its_shape(
    unsaturated_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "static.onnx"
    profile = ShapeProfile.static((2, 48, 64))
    export_onnx(unsaturated_checkpoint, out, profile=profile, exporter="torchscript",
                precision="int8", calibration=demo_samples(2, (48, 64)))  # fmt: skip
    composite, mask, expected, got = run_both(unsaturated_checkpoint, out, 2, 48, 64)
    assert_background_exact(composite, mask, got)
    assert np.abs(got - expected)[np.broadcast_to(mask > 0, got.shape)].mean() < 0.02
