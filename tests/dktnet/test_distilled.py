"""The distilled VGG-19 (Collaborative Distillation "16x"): encoder, aux taps, files, decoder.

Fake files of the real layout are written here (independently of the loader's tables); the
real files in ``../shared/weights`` are read in place where present.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.decoder import CD16X_INVERTER_LAYERS, InverterDecoder
from dkt.dktnet.distilled import StackedTaps
from dkt.dktnet.distilled_weights import load_distilled_decoder_state, load_distilled_encoder
from dkt.dktnet.model import DKTNet
from dkt.errors import CheckpointError
from tests.pickle_trap import assert_carries_code, write_trap

SHARED = Path(__file__).resolve().parents[3] / "shared" / "weights"
# The published files' layer names and shapes (MANIFEST.md), written out independently.
ENCODER_SHAPES = {
    "conv0": (3, 3, 1, 1), "conv11": (16, 3, 3, 3), "conv12": (16, 16, 3, 3),
    "conv21": (32, 16, 3, 3), "conv22": (32, 32, 3, 3), "conv31": (64, 32, 3, 3),
    "conv32": (64, 64, 3, 3), "conv33": (64, 64, 3, 3), "conv34": (64, 64, 3, 3),
    "conv41": (128, 64, 3, 3), "conv11_aux": (64, 16, 1, 1), "conv21_aux": (128, 32, 1, 1),
    "conv31_aux": (256, 64, 1, 1), "conv41_aux": (512, 128, 1, 1),
}  # fmt: skip
RELU5_SHAPES = {
    "conv42": (128, 128, 3, 3), "conv43": (128, 128, 3, 3), "conv44": (128, 128, 3, 3),
    "conv51": (128, 128, 3, 3), "conv51_aux": (512, 128, 1, 1),
}  # fmt: skip
DECODER_SHAPES = {
    "conv41": (64, 128, 3, 3), "conv34": (64, 64, 3, 3), "conv33": (64, 64, 3, 3),
    "conv32": (64, 64, 3, 3), "conv31": (32, 64, 3, 3), "conv22": (32, 32, 3, 3),
    "conv21": (16, 32, 3, 3), "conv12": (16, 16, 3, 3), "conv11": (3, 16, 3, 3),
}  # fmt: skip


def _write(path: Path, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> Path:
    gen = torch.Generator().manual_seed(seed)
    model = {}
    for name, shape in shapes.items():
        model[f"{name}.weight"] = torch.randn(shape, generator=gen) * 0.1
        model[f"{name}.bias"] = torch.randn(shape[0], generator=gen) * 0.01
    torch.save({"epoch": 20, "model": model}, path)
    return path


@pytest.fixture
def encoder_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "enc4.pth", ENCODER_SHAPES)


def test_taps_have_the_distilled_widths_at_strides_1_to_8(encoder_file: Path) -> None:
    encoder = load_distilled_encoder(encoder_file)
    taps = encoder(torch.rand(1, 3, 64, 48))
    assert [tuple(t.shape[1:]) for t in taps] == [
        (16, 64, 48), (32, 32, 24), (64, 16, 12), (128, 8, 6),
    ]  # fmt: skip
    assert encoder.tap_names == ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    assert not any(p.requires_grad for p in encoder.parameters())


def test_the_files_tensors_are_what_runs(encoder_file: Path) -> None:
    """conv11 of the file, by hand, is relu1_1 (after the file's own conv0)."""
    raw = torch.load(encoder_file, weights_only=True)["model"]
    x = torch.rand(1, 3, 16, 16)
    x0 = torch.nn.functional.conv2d(x, raw["conv0.weight"], raw["conv0.bias"])
    padded = torch.nn.functional.pad(x0, (1, 1, 1, 1), mode="reflect")
    expected = torch.nn.functional.conv2d(padded, raw["conv11.weight"], raw["conv11.bias"]).relu()
    got = load_distilled_encoder(encoder_file)(x)[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_aux_taps_have_vgg19_widths_and_a_relu5_file_adds_relu5_1(tmp_path: Path) -> None:
    path = _write(tmp_path / "enc5.pth", {**ENCODER_SHAPES, **RELU5_SHAPES})
    encoder = load_distilled_encoder(path, aux=True)
    taps = encoder.vgg_like(torch.rand(1, 3, 64, 64))
    assert [t.shape[1] for t in taps] == [64, 128, 256, 512, 512]
    assert encoder.tap_names[-1] == "relu5_1"
    assert all(float(t.min()) >= 0 for t in taps)  # ReLU after every aux conv
    with pytest.raises(ValueError, match="without its aux"):
        load_distilled_encoder(path).vgg_like(torch.rand(1, 3, 32, 32))


def test_bad_files_are_named_one_line_errors(tmp_path: Path, encoder_file: Path) -> None:
    short = dict(ENCODER_SHAPES)
    del short["conv41_aux"]
    with pytest.raises(CheckpointError, match=r"conv41_aux.*missing"):
        load_distilled_encoder(_write(tmp_path / "short.pth", short), aux=True)
    with pytest.raises(CheckpointError, match="relu5_1 was asked"):
        load_distilled_encoder(encoder_file, depth="relu5_1")
    with pytest.raises(CheckpointError, match="not a distilled"):
        load_distilled_encoder(_write(tmp_path / "dec.pth", DECODER_SHAPES))
    with pytest.raises(CheckpointError, match="not a distilled relu4_1 decoder"):
        load_distilled_decoder_state(encoder_file)


def test_a_pickled_trap_is_refused_not_run(tmp_path: Path) -> None:
    trap, marker = tmp_path / "trap.pth", tmp_path / "sprung"
    write_trap(trap, {"conv11.weight": torch.zeros(16, 3, 3, 3)}, marker)
    assert_carries_code(trap)
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_distilled_encoder(trap)
    assert not marker.exists()


def test_the_untrained_decoder_is_exactly_the_pretrained_one(tmp_path: Path) -> None:
    """Zero-initialised skips: the cd16x model's decoder starts as the distilled decoder."""
    state = load_distilled_decoder_state(_write(tmp_path / "dec.pth", DECODER_SHAPES))
    with_skips = InverterDecoder(layers=CD16X_INVERTER_LAYERS)
    with_skips.load_state_dict(state, strict=False)
    plain = InverterDecoder(layers=CD16X_INVERTER_LAYERS, skips=False)
    plain.load_state_dict(state, strict=True)
    deep = torch.rand(1, 128, 4, 4)
    skips = [torch.rand(1, 16, 32, 32), torch.rand(1, 32, 16, 16), torch.rand(1, 64, 8, 8)]
    masks = [torch.ones(1, 1, s, s) for s in (32, 16, 8)]
    torch.testing.assert_close(with_skips(deep, skips, masks), plain(deep, [], []))
    assert [tuple(p.weight.shape[:2]) for p in with_skips.skips] == [(16, 16), (32, 32), (64, 64)]


def test_the_cd16x_model_keeps_the_background_and_has_no_skips_when_asked() -> None:
    torch.manual_seed(0)
    model = DKTNet(DKTNetConfig(encoder="cd16x-relu4", kernel_dim=8, generator_hidden=16)).eval()
    x = torch.rand(1, 3, 40, 56)
    mask = torch.zeros(1, 1, 40, 56)
    mask[..., 8:30, 10:40] = 1.0
    with torch.no_grad():
        out = model(x, mask)
    assert torch.equal(out[mask.expand_as(out) == 0], x[mask.expand_as(x) == 0])
    assert not torch.equal(out, x)
    plain = DKTNet(DKTNetConfig(encoder="cd16x-relu4", decoder_skips=False))
    assert not any(k.startswith("decoder.skips") for k in plain.state_dict())
    assert plain.parameter_count() < 2_000_000  # a few MB on disk


def test_stacked_taps_take_only_the_deeper_ones_from_the_deep_network(encoder_file: Path) -> None:
    class Shallow(torch.nn.Module):
        tap_names = ("relu1_1", "relu2_1", "relu3_1")

        def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            return [x, x, x]

    from dkt.dktnet.distilled import DistilledTaps

    stacked = StackedTaps(Shallow(), DistilledTaps(load_distilled_encoder(encoder_file, aux=True)))
    assert stacked.tap_names == ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
    taps = stacked(torch.rand(1, 3, 32, 32))
    assert taps[0].shape[1] == 3 and taps[3].shape[1] == 512


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"no shared weights at {SHARED}")
def test_the_real_files_approximate_the_real_vgg19_at_relu1_1() -> None:
    """MANIFEST.md measured relative MSE 0.03 at relu1_1; the aux taps are that close here too."""
    from dkt.dktnet.vgg_weights import load_vgg19_encoder

    distilled = load_distilled_encoder(SHARED / "cd16x_encoder_relu4_1.pth", aux=True)
    exact = load_vgg19_encoder(SHARED / "vgg_normalised_conv3_1.pth")
    torch.manual_seed(0)
    x = torch.nn.functional.interpolate(torch.rand(1, 3, 16, 16), size=96, mode="bilinear")
    with torch.no_grad():
        approx, real = distilled.vgg_like(x)[0], exact(x)[0]
    assert float(((approx - real) ** 2).mean() / (real**2).mean()) < 0.1
