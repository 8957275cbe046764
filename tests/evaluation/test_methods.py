"""Tests for ``dkt.evaluation.methods``: method tokens, display names, producing results."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dkt import dktnet
from dkt.dktnet.pretrained import CD16X_DECODER_RELU4_FILE, CD16X_ENCODER_RELU4_FILE
from dkt.errors import MethodError, PathError
from dkt.evaluation.methods import open_method, parse_methods
from dkt.imaging.imageio import read_image, read_mask, write_image
from tests.cd16x_files import write_cd16x_decoder, write_cd16x_encoder
from tests.dkt_cli.eval_data import EvalSet, make_eval_set, tiny_model


@pytest.fixture(scope="module")
def evalset(tmp_path_factory: pytest.TempPathFactory) -> EvalSet:
    return make_eval_set(tmp_path_factory.mktemp("evalset"))


def _item(evalset: EvalSet, key: str) -> tuple[np.ndarray, np.ndarray]:
    return read_image(evalset.composites / f"{key}.png"), read_mask(evalset.masks / f"{key}.png")


def test_tokens_are_classified_and_named(evalset: EvalSet) -> None:
    specs = parse_methods(f"composite, reinhard,{evalset.model},{evalset.results}/")
    assert [(s.name, s.kind) for s in specs] == [
        ("composite", "baseline"),
        ("reinhard", "baseline"),
        ("tiny.safetensors", "model"),
        ("results", "folder"),
    ]


def test_colliding_names_get_parent_folders(tmp_path: Path) -> None:
    a = tiny_model(tmp_path / "a" / "model.safetensors")
    b = tiny_model(tmp_path / "b" / "model.safetensors")
    (tmp_path / "runs" / "reinhard").mkdir(parents=True)
    specs = parse_methods(f"{a},{b},reinhard,{tmp_path / 'runs' / 'reinhard'}")
    assert [s.name for s in specs] == [
        "a/model.safetensors",
        "b/model.safetensors",
        "reinhard",
        "runs/reinhard",
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty"),
        ("composite,composite", "listed twice"),
        ("reinhardt", "not one of composite, reinhard, adain, adain-relu4, bundled"),
        ("missing/model.onnx", "no such file or folder"),
    ],
)
def test_bad_tokens(spec: str, message: str) -> None:
    with pytest.raises(MethodError, match=message):
        parse_methods(spec)


def test_bundled_needs_the_installed_model(
    monkeypatch: pytest.MonkeyPatch, evalset: EvalSet, tmp_path: Path
) -> None:
    monkeypatch.setattr(dktnet, "BUNDLED_MODEL", tmp_path / "absent.safetensors")
    with pytest.raises(MethodError, match="bundled model is not installed"):
        parse_methods("bundled")
    monkeypatch.setattr(dktnet, "BUNDLED_MODEL", evalset.model)
    (spec,) = parse_methods("bundled")
    assert spec.name == "bundled" and spec.kind == "model" and spec.path == evalset.model


def test_model_method_keeps_the_painting(evalset: EvalSet) -> None:
    (spec,) = parse_methods(str(evalset.model))
    method = open_method(spec, composites=evalset.composites, device="cpu")
    comp, mask = _item(evalset, "a")
    out = method.produce("a", comp, mask)
    assert out.shape == comp.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out[mask == 0], comp[mask == 0])
    assert method.timed and method.description["backend"] == "torch"
    method.close()


def test_folder_method_reads_by_key_and_reports_missing(evalset: EvalSet) -> None:
    (spec,) = parse_methods(str(evalset.results))
    method = open_method(spec, composites=evalset.composites)
    assert not method.timed and method.description["outputs_found"] == 2
    comp, mask = _item(evalset, "a")
    np.testing.assert_array_equal(method.produce("a", comp, mask), comp)
    with pytest.raises(PathError, match="no output for this composite"):
        method.produce("c", *_item(evalset, "c"))


def test_folder_results_of_another_size_are_resized(evalset: EvalSet, tmp_path: Path) -> None:
    comp, mask = _item(evalset, "a")
    write_image(tmp_path / "small" / "out_a.jpg", comp[::2, ::2].copy())
    (spec,) = parse_methods(str(tmp_path / "small"))
    method = open_method(spec, composites=evalset.composites, outputs_pattern="out_{key}")
    assert method.produce("a", comp, mask).shape == comp.shape
    assert method.resized == 1


def test_folder_that_is_the_composites_folder_with_same_pattern(evalset: EvalSet) -> None:
    (spec,) = parse_methods(str(evalset.composites))
    with pytest.raises(MethodError, match="same folder"):
        open_method(spec, composites=evalset.composites)


def test_adain_relu4_is_a_baseline_labelled_as_the_distilled_approximation(
    evalset: EvalSet, tmp_path: Path
) -> None:
    write_cd16x_encoder(tmp_path / CD16X_ENCODER_RELU4_FILE)
    write_cd16x_decoder(tmp_path / CD16X_DECODER_RELU4_FILE)
    (spec,) = parse_methods("adain-relu4")
    assert (spec.name, spec.kind) == ("adain-relu4", "baseline")
    method = open_method(spec, composites=evalset.composites, adain_weights=tmp_path)
    assert method.description["label"] == "adain-relu4 (distilled VGG-19 approximation, cd16x)"
    assert method.description["weights"] == {
        "encoder": CD16X_ENCODER_RELU4_FILE,
        "decoder": CD16X_DECODER_RELU4_FILE,
    }
    assert method.description["found_in"] == "path"
    assert any("approximation" in note and "not the real VGG-19" in note for note in method.notes)
    comp, mask = _item(evalset, "a")
    out = method.produce("a", comp, mask)
    np.testing.assert_array_equal(out[mask == 0], comp[mask == 0])


def test_adain_relu4_without_its_files_is_one_line_naming_folder_and_files(
    evalset: EvalSet, tmp_path: Path
) -> None:
    write_cd16x_encoder(tmp_path / CD16X_ENCODER_RELU4_FILE)
    (spec,) = parse_methods("adain-relu4")
    with pytest.raises(MethodError) as err:
        open_method(spec, composites=evalset.composites, adain_weights=tmp_path)
    message = str(err.value)
    assert message == f"method 'adain-relu4': {tmp_path}: needs {CD16X_DECODER_RELU4_FILE} (path)"
