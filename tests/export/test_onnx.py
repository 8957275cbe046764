"""ONNX export: named dynamic I/O, a graph independent of the example's size, fp16, metadata."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from backends.shapes import ShapeProfile
from dkt.dktnet.checkpoint import file_sha256, load_checkpoint, save_checkpoint
from dkt.dktnet.model import DKTNet
from dkt.errors import BackendError
from tests.export_fixtures import PROFILE
from tests.tiny import tiny_config

onnx = pytest.importorskip("onnx", reason="onnx not installed (pip install 'dkt[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (dkt[onnx])")

from backends.onnx_metadata import read_metadata  # noqa: E402
from dkt.export.onnx import export_onnx  # noqa: E402
from dkt.export.parity import soft_mask  # noqa: E402


def io_signature(path: Path) -> list[tuple[str, int, list[object]]]:
    model = onnx.load(str(path))
    return [
        (
            v.name,
            v.type.tensor_type.elem_type,
            [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
        )
        for v in (*model.graph.input, *model.graph.output)
    ]


def run_both(
    checkpoint: Path, onnx_path: Path, batch: int, height: int, width: int, seed=0, strength=1.0
):
    """The eager model and the exported graph on the same inputs, at ``strength``."""
    rng = np.random.default_rng(seed)
    composite = rng.random((batch, 3, height, width), dtype=np.float32)
    mask = soft_mask(rng, batch, height, width)
    eager_strength = None if strength == 1.0 else torch.tensor([strength])
    with torch.inference_mode():
        expected = load_checkpoint(checkpoint)(
            torch.from_numpy(composite), torch.from_numpy(mask), eager_strength
        )
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feeds = {"composite": composite, "mask": mask}
    if "strength" in [i.name for i in session.get_inputs()]:
        feeds["strength"] = np.array([strength], np.float32)
    (got,) = session.run(["harmonized"], feeds)
    return composite, mask, expected.numpy(), got


def assert_background_exact(composite, mask, got) -> None:
    background = np.broadcast_to(mask == 0, got.shape)
    assert background.any()
    np.testing.assert_array_equal(got[background], composite[background])


def test_dynamo_export_has_named_dynamic_io(dynamo_onnx: Path) -> None:
    float32 = onnx.TensorProto.FLOAT
    assert io_signature(dynamo_onnx) == [
        ("composite", float32, ["batch", 3, "height", "width"]),
        ("mask", float32, ["batch", 1, "height", "width"]),
        ("strength", float32, [1]),
        ("harmonized", float32, ["batch", 3, "height", "width"]),
    ]


@pytest.mark.parametrize(
    "shape", [(1, 64, 64), (2, 61, 77), (1, 16, 16), (1, 100, 37), (2, 128, 9)]
)
def test_dynamo_graph_exported_at_64_runs_at_other_sizes(
    tiny_checkpoint: Path, dynamo_onnx: Path, shape: tuple[int, int, int]
) -> None:
    composite, mask, expected, got = run_both(tiny_checkpoint, dynamo_onnx, *shape)
    assert got.shape == expected.shape == (shape[0], 3, shape[1], shape[2])
    assert np.abs(got - expected).max() < 1e-4
    assert_background_exact(composite, mask, got)


@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 128, 96), (1, 9, 9)])
def test_torchscript_graph_exported_at_61x77_runs_at_multiples_of_8(
    tiny_checkpoint: Path, torchscript_odd_onnx: Path, shape: tuple[int, int, int]
) -> None:
    composite, mask, expected, got = run_both(tiny_checkpoint, torchscript_odd_onnx, *shape)
    assert np.abs(got - expected).max() < 1e-4
    assert_background_exact(composite, mask, got)


def test_metadata_records_the_export(tiny_checkpoint: Path, dynamo_onnx: Path) -> None:
    meta = read_metadata(dynamo_onnx)
    assert meta["source_sha256"] == file_sha256(tiny_checkpoint)
    assert meta["precision"] == "fp32"
    assert meta["exporter"] == "dynamo"
    assert meta["working_size"] == 64
    assert ShapeProfile.from_dict(meta["profile"]) == ShapeProfile(
        (1, 16, 16), (1, 64, 64), (2, 128, 128)
    )
    assert meta["inputs"] == ["composite", "mask", "strength"]
    assert meta["outputs"] == ["harmonized"] and meta["strength_input"] is True


def test_fp16_graph_keeps_float32_io_and_the_background(
    tiny_checkpoint: Path, fp16_onnx: Path
) -> None:
    model = onnx.load(str(fp16_onnx))
    assert [s[1] for s in io_signature(fp16_onnx)] == [onnx.TensorProto.FLOAT] * 4
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    composite, mask, expected, got = run_both(tiny_checkpoint, fp16_onnx, 2, 61, 77)
    assert np.abs(got - expected).max() < 2e-2
    assert_background_exact(composite, mask, got)


def test_static_export_fixes_every_axis(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "static.onnx"
    export_onnx(
        tiny_checkpoint, out, profile=ShapeProfile.static((1, 40, 48)), exporter="torchscript"
    )
    assert [s[2] for s in io_signature(out)] == [
        [1, 3, 40, 48], [1, 1, 40, 48], [1], [1, 3, 40, 48]
    ]  # fmt: skip


def test_graph_has_no_per_position_einsum_and_no_lerp(tmp_path: Path) -> None:
    """The costly forms once exported are gone: a per-position Einsum for the covariance
    projection (now a 1x1 Conv) and lerp's two-branch Where on the skips (now multiply-add).
    The only Where nodes left are the blend's, which keep the background exact."""
    checkpoint = tmp_path / "cov.safetensors"
    torch.manual_seed(0)
    save_checkpoint(checkpoint, DKTNet(tiny_config(cov_rank=2, working_size=64)))
    out = tmp_path / "cov.onnx"
    export_onnx(checkpoint, out, profile=PROFILE, exporter="torchscript")
    nodes = onnx.load(str(out)).graph.node
    equations = [
        onnx.helper.get_attribute_value(a).decode()
        for n in nodes if n.op_type == "Einsum" for a in n.attribute if a.name == "equation"
    ]  # fmt: skip
    assert equations, "the kernel mixing is still an Einsum over (B, K)"
    assert not [e for e in equations if "h" in e.split("->")[0]], equations
    assert [n.op_type for n in nodes].count("Where") == 2
    composite, mask, expected, got = run_both(checkpoint, out, 2, 61, 77)
    assert np.abs(got - expected).max() < 1e-4
    assert_background_exact(composite, mask, got)


