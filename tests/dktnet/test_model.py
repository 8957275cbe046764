"""Tests for dktnet.model: the inference contract of DKTNet.forward on tiny lite networks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from dkt.dktnet.model import DKTNet, blend, pad_to_multiple
from tests.tiny import tiny_config


def _model(seed: int = 1, **overrides: object) -> DKTNet:
    torch.manual_seed(seed)
    return DKTNet(tiny_config(**overrides)).eval()


def _rect_mask(h: int, w: int, top: int, left: int, bottom: int, right: int) -> torch.Tensor:
    mask = torch.zeros(1, 1, h, w)
    mask[:, :, top:bottom, left:right] = 1.0
    return mask


@pytest.fixture(scope="module")
def model() -> DKTNet:
    return _model()


# ---------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("size", [(17, 29), (9, 9), (16, 24), (31, 13), (40, 11)])
def test_any_size_returns_the_same_shape(model: DKTNet, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    h, w = size
    x = torch.rand(1, 3, h, w)
    mask = (torch.rand(1, 1, h, w) > 0.5).float()
    with torch.no_grad():
        out = model(x, mask)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("size", [(1, 1), (8, 8), (5, 40)])
def test_small_sides_return_the_same_shape(model: DKTNet, size: tuple[int, int]) -> None:
    h, w = size
    x = torch.rand(1, 3, h, w)
    with torch.no_grad():
        out = model(x, torch.ones(1, 1, h, w))
    assert out.shape == x.shape


def test_internal_padding_is_cropped_back_from_the_right_corner(model: DKTNet) -> None:
    """Odd sizes give the top-left crop of what the padded image gives (no shift)."""
    torch.manual_seed(13)
    x = torch.rand(1, 3, 17, 21)
    mask = _rect_mask(17, 21, 3, 4, 12, 15)
    padded_x = pad_to_multiple(x)
    padded_mask = pad_to_multiple(mask, mode="constant")
    valid = pad_to_multiple(torch.ones_like(mask), mode="constant")
    assert padded_x.shape[-2:] == (24, 24)
    with torch.no_grad():
        direct = model(x, mask)
        rendered = model.run_padded(padded_x, padded_mask, valid).image[..., :17, :21]
        via_padding = x * (1 - mask) + rendered.clamp(0, 1) * mask
    torch.testing.assert_close(direct, via_padding, atol=1e-6, rtol=0)


def test_padding_carries_no_weight_in_either_region(model: DKTNet) -> None:
    """An object touching the right and bottom edges: its edge pixels are counted once.

    Replicating the mask into the padding counted the edge pixels up to 7 more times in the
    foreground's statistics; the padding must belong to neither region.
    """
    x = torch.rand(1, 3, 17, 21)
    mask = _rect_mask(17, 21, 9, 13, 17, 21)  # the bottom-right corner
    seen: dict[str, torch.Tensor] = {}

    def keep(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        seen["mask"], seen["valid"] = args[1], args[2]

    handle = model.bitransform.register_forward_pre_hook(keep)
    try:
        with torch.no_grad():
            model(x, mask)
    finally:
        handle.remove()
    cell = 8 * 8  # the bi-transformation works at stride 8: one cell is 64 pixels
    fg_weight = seen["mask"].sum().item() * cell
    bg_weight = (seen["valid"] - seen["mask"]).sum().item() * cell
    assert fg_weight == pytest.approx(mask.sum().item(), rel=1e-5)
    assert bg_weight == pytest.approx((1 - mask).sum().item(), rel=1e-5)


def test_pad_to_multiple_replicates_edges() -> None:
    x = torch.arange(6.0).view(1, 1, 2, 3)
    padded = pad_to_multiple(x, 4, min_side=1)
    assert padded.shape == (1, 1, 4, 4)
    assert torch.equal(padded[..., :2, :3], x)
    assert torch.equal(padded[..., 3, :3], x[..., 1, :])
    assert torch.equal(padded[..., :2, 3], x[..., :, 2])
    assert torch.equal(pad_to_multiple(x, 1, min_side=1), x)


def test_pad_to_multiple_reaches_the_minimum_side() -> None:
    """The stride-8 map needs 2 px, so tiny inputs are padded to 16 px."""
    assert pad_to_multiple(torch.zeros(1, 1, 1, 1)).shape == (1, 1, 16, 16)
    assert pad_to_multiple(torch.zeros(1, 1, 5, 40)).shape == (1, 1, 16, 40)


# ---------------------------------------------------------------------------- the painting is kept


def test_background_is_exactly_the_composite_for_a_hard_mask(model: DKTNet) -> None:
    torch.manual_seed(2)
    x = torch.rand(1, 3, 19, 21)
    mask = _rect_mask(19, 21, 4, 5, 13, 16)
    with torch.no_grad():
        out = model(x, mask)
    bg = (mask == 0).expand_as(x)
    assert torch.equal(out[bg], x[bg])
    assert not torch.allclose(out[~bg], x[~bg], atol=1e-3)  # the object was changed


def test_background_is_exactly_the_composite_for_a_soft_mask(model: DKTNet) -> None:
    torch.manual_seed(3)
    x = torch.rand(2, 3, 17, 18)
    mask = torch.rand(2, 1, 17, 18)
    mask[mask < 0.4] = 0.0
    with torch.no_grad():
        out = model(x, mask)
    bg = (mask == 0).expand_as(x)
    assert bg.any()
    assert torch.equal(out[bg], x[bg])


def test_all_zero_mask_returns_the_composite_exactly(model: DKTNet) -> None:
    torch.manual_seed(4)
    x = torch.rand(2, 3, 13, 22)
    with torch.no_grad():
        out = model(x, torch.zeros(2, 1, 13, 22))
    assert torch.equal(out, x)


def test_boolean_mask_equals_float_mask(model: DKTNet) -> None:
    torch.manual_seed(5)
    x = torch.rand(1, 3, 16, 16)
    mask = _rect_mask(16, 16, 3, 3, 11, 12)
    with torch.no_grad():
        assert torch.equal(model(x, mask.bool()), model(x, mask))


# ---------------------------------------------------------------------------- batches, range


def test_batch_with_different_masks_equals_per_image_results(model: DKTNet) -> None:
    torch.manual_seed(6)
    x = torch.rand(3, 3, 18, 20)
    masks = torch.cat(
        [
            _rect_mask(18, 20, 2, 3, 10, 12),
            _rect_mask(18, 20, 8, 9, 17, 19),
            torch.rand(1, 1, 18, 20) * _rect_mask(18, 20, 4, 4, 14, 14),
        ]
    )
    with torch.no_grad():
        batched = model(x, masks)
        for i in range(3):
            single = model(x[i : i + 1], masks[i : i + 1])
            torch.testing.assert_close(batched[i : i + 1], single, atol=1e-5, rtol=0)


def test_output_is_in_unit_range(model: DKTNet) -> None:
    torch.manual_seed(7)
    x = torch.rand(2, 3, 24, 24)
    mask = torch.rand(2, 1, 24, 24)
    with torch.no_grad():
        out = model(x, mask)
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0


def test_foreground_depends_on_the_painting(model: DKTNet) -> None:
    """Harmonization reads the background's style: another painting, another object."""
    torch.manual_seed(8)
    x = torch.rand(1, 3, 24, 24)
    mask = _rect_mask(24, 24, 8, 8, 16, 16)
    other = x * mask + (1.0 - mask) * torch.rand(1, 3, 24, 24) * 0.3
    with torch.no_grad():
        a, b = model(x, mask), model(other, mask)
    fg = (mask > 0).expand_as(x)
    assert (a[fg] - b[fg]).abs().max().item() > 1e-4


