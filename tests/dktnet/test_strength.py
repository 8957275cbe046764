"""Tests for dkt.dktnet.strength: what a style strength is, and its exact interpolation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dkt.dktnet.strength import DEFAULT_STRENGTH, StrengthError, check_strength, toward
from dkt.errors import DktError


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0, 0.0), (1, 1.0), (0.25, 0.25), ("0.5", 0.5), (" 1 ", 1.0), (np.float32(0.75), 0.75)],
)
def test_numbers_from_0_to_1_are_strengths(value: object, expected: float) -> None:
    assert check_strength(value) == expected
    assert isinstance(check_strength(value), float)


@pytest.mark.parametrize(
    "value", [-0.01, 1.01, 2, math.nan, math.inf, -math.inf, "abc", "", "nan", True, None, [0.5]]
)
def test_anything_else_is_a_one_line_value_error(value: object) -> None:
    with pytest.raises(StrengthError) as info:
        check_strength(value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DktError)
    message = str(info.value)
    assert "\n" not in message and message.startswith("strength must be a number from 0 to 1")
    assert repr(value) in message


def test_the_default_is_full_strength() -> None:
    assert DEFAULT_STRENGTH == 1.0


def test_toward_is_exact_at_both_ends_and_linear_between() -> None:
    torch.manual_seed(0)
    start, end = torch.rand(2, 5, 7, 9) * 40 - 20, torch.rand(2, 5, 7, 9) * 40 - 20
    assert torch.equal(toward(start, end, torch.tensor([0.0])), start)
    assert torch.equal(toward(start, end, torch.tensor([1.0])), end)
    assert toward(start, end, None) is end
    expected = start.double() + 0.3 * (end.double() - start.double())
    got = toward(start, end, torch.tensor([0.3])).double()
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_toward_interpolates_half_maps_in_half() -> None:
    start, end = torch.zeros(1, 2, 3, 3, dtype=torch.float16), torch.ones(1, 2, 3, 3).half()
    out = toward(start, end, torch.tensor([0.5]))
    assert out.dtype == torch.float16 and torch.equal(out, torch.full_like(start, 0.5))
