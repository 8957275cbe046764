"""Tests for dkt.evaluation.runner: a per-image metric is one function and one entry."""

from __future__ import annotations

import numpy as np

from dkt.evaluation import runner
from dkt.evaluation.runner import METRICS, Metric
from tests.evaluation.synthetic import smooth_object, square_mask, striped_painting


def _case() -> tuple[np.ndarray, np.ndarray]:
    painting, mask = striped_painting(), square_mask()
    return np.where(mask[..., None] > 0, smooth_object(), painting).astype(np.uint8), mask


def test_every_per_image_metric_is_scored_from_its_entry() -> None:
    composite, mask = _case()
    scores = runner._score(composite, composite, mask, perceptual=None)
    assert set(scores) == {m.key for m in METRICS if m.measure is not None}
    assert scores["bg_max_change"] == 0 and scores["content_ssim"] == 1


def test_a_registered_metric_appears_in_the_scores(monkeypatch) -> None:
    def brightness(out, comp, mask, regions):
        return float(out[mask > 0].mean())

    extra = Metric("brightness", "brightness", "higher", "mean", "mean object value", brightness)
    monkeypatch.setattr(runner, "METRICS", (*METRICS, extra))
    composite, mask = _case()
    scores = runner._score(composite, composite, mask, perceptual=None)
    assert scores["brightness"] == float(composite[mask > 0].mean())