def test_eval_mode_is_deterministic(model: DKTNet) -> None:
    torch.manual_seed(9)
    x = torch.rand(2, 3, 17, 17)
    mask = torch.rand(2, 1, 17, 17)
    with torch.no_grad():
        assert torch.equal(model(x, mask), model(x, mask))


def test_render_returns_stride8_features() -> None:
    model = _model()
    torch.manual_seed(10)
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        rendered = model.run_padded(x, _rect_mask(16, 24, 2, 2, 10, 10))
    assert rendered.image.shape == (1, 3, 16, 24)
    assert rendered.standard.shape == (1, 16, 2, 3)
    assert rendered.harmonized_features.shape == (1, 16, 2, 3)
    assert rendered.fg_stats.mean.shape == (1, 16, 1, 1)


# ---------------------------------------------------------------------------- training


@pytest.mark.parametrize("encoder", ["lite", "vgg19"])
def test_gradients_reach_every_trainable_parameter(encoder: str) -> None:
    model = _model(seed=1, encoder=encoder).train()
    torch.manual_seed(11)
    x = torch.rand(2, 3, 16, 16)
    mask = _rect_mask(16, 16, 4, 3, 12, 11).expand(2, 1, 16, 16)
    out = model(x, mask)
    (out * torch.rand_like(out)).sum().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    assert trainable
    missing = [n for n, p in trainable if p.grad is None or not p.grad.abs().sum().item() > 0]
    assert missing == []
    frozen = [(n, p) for n, p in model.named_parameters() if n.startswith("encoder.")]
    if encoder == "vgg19":
        assert frozen and all(not p.requires_grad and p.grad is None for _, p in frozen)
    else:
        assert frozen and all(p.requires_grad for _, p in frozen)