@pytest.mark.parametrize("hide_onnxslim", [False, True])
def test_simplified_graph_still_matches(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hide_onnxslim: bool
) -> None:
    if hide_onnxslim:
        monkeypatch.setitem(sys.modules, "onnxslim", None)  # -> onnxruntime's optimizer
    elif "onnxslim" not in sys.modules:
        pytest.importorskip("onnxslim", reason="onnxslim not installed; fallback tested")
    out = tmp_path / "simple.onnx"
    result = export_onnx(
        tiny_checkpoint,
        out,
        profile=ShapeProfile((1, 9, 9), (1, 64, 64), (2, 96, 96)),
        exporter="torchscript",
        simplify=True,
    )
    tool = read_metadata(out)["simplified_with"]
    assert tool.startswith("onnxruntime" if hide_onnxslim else "onnxslim")
    assert result.notes == [f"simplified with {tool}"]
    composite, mask, expected, got = run_both(tiny_checkpoint, out, 2, 61, 77)
    assert np.abs(got - expected).max() < 1e-4
    assert_background_exact(composite, mask, got)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"precision": "int4"}, "unknown export precision"),
        ({"precision": "int8"}, "only int8 takes calibration"),
        ({"calibration": []}, "only int8 takes calibration"),
        ({"exporter": "magic"}, "unknown exporter"),
        ({"opset": 13}, "opset 13 is too old"),
    ],
)
def test_bad_options_are_refused(tiny_checkpoint: Path, tmp_path: Path, kwargs, message) -> None:
    with pytest.raises(BackendError, match=message):
        export_onnx(
            tiny_checkpoint, tmp_path / "x.onnx", profile=ShapeProfile.static((1, 64, 64)), **kwargs
        )
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_dynamo_fp16_export_exported_at_odd_size(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "dyn16.onnx"
    export_onnx(
        tiny_checkpoint,
        out,
        profile=ShapeProfile((1, 9, 9), (1, 61, 77), (2, 128, 128)),
        precision="fp16",
    )
    for shape in [(1, 64, 64), (2, 128, 96)]:
        composite, mask, expected, got = run_both(tiny_checkpoint, out, *shape)
        assert np.abs(got - expected).max() < 2e-2
        assert_background_exact(composite, mask, got)


# --------------------------------------------------------------------------- style strength


@pytest.mark.parametrize("strength", [0.0, 0.3, 0.5, 1.0])
def test_the_strength_input_matches_eager_and_keeps_the_background(
    tiny_checkpoint: Path, dynamo_onnx: Path, strength: float
) -> None:
    composite, mask, expected, got = run_both(
        tiny_checkpoint, dynamo_onnx, 2, 61, 77, strength=strength
    )
    assert np.abs(got - expected).max() < 1e-4
    assert_background_exact(composite, mask, got)


def test_half_strength_moves_the_object_part_of_the_way(
    tiny_checkpoint: Path, torchscript_odd_onnx: Path
) -> None:
    change = {}
    for strength in (0.0, 0.5, 1.0):
        composite, mask, _, got = run_both(
            tiny_checkpoint, torchscript_odd_onnx, 1, 64, 72, strength=strength
        )
        inside = np.broadcast_to(mask > 0, got.shape)
        change[strength] = float(np.abs(got - composite)[inside].mean())
    assert change[0.0] < 1e-6  # the composite itself (up to the soft blend's rounding)
    assert 0.2 * change[1.0] < change[0.5] < 0.8 * change[1.0], change


def test_fp16_graph_at_strength_0_gives_the_composite(
    tiny_checkpoint: Path, fp16_onnx: Path
) -> None:
    """The fade runs in float32 on the untouched composite, not on its half-precision copy."""
    composite, _, _, got = run_both(tiny_checkpoint, fp16_onnx, 1, 48, 40, strength=0.0)
    assert np.abs(got - composite).max() < 1e-6


def test_an_export_without_the_strength_input_is_the_two_input_graph(
    tiny_checkpoint: Path, old_style_onnx: Path
) -> None:
    assert [name for name, _, _ in io_signature(old_style_onnx)] == [
        "composite", "mask", "harmonized"
    ]  # fmt: skip
    meta = read_metadata(old_style_onnx)
    assert meta["inputs"] == ["composite", "mask"] and meta["strength_input"] is False
    composite, mask, expected, got = run_both(tiny_checkpoint, old_style_onnx, 2, 61, 77)
    assert np.abs(got - expected).max() < 1e-4
    assert_background_exact(composite, mask, got)
