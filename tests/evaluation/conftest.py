"""Fixtures for the metric tests (the images themselves are made in ``synthetic``)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.evaluation.synthetic import smooth_object, square_mask, striped_painting


@pytest.fixture
def composite_case() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(composite, mask, painting): a smooth orange square pasted into a striped painting."""
    painting = striped_painting()
    mask = square_mask()
    comp = np.where(mask[..., None] > 0, smooth_object(), painting).astype(np.uint8)
    return comp, mask, painting