def test_trainable_parameters_lists_exactly_the_requires_grad_ones() -> None:
    model = _model(encoder="vgg19")
    ids = {id(p) for p in model.trainable_parameters()}
    assert ids == {id(p) for p in model.parameters() if p.requires_grad}
    assert not any(id(p) in ids for p in model.encoder.parameters())
    assert model.parameter_count() == sum(p.numel() for p in model.state_dict().values())


def test_autoencode_returns_image_shaped_output() -> None:
    model = _model()
    torch.manual_seed(12)
    x = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        out = model.autoencode(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()


def test_autoencode_accepts_sizes_forward_accepts() -> None:
    model = _model()
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        out = model.autoencode(x)
    assert out.shape == x.shape


def test_blend_keeps_the_background_whatever_the_decoder_gives() -> None:
    """NaN * 0 is NaN: the painting must still come back exactly, and finite."""
    composite = torch.rand(1, 3, 8, 8)
    mask = _rect_mask(8, 8, 2, 2, 6, 6) * 0.5  # soft inside
    generated = torch.full_like(composite, float("nan"))
    generated[..., 0, 0] = float("inf")
    out = blend(composite, generated, mask)
    outside = mask[0, 0] == 0
    assert torch.equal(out[..., outside], composite[..., outside])


def test_blend_shows_a_non_finite_object_instead_of_hiding_it() -> None:
    """Replacing NaN by the composite returned it unchanged: a NaN model passed as done."""
    composite = torch.rand(1, 3, 8, 8)
    mask = _rect_mask(8, 8, 2, 2, 6, 6)
    generated = torch.rand_like(composite)
    generated[..., 3, 3] = float("nan")
    generated[..., 4, 4] = float("inf")  # clamp alone would make this a white pixel
    out = blend(composite, generated, mask)
    assert torch.isnan(out[..., 3, 3]).all() and torch.isnan(out[..., 4, 4]).all()
    assert torch.isfinite(out[..., 2, 2]).all()


def test_fp16_model_with_a_flat_object_gives_a_finite_result() -> None:
    """A flat-coloured object in half precision (the fp16 overflow case) stays finite."""
    torch.manual_seed(5)
    model = DKTNet(tiny_config()).half().eval()
    composite = torch.rand(1, 3, 32, 32) * 0.2 + 0.8
    mask = _rect_mask(32, 32, 8, 8, 24, 24)
    composite = torch.where(mask > 0, torch.tensor(0.5), composite)  # one flat colour
    with torch.no_grad():
        out = model(composite.half(), mask.half())
    assert torch.isfinite(out).all()
    outside = mask[0, 0] == 0
    assert torch.equal(out[..., outside], composite.half()[..., outside])


_PEAK_CHILD = """
import resource, sys, torch
from dkt import dktnet
from dkt.dktnet.checkpoint import load_checkpoint
side = int(sys.argv[1])
model = load_checkpoint(dktnet.BUNDLED_MODEL)
model = (model[0] if isinstance(model, tuple) else model).eval()
x = torch.rand(1, 3, side, side)
m = torch.zeros(1, 1, side, side)
m[..., side // 4 : side // 2, side // 4 : side // 2] = 1
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with torch.inference_mode():
    model(x, m)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) * 1024, model.working_bytes(side, side))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss in kB is Linux's")
def test_the_working_memory_estimate_covers_a_real_run_of_the_bundled_model() -> None:
    """The budget check relies on it: an estimate below the real peak lets the OOM killer in."""
    run = subprocess.run(
        [sys.executable, "-c", _PEAK_CHILD, "1536"], capture_output=True, text=True, check=True
    )
    peak, estimate = (int(v) for v in run.stdout.split())
    assert peak > 0
    assert peak <= estimate, (peak, estimate)
    # Not so loose that a machine with room is refused: the README's "about 0.5 kB per
    # working pixel" (the measured peak itself varies with threads and the allocator). The
    # side is large enough that the run's peak is above loading's (at 768 px the small
    # default's whole run stays under the high-water mark torch's import left).
    assert estimate <= 600 * 1536 * 1536


def test_the_working_memory_estimate_grows_with_the_area() -> None:
    model = DKTNet(tiny_config())
    assert model.working_bytes(512, 512) == 4 * model.working_bytes(256, 256)
    assert model.working_bytes(100, 100, batch=2) == 2 * model.working_bytes(100, 100)


# ---------------------------------------------------------------------------- style strength


def _strength(value: float) -> torch.Tensor:
    return torch.tensor([value])


def _soft_case(seed: int = 21) -> tuple[torch.Tensor, torch.Tensor]:
    """A noisy painting with a greenish object of its own statistics, under a soft mask."""
    torch.manual_seed(seed)
    x = torch.rand(2, 3, 23, 30)
    green = torch.tensor([0.1, 0.8, 0.2]).view(1, 3, 1, 1)
    x[:, :, 5:18, 6:22] = 0.2 * x[:, :, 5:18, 6:22] + green
    mask = torch.zeros(2, 1, 23, 30)
    mask[:, :, 5:18, 6:22] = torch.rand(2, 1, 13, 16) * 0.6 + 0.4  # soft, 0 around it
    return x, mask


@pytest.mark.parametrize("encoder", ["lite", "vgg19-relu3"])
def test_full_strength_is_todays_output_byte_for_byte(encoder: str) -> None:
    model = _model(encoder=encoder)
    x, mask = _soft_case()
    with torch.no_grad():
        assert torch.equal(model(x, mask, _strength(1.0)), model(x, mask))


@pytest.mark.parametrize("encoder", ["lite", "vgg19-relu3"])
def test_zero_strength_gives_the_composite_and_decodes_its_own_features(encoder: str) -> None:
    model = _model(encoder=encoder)
    x, mask = _soft_case()
    hard = (mask > 0).float()
    with torch.no_grad():
        assert torch.equal(model(x, hard, _strength(0.0)), x)
        soft = model(x, mask, _strength(0.0))
        # Inside a soft mask the blend's x*(1-m) + x*m rounds within a float32 ulp.
        assert (soft - x).abs().max() < 1e-6
        # Neither the deep features nor the skips moved: the plain autoencoding of x.
        assert torch.equal(model.unblended(x, mask, _strength(0.0)), model.autoencode(x))


def test_half_strength_lies_between_the_composite_and_full_strength(model: DKTNet) -> None:
    x, mask = _soft_case()
    inside = (mask > 0).expand_as(x)
    seen: dict[float, tuple] = {}
    hook = model.decoder.register_forward_pre_hook(lambda _, args: seen.setdefault(key, args))
    try:
        with torch.no_grad():
            change = {}
            for key in (0.0, 0.5, 1.0):
                change[key] = (model(x, mask, _strength(key)) - x)[inside].abs().mean()
    finally:
        hook.remove()
    assert change[0.0] < 1e-6 and 0.2 * change[1.0] < change[0.5] < 0.8 * change[1.0], change
    # Not only the image: the deep features the decoder gets are half-way between the
    # composite's own (strength 0) and the bi-transformed ones (strength 1), and the skips'
    # masked AdaIN gets the strength too.
    deep = {key: args[0] for key, args in seen.items()}
    moved = (deep[1.0] - deep[0.0]).abs().max()
    assert moved > 0  # (little: a random tiny encoder's deep maps are small and alike)
    torch.testing.assert_close(deep[0.5], 0.5 * (deep[0.0] + deep[1.0]), atol=1e-3 * moved, rtol=0)
    assert torch.equal(seen[0.5][-1], _strength(0.5))


@pytest.mark.parametrize("strength", [0.0, 0.3, 1.0])
def test_the_background_is_the_composite_at_every_strength(model: DKTNet, strength: float) -> None:
    x, mask = _soft_case(seed=22)
    with torch.no_grad():
        out = model(x, mask, _strength(strength))
    bg = (mask == 0).expand_as(x)
    assert bg.any() and torch.equal(out[bg], x[bg])
    assert ((out >= 0) & (out <= 1)).all()
