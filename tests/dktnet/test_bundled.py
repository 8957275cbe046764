"""The bundled default model, as a fresh install meets it."""

from __future__ import annotations

import numpy as np

import dktnet
from backends.harmonizer import Harmonizer
from backends.torch_backend import TorchBackend
from dkt_cli.demo import colour_distance
from dktnet.checkpoint import read_checkpoint_info
from dktnet.samples import make_demo_sample


def test_bundled_model_ships_with_its_card_and_honest_provenance() -> None:
    assert dktnet.BUNDLED_MODEL.is_file()
    assert dktnet.BUNDLED_MODEL_CARD.is_file()
    info = read_checkpoint_info(dktnet.BUNDLED_MODEL)
    assert info.file_size < 10_000_000  # "a few MB"
    assert info.config.encoder == "lite"
    assert info.provenance["loss_network"]["pretrained"] is False
    assert info.provenance["steps"] > 0
    assert "random-weight" in dktnet.BUNDLED_MODEL_CARD.read_text()


def test_bundled_model_moves_the_demo_object_toward_the_painting() -> None:
    sample = make_demo_sample(height=192, width=256, seed=1)
    mask = sample.mask.astype(np.float32) / 255.0
    with TorchBackend.load(dktnet.BUNDLED_MODEL) as backend:
        result = Harmonizer(backend).harmonize(sample.composite, mask)
    before = colour_distance(sample.composite, sample.mask)
    after = colour_distance(result, sample.mask)
    assert after < 0.5 * before
    outside = sample.mask == 0
    assert np.array_equal(result[outside], sample.composite[outside])
