"""Shape profiles: parsing the trtexec-style options and checking inputs against them."""

from __future__ import annotations

import pytest

from backends.shapes import ShapeProfile, build_profile, format_shape, parse_shape
from dkt.errors import ShapeError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1x3x512x512", (1, 512, 512)), ("4X3X64x96", (4, 64, 96)), (" 2x100x50 ", (2, 100, 50))],
)
def test_parse_shape(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_shape(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("512x512", "BxCxHxW"),
        ("1x4x64x64", "3 channels"),
        ("0x3x64x64", "batch"),
        ("1x3x8x64", "at least 9"),
        ("1x3x64", "at least 9"),  # read as BxHxW: 3 px high
    ],
)
def test_parse_shape_refuses(text: str, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        parse_shape(text)


def test_dynamic_export_without_flags_gets_the_documented_default() -> None:
    profile = build_profile(dynamic=True, working_size=512)
    assert profile == ShapeProfile((1, 16, 16), (1, 512, 512), (4, 2048, 2048))
    big = build_profile(dynamic=True, working_size=3000, min_shape="1x3x64x64")
    assert big == ShapeProfile((1, 64, 64), (1, 3000, 3000), (4, 3000, 3000))


def test_dynamic_defaults_fill_min_and_opt() -> None:
    profile = build_profile(dynamic=True, working_size=256, max_shape="4x3x1024x1024")
    assert profile == ShapeProfile((1, 16, 16), (1, 256, 256), (4, 1024, 1024))
    assert profile.dynamic_axes == ("batch", "height", "width")
    # opt is clamped into the range when the working size is above the maximum
    small = build_profile(dynamic=True, working_size=256, max_shape="1x3x128x200")
    assert small.opt == (1, 128, 200)
    assert small.dynamic_axes == ("height", "width")


def test_static_profile() -> None:
    profile = build_profile(dynamic=False, working_size=256)
    assert profile == ShapeProfile.static((1, 256, 256))
    assert not profile.is_dynamic
    assert build_profile(dynamic=False, working_size=256, opt_shape="2x3x64x80").opt == (2, 64, 80)
    with pytest.raises(ShapeError, match="static export has one shape"):
        build_profile(dynamic=False, working_size=256, max_shape="1x3x64x64")


def test_min_opt_max_order_is_checked() -> None:
    with pytest.raises(ShapeError, match="min <= opt <= max for height"):
        build_profile(
            dynamic=True, working_size=256, min_shape="1x3x512x64", max_shape="1x3x256x256"
        )


def test_check_names_shape_and_profile() -> None:
    profile = ShapeProfile((1, 16, 16), (1, 256, 256), (2, 512, 512))
    profile.check((2, 3, 512, 16))
    with pytest.raises(ShapeError) as info:
        profile.check((1, 3, 600, 300), "re-export")
    assert str(info.value) == (
        "input 1x3x600x300 is outside the model's shape profile "
        "(min 1x3x16x16, max 2x3x512x512); re-export"
    )
    with pytest.raises(ShapeError, match=r"static 1x3x64x64"):
        ShapeProfile.static((1, 64, 64)).check((1, 3, 64, 65))


def test_tensor_shapes_and_round_trip() -> None:
    profile = ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 96))
    assert profile.tensor_shapes("mask") == ((1, 1, 16, 16), (1, 1, 64, 64), (2, 1, 128, 96))
    assert ShapeProfile.from_dict(profile.to_dict()) == profile
    assert format_shape((2, 128, 96), 1) == "2x1x128x96"
    with pytest.raises(ShapeError, match="invalid shape profile"):
        ShapeProfile.from_dict({"min": [1, 2]})
