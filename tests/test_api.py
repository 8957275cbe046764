"""Tests for ``dkt.api``: the Python surface gives what ``dkt harmonize`` gives, in any kind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

import dkt
from dkt.imaging.imageio import read_image, write_image
from dkt_cli.app import app

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def h(tiny_model: Path):
    with dkt.Harmonizer(tiny_model, device="cpu") as harmonizer:
        yield harmonizer


@pytest.fixture
def pair(make_pair):
    composite, mask = make_pair()
    return composite, mask


def test_import_dkt_loads_neither_torch_nor_the_cli_libraries() -> None:
    code = (
        "import sys, dkt; heavy = [m for m in ('torch', 'typer', 'rich') if m in sys.modules]; "
        "print(heavy, dkt.__version__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["[]", dkt.__version__]


def test_using_the_api_never_imports_typer_or_rich(tiny_model: Path) -> None:
    code = (
        "import sys, numpy as np, dkt\n"
        f"h = dkt.Harmonizer({str(tiny_model)!r}, device='cpu')\n"
        "img = np.full((40, 48, 3), 120, np.uint8); m = np.zeros((40, 48), np.uint8)\n"
        "m[10:30, 10:30] = 255\n"
        "h(img, m)\n"
        "print([name for name in ('typer', 'rich') if name in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_arrays_in_give_what_the_cli_writes(h, tiny_model: Path, pair, tmp_path: Path) -> None:
    composite, mask = pair
    result = h(composite, mask)
    assert result.dtype == np.uint8 and result.shape == composite.shape
    write_image(tmp_path / "c.png", composite)
    write_image(tmp_path / "m.png", mask)
    cli = CliRunner().invoke(app, ["harmonize", str(tmp_path / "c.png"), "--mask",
                                   str(tmp_path / "m.png"), "-o", str(tmp_path / "o.png"),
                                   "--model", str(tiny_model), "--device", "cpu"])  # fmt: skip
    assert cli.exit_code == 0, cli.output
    assert np.array_equal(result, read_image(tmp_path / "o.png"))
    assert not np.array_equal(result, composite)  # the object did change
    assert np.array_equal(h(tmp_path / "c.png", tmp_path / "m.png"), result)


def test_pil_in_pil_out(h, pair) -> None:
    composite, mask = pair
    out = h(Image.fromarray(composite), Image.fromarray(mask))
    assert isinstance(out, Image.Image) and out.mode == "RGB"
    assert np.array_equal(np.asarray(out), h(composite, mask))


def test_floats_keep_their_background_exactly(h, pair) -> None:
    composite, mask = pair
    image = composite.astype(np.float32) / 255 + np.float32(1e-4)  # not on the 8-bit grid
    out = h(image, mask.astype(np.float32) / 255)
    assert out.dtype == np.float32
    outside = mask == 0
    assert np.array_equal(out[outside], image[outside])
    assert np.abs(out[~outside] - h(composite, mask)[~outside] / 255).max() < 0.02


def test_tensors_in_tensors_out_and_a_batch(h, pair) -> None:
    torch = pytest.importorskip("torch")
    composite, mask = pair
    image = torch.from_numpy(composite.copy()).permute(2, 0, 1).float() / 255
    weights = torch.from_numpy(mask.copy()).float() / 255
    out = h(image, weights)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 64, 80)
    batch = h(torch.stack([image, image]), torch.stack([weights[None], weights[None]]))
    assert batch.shape == (2, 3, 64, 80) and torch.equal(batch[1], out)
    as_list = h([composite, composite], [mask, mask])
    assert len(as_list) == 2 and np.array_equal(as_list[0], as_list[1])


def test_no_mask_takes_the_alpha_channel(h, pair) -> None:
    composite, mask = pair
    rgba = np.dstack([composite, mask])
    assert np.array_equal(h(rgba), h(composite, mask))
    pil = h(Image.fromarray(rgba, "RGBA"))
    assert np.array_equal(np.asarray(pil), h(composite, mask))


@pytest.mark.parametrize(
    ("image", "mask", "message"),
    [
        (np.zeros((64, 80, 3), np.uint8), np.zeros((60, 80), np.uint8), "mask is 80x60 but"),
        (np.zeros((64, 80, 3), np.uint8), np.zeros((64, 80), np.uint8), "mask is empty"),
        (np.full((64, 80, 3), 2.0, np.float32), np.ones((64, 80), bool), "must lie in"),
        (np.zeros((64, 80), np.uint8), np.ones((64, 80), bool), "expected an"),
        (np.zeros((64, 80, 3), np.uint8), None, "has no alpha"),
        ("missing.png", np.ones((64, 80), bool), r"^missing\.png: "),
        (42, np.ones((64, 80), bool), "got int"),
    ],
)
def test_bad_inputs_raise_one_line_typed_errors(h, image, mask, message) -> None:
    with pytest.raises(dkt.DktError, match=message) as info:
        h(image, mask)
    assert "\n" not in str(info.value)


def test_list_lengths_must_agree(h, pair) -> None:
    composite, mask = pair
    with pytest.raises(dkt.InputError, match="2 images but 1 masks"):
        h([composite, composite], [mask])


def test_harmonize_folder_streams_with_progress(h, write_pair, tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write_pair(tmp_path / "comps" / f"{name}.png", tmp_path / "masks" / f"{name}.png")
    (tmp_path / "masks" / "c.png").write_bytes(b"broken")
    seen: list[tuple[int, int]] = []
    summary = h.harmonize_folder(
        tmp_path / "comps", tmp_path / "masks", tmp_path / "out",
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert (summary.done, summary.failed) == (2, 1)
    assert "c.png" in summary.failures[0].error
    assert sorted(seen) == [(1, 3), (2, 3), (3, 3)]
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]
    again = h.harmonize_folder(tmp_path / "comps", tmp_path / "masks", tmp_path / "out",
                               existing="skip", workers=0)  # fmt: skip
    assert again.skipped == 2


# --------------------------------------------------------------------------- style strength


def _object_change(result: np.ndarray, composite: np.ndarray, mask: np.ndarray) -> float:
    return float(np.abs(result.astype(int) - composite)[mask > 0].mean())


def test_strength_0_gives_the_composite_byte_for_byte(h, tiny_model: Path, pair) -> None:
    composite, mask = pair  # 64x80 at the model's working size 64: the transfer path
    assert np.array_equal(h(composite, mask, strength=0), composite)
    with dkt.Harmonizer(tiny_model, device="cpu", strength=0.0) as none:
        assert np.array_equal(none(composite, mask), composite)
        assert np.array_equal(none(composite, mask, size=0), composite)  # the direct path
        assert np.array_equal(none(composite, mask, strength=1.0), h(composite, mask))
        assert "strength=0" in repr(none)


def test_strength_1_is_the_default(h, tiny_model: Path, pair) -> None:
    composite, mask = pair
    default = h(composite, mask)
    assert np.array_equal(h(composite, mask, strength=1.0), default)
    with dkt.Harmonizer(tiny_model, device="cpu", strength=1) as full:
        assert np.array_equal(full(composite, mask), default)


def test_half_strength_changes_the_object_less_and_never_the_painting(h, pair) -> None:
    composite, mask = pair
    change = {}
    for strength in (0.0, 0.3, 0.5, 1.0):
        result = h(composite, mask, strength=strength)
        assert np.array_equal(result[mask == 0], composite[mask == 0]), strength
        change[strength] = _object_change(result, composite, mask)
    assert change[0.0] == 0 < change[0.3] < change[1.0], change
    assert 0 < change[0.5] < change[1.0], change


def test_a_harmonizers_strength_runs_its_folders_too(
    tiny_model: Path, write_pair, tmp_path: Path
) -> None:
    written = {}
    for seed, name in enumerate(("a", "b")):
        comp, mask = tmp_path / "comps" / f"{name}.png", tmp_path / "masks" / f"{name}.png"
        written[name] = write_pair(comp, mask, seed=seed)
    with dkt.Harmonizer(tiny_model, device="cpu", strength=0.0) as none:
        summary = none.harmonize_folder(tmp_path / "comps", tmp_path / "masks", tmp_path / "out")
    assert summary.done == 2
    for name, (composite, _) in written.items():
        assert np.array_equal(read_image(tmp_path / "out" / f"{name}.png"), composite)


@pytest.mark.parametrize("strength", [1.5, -0.2, float("nan"), "half", True, [0.5]])
def test_a_strength_outside_0_to_1_is_a_one_line_value_error(
    h, tiny_model: Path, pair, strength: object
) -> None:
    composite, mask = pair
    for call in (
        lambda: h(composite, mask, strength=strength),
        lambda: dkt.Harmonizer(tiny_model, device="cpu", strength=strength),
    ):
        with pytest.raises(dkt.StrengthError) as info:
            call()
        assert isinstance(info.value, ValueError) and "\n" not in str(info.value)
        assert "strength must be a number from 0 to 1" in str(info.value)


def test_an_old_export_runs_at_full_strength_and_refuses_the_rest(old_style_onnx, pair) -> None:
    composite, mask = pair
    with dkt.Harmonizer(old_style_onnx, device="cpu") as old:
        assert old(composite, mask).shape == composite.shape
        with pytest.raises(dkt.DktError, match="re-export") as info:
            old(composite, mask, strength=0.5)
    assert "\n" not in str(info.value) and "old-style.onnx" in str(info.value)
    with pytest.raises(dkt.DktError, match="without a strength input"):
        dkt.Harmonizer(old_style_onnx, device="cpu", strength=0.5)


def test_paste_then_harmonize(h) -> None:
    painting = np.full((64, 80, 3), 90, np.uint8)
    cutout = np.zeros((20, 30, 4), np.uint8)
    cutout[..., 1], cutout[4:16, 4:26, 3] = 220, 255
    composite, mask = dkt.paste(painting, cutout, at=(10, 20))
    assert np.array_equal(composite[mask == 0], painting[mask == 0])
    out = h(composite, mask)
    assert np.array_equal(out[mask == 0], painting[mask == 0])
    pil_composite, pil_mask = dkt.paste(Image.fromarray(painting), Image.fromarray(cutout, "RGBA"))
    assert isinstance(pil_composite, Image.Image) and pil_mask.mode == "L"
    assert isinstance(h(pil_composite, pil_mask), Image.Image)


def test_public_names_are_documented_with_an_example() -> None:
    import doctest

    from dkt import api, errors

    for module in (api, errors):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted >= 3, module.__name__
    for name in dkt.__all__[1:]:
        doc = getattr(dkt, name).__doc__
        assert doc and ">>>" in doc, name
    assert {"Harmonizer", "paste", "DktError", "__version__"} <= set(dir(dkt))
    with pytest.raises(AttributeError):
        _ = dkt.not_a_name


# ------------------------------------------ issue 26: wrong results without a word


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.int64, np.uint16, np.uint32])
def test_integer_masks_of_any_type_follow_one_rule(h, pair, dtype: type) -> None:
    """``np.where(m > 0, 255, 0)`` is int64: divided by its type's maximum it selected
    nothing and the object came back unchanged, reported as harmonized."""
    composite, mask = pair
    expected = h(composite, mask)
    label = (mask > 0).astype(dtype)
    assert np.array_equal(h(composite, label), expected)  # 0/1: a label mask
    if np.iinfo(dtype).max >= 255:
        assert np.array_equal(h(composite, np.where(mask > 0, 255, 0).astype(dtype)), expected)


@pytest.mark.parametrize(
    ("mask_values", "message"),
    [(np.int64(1000), "mask values run up to 1000: an integer mask holds 0/1 labels"),
     (np.int32(-255), "mask has negative values (down to -255)"),
     (np.float32(0.001), "mask selects nothing (its largest weight is 0.001 of 1")],
)  # fmt: skip
def test_masks_that_select_nothing_or_break_the_rule_are_refused(
    h, pair, mask_values: np.generic, message: str
) -> None:
    composite, mask = pair
    weights = (mask > 0).astype(mask_values.dtype) * mask_values
    with pytest.raises(dkt.InputError) as info:
        h(composite, weights)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_an_rgba_array_with_a_mask_is_flattened_as_its_png_is(h, pair, tmp_path: Path) -> None:
    """The alpha of an (H, W, 4) array was dropped, while the same pixels as an RGBA PNG are
    composited over white: the two gave different results."""
    composite, mask = pair
    alpha = np.full(mask.shape, 255, np.uint8)
    alpha[:, :20] = 0
    rgba = np.dstack([composite, alpha])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "c.png")
    from_file = h(tmp_path / "c.png", mask)
    assert np.array_equal(h(rgba, mask), from_file)
    assert np.array_equal(from_file[mask == 0], read_image(tmp_path / "c.png")[mask == 0])
    floats = h(rgba.astype(np.float32) / 255, mask)
    assert np.abs(floats * 255 - from_file).max() <= 1.0


def test_one_mask_goes_with_every_image_of_a_batched_tensor(h, pair) -> None:
    """A (1, 3, H, W) tensor with an (H, W) mask said "1 images but 64 masks"."""
    torch = pytest.importorskip("torch")
    composite, mask = pair
    image = torch.from_numpy(composite.copy()).permute(2, 0, 1).float() / 255
    weights = torch.from_numpy(mask.copy()).float() / 255
    single = h(image, weights)
    for masks in (weights, mask):
        batch = h(image[None], masks)
        assert batch.shape == (1, 3, 64, 80) and torch.equal(batch[0], single)
    assert torch.equal(h(torch.stack([image, image]), weights)[1], single)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("size", -1, "size must be 0 (the image's own) or at least 8, got -1"),
     ("size", 1, "size must be 0 (the image's own) or at least 8, got 1"),
     ("size", 7, "size must be 0 (the image's own) or at least 8, got 7"),
     ("size", 64.5, "size must be 0 (the image's own) or at least 8, got 64.5"),
     ("upsample", "nope", "upsample must be guided or residual, got 'nope'")],
)  # fmt: skip
def test_bad_harmonizer_options_are_one_line_option_errors(
    h, tiny_model: Path, pair, option: str, value: object, message: str
) -> None:
    composite, mask = pair
    for call in (
        lambda: dkt.Harmonizer(tiny_model, device="cpu", **{option: value}),
        lambda: h(composite, mask, **{option: value}),
    ):
        with pytest.raises(dkt.OptionError) as info:
            call()
        assert str(info.value) == message and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("workers", -1, "workers must be 0 (no pipeline) or more, got -1"),
     ("batch", 0, "batch must be at least 1, got 0")],
)  # fmt: skip
def test_bad_folder_options_name_themselves(
    h, write_pair, tmp_path: Path, option: str, value: int, message: str
) -> None:
    """They raised a plain ValueError about "workers and batch", whichever was wrong."""
    write_pair(tmp_path / "comps" / "a.png", tmp_path / "masks" / "a.png")
    with pytest.raises(dkt.OptionError) as info:
        h.harmonize_folder(tmp_path / "comps", tmp_path / "masks", tmp_path / "out",
                           **{option: value})  # fmt: skip
    assert str(info.value) == message
    assert not (tmp_path / "out").exists()  # refused before anything was planned or made


def test_harmonize_folder_results_keep_the_composites_profile_dpi_and_exif(
    h, make_pair, tmp_path: Path
) -> None:
    """Issue 26 item 4: the API's file outputs, like the command line's, keep them."""
    from tests.imaging.meta_files import MAKE, ORIENTATION, metadata_of, save_with_meta
    from tests.imaging.meta_files import wide_gamut_profile as profile

    composite, mask = make_pair(64, 80)
    save_with_meta(tmp_path / "comps" / "a.jpg", composite, dpi=(300, 150), orientation=6)
    write_image(tmp_path / "masks" / "a.png", mask)
    summary = h.harmonize_folder(tmp_path / "comps", tmp_path / "masks", tmp_path / "out")
    assert summary.done == 1, summary.failures
    icc, dpi, exif = metadata_of(tmp_path / "out" / "a.png")
    assert icc == profile()
    assert dpi == pytest.approx((150, 300), rel=1e-3)
    assert (exif[ORIENTATION], exif[MAKE]) == (1, "dkt test camera")
