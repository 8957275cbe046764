"""Tests for ``dkt evaluate`` through the CLI, on a tiny synthetic set and on real data."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import dkt.evaluation.inception as inception
from dkt.dktnet.pretrained import CD16X_DECODER_RELU4_FILE, CD16X_ENCODER_RELU4_FILE
from dkt.evaluation.run import NO_INCEPTION, NO_VGG
from dkt.imaging.chroma import chroma_speckle
from dkt.imaging.imageio import read_image, read_mask
from dkt_cli.app import app
from tests.cd16x_files import write_cd16x_decoder, write_cd16x_encoder
from tests.dkt_cli.eval_data import EvalSet, make_eval_set, tiny_model

runner = CliRunner()


@pytest.fixture(scope="module")
def evalset(tmp_path_factory: pytest.TempPathFactory) -> EvalSet:
    return make_eval_set(tmp_path_factory.mktemp("evalset"))


def _args(evalset: EvalSet, methods: str, *extra: str) -> list[str]:
    return ["evaluate", "--composites", str(evalset.composites), "--masks", str(evalset.masks),
            "--methods", methods, "--device", "cpu", *extra]  # fmt: skip


def test_table_json_csv_and_sheet(evalset: EvalSet, tmp_path: Path) -> None:
    csv_path, sheet = tmp_path / "t.csv", tmp_path / "sheet.png"
    result = runner.invoke(
        app,
        _args(evalset, f"composite,reinhard,{evalset.model}", "--references",
              str(evalset.composites), "--csv", str(csv_path), "--sheet", str(sheet), "--json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = {m["method"]: m for m in data["methods"]}
    assert list(rows) == ["composite", "reinhard", "tiny.safetensors"]
    assert data["items"] == {"total": 3, "evaluated": 3, "failures": []}
    comp, reinhard = rows["composite"]["metrics"], rows["reinhard"]["metrics"]
    assert comp["content_ssim"] == 1.0 and comp["bg_max_change"] == 0
    assert reinhard["colour_swd"] < 0.5 * comp["colour_swd"]
    assert all(r["metrics"]["bg_max_change"] == 0 for r in rows.values())
    assert comp["fid"] is None and data["unavailable"]["fid"] == NO_INCEPTION
    assert data["unavailable"]["vgg_style"] == NO_VGG
    assert set(rows["reinhard"]["per_item"]) == {"a", "b", "c"}
    assert rows["reinhard"]["seconds_per_image"] is not None

    for name in ("composite", "reinhard", "tiny.safetensors"):
        assert name in result.stderr
    assert "colour ↓" in result.stderr and "content SSIM ↑" in result.stderr
    assert "no Inception weights" in result.stderr

    with open(csv_path, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["method"] for r in table] == ["composite", "reinhard", "tiny.safetensors"]
    assert table[0]["fid"] == NO_INCEPTION and table[0]["bg_max_change"] == "0"

    image = read_image(sheet)
    assert image.shape[0] > 3 * 100  # three rows of composites
    assert image.shape[1] > 3 * 100  # composite | reinhard | tiny (no duplicate composite)


def test_folder_results_with_a_missing_file_fail_that_item_only(evalset: EvalSet) -> None:
    result = runner.invoke(app, _args(evalset, f"composite,{evalset.results}", "--json"))
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    folder = data["methods"][1]
    assert folder["method"] == "results" and folder["images"] == 2 and folder["failed"] == 1
    assert "no output for this composite" in folder["failures"][0]["error"]
    assert folder["seconds_per_image"] is None
    assert "1 failure(s)" in result.stderr and "2/3" in result.stderr


def test_patterns_limit_and_save_outputs(tmp_path: Path, evalset: EvalSet) -> None:
    one = tmp_path / "one"
    one.mkdir()
    for key in ("a", "b"):
        (one / f"{key}_comp.png").write_bytes((evalset.composites / f"{key}.png").read_bytes())
        (one / f"{key}_mask.png").write_bytes((evalset.masks / f"{key}.png").read_bytes())
    (one / "a_bg.png").write_bytes((evalset.composites / "a.png").read_bytes())
    saved = tmp_path / "saved"
    result = runner.invoke(
        app,
        ["evaluate", "--composites", str(one), "--masks", str(one), "--composite-pattern",
         "{key}_comp", "--mask-pattern", "{key}_mask", "--methods", "reinhard", "--limit", "1",
         "--save-outputs", str(saved), "--json", "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["items"]["evaluated"] == 1 and result.stderr == ""
    assert (saved / "reinhard" / "a.png").is_file()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "nonsense"], "not one of composite, reinhard, adain, adain-relu4, bundled"),
        (["--methods", "composite", "--references", "/no/such/dir"], "no such folder"),
        (["--methods", "composite", "--inception-weights", "/no/w.pth",
          "--references", "{comps}"], "no such file"),
        (["--methods", "composite", "--composite-pattern", "nokey"], "exactly once"),
    ],
)  # fmt: skip
def test_usage_errors_are_one_line(evalset: EvalSet, extra: list[str], message: str) -> None:
    args = ["evaluate", "--composites", str(evalset.composites), "--masks", str(evalset.masks)]
    extra = [e.replace("{comps}", str(evalset.composites)) for e in extra]
    result = runner.invoke(app, [*args, *extra])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_fid_and_kid_are_reported_with_counts(
    evalset: EvalSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FID/KID plumbing with a stand-in feature extractor (the real one is a slow test)."""
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"stand-in")
    monkeypatch.setattr(inception, "load_inception", lambda path, device="cpu": "net")

    def fake_features(model, images, **kwargs):
        assert model == "net"
        feats = [np.concatenate([im.reshape(-1, 3).mean(0), im.reshape(-1, 3).std(0)])
                 for im in images]  # fmt: skip
        return np.array(feats, dtype=np.float64)

    monkeypatch.setattr(inception, "extract_features", fake_features)
    result = runner.invoke(
        app,
        _args(evalset, "composite,reinhard", "--references", str(evalset.composites),
              "--inception-weights", str(weights), "--json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["references"] == 3 and "fid" not in data["unavailable"]
    comp = data["methods"][0]
    assert comp["metrics"]["fid"] == pytest.approx(0.0, abs=1e-6)  # same images as references
    assert comp["fid_images"] == 3 and comp["metrics"]["kid"] is not None
    assert data["methods"][1]["metrics"]["fid"] > 0
    assert "3 result(s) vs 3 reference painting(s)" in result.stderr


@pytest.mark.slow
def test_fid_with_a_real_inception_network(evalset: EvalSet, tmp_path: Path) -> None:
    torch.manual_seed(0)
    weights = tmp_path / "random_inception.pth"
    torch.save(inception.FIDInception().state_dict(), weights)
    result = runner.invoke(
        app,
        _args(evalset, "composite", "--references", str(evalset.composites),
              "--inception-weights", str(weights), "--json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)["methods"][0]["metrics"]
    assert metrics["fid"] == pytest.approx(0.0, abs=1e-3)


def test_real_example_composites(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "example_composites"
    model = tiny_model(tmp_path / "tiny.safetensors")
    result = runner.invoke(
        app,
        ["evaluate", "--composites", str(folder), "--masks", str(folder),
         "--composite-pattern", "{key}_comp", "--mask-pattern", "{key}_mask",
         "--methods", f"composite,reinhard,{model}", "--limit", "3", "--device", "cpu",
         "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["items"]["evaluated"] == 3
    rows = {m["method"]: m["metrics"] for m in data["methods"]}
    assert (
        rows["composite"]["bg_max_change"] == 0 and rows["tiny.safetensors"]["bg_max_change"] == 0
    )
    assert rows["reinhard"]["colour_swd"] < rows["composite"]["colour_swd"]
    assert rows["composite"]["content_ssim"] == 1.0


def test_vgg_losses_with_a_weights_file(evalset: EvalSet, tmp_path: Path) -> None:
    """Any VGG-19 weights file fills the VGG columns (here a seeded one saved to disk: the
    plumbing is under test, not the numbers); the random stand-in by name is refused."""
    from safetensors.torch import save_file

    from dkt.dktnet.encoders import VGG19Encoder

    torch.manual_seed(0)
    weights = tmp_path / "vgg.safetensors"
    save_file({k: v.contiguous() for k, v in VGG19Encoder().state_dict().items()}, str(weights))
    result = runner.invoke(
        app, _args(evalset, "composite,reinhard", "--vgg-weights", str(weights), "--json")
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    comp, reinhard = (m["metrics"] for m in data["methods"])
    assert "vgg_style" not in data["unavailable"]
    assert comp["vgg_content"] == pytest.approx(0.0, abs=1e-9)
    assert reinhard["vgg_content"] > 0 and comp["vgg_style"] > 0

    refused = runner.invoke(app, _args(evalset, "composite", "--vgg-weights", "random:0"))
    assert refused.exit_code == 2 and "not measurements" in refused.stderr


def test_an_export_of_another_precision_beside_a_checkpoint(
    evalset: EvalSet, tmp_path: Path
) -> None:
    """No --precision: the checkpoint runs fp32 and the export what it was exported as."""
    pytest.importorskip("onnxruntime", reason="onnxruntime not installed (dkt[onnx])")
    from backends.shapes import ShapeProfile
    from dkt.export.onnx import export_onnx

    exported = tmp_path / "tiny16.onnx"
    profile = ShapeProfile((1, 16, 16), (1, 64, 64), (1, 64, 64))
    export_onnx(evalset.model, exported, profile=profile, precision="fp16", exporter="torchscript")
    result = runner.invoke(app, _args(evalset, f"{evalset.model},{exported}", "--json"))
    assert result.exit_code == 0, result.output
    rows = {m["method"]: m for m in json.loads(result.stdout)["methods"]}
    assert set(rows) == {"tiny.safetensors", "tiny16.onnx"}
    assert all(r["metrics"]["bg_max_change"] == 0 for r in rows.values())


# --------------------------------------------------------------------------- adain-relu4


def _no_bare_vgg19(text: str) -> bool:
    """Whether every "VGG-19" in ``text`` is qualified as the distilled approximation."""
    text = " ".join(text.replace("│", " ").split())
    for qualified in ("distilled VGG-19 approximation", "not the real VGG-19"):
        text = text.replace(qualified, "")
    return "VGG-19" not in text


def test_adain_relu4_with_self_made_weights(evalset: EvalSet, tmp_path: Path) -> None:
    write_cd16x_encoder(tmp_path / CD16X_ENCODER_RELU4_FILE)
    write_cd16x_decoder(tmp_path / CD16X_DECODER_RELU4_FILE)
    result = runner.invoke(
        app, _args(evalset, "composite,adain-relu4", "--adain-weights", str(tmp_path), "--json")
    )
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["methods"][1]
    assert row["method"] == "adain-relu4" and row["images"] == 3
    assert row["metrics"]["bg_max_change"] == 0
    assert row["description"]["label"] == "adain-relu4 (distilled VGG-19 approximation, cd16x)"
    assert row["description"]["network"] == "distilled-vgg19-cd16x"
    assert any("distilled VGG-19 approximation" in note for note in row["notes"])
    assert "adain-relu4: a distilled VGG-19 approximation" in " ".join(result.stderr.split())
    assert _no_bare_vgg19(result.stderr) and _no_bare_vgg19(json.dumps(row))


def test_adain_relu4_missing_a_file_is_a_one_line_error(evalset: EvalSet, tmp_path: Path) -> None:
    write_cd16x_decoder(tmp_path / CD16X_DECODER_RELU4_FILE)
    result = runner.invoke(
        app, _args(evalset, "composite,adain-relu4", "--adain-weights", str(tmp_path))
    )
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.stderr
    assert str(tmp_path) in lines[0] and CD16X_ENCODER_RELU4_FILE in lines[0]
    assert CD16X_DECODER_RELU4_FILE not in lines[0]


# --------------------------------------------------------------------------- chroma speckle


def test_chroma_speckle_column_per_item_and_geometric_mean(
    evalset: EvalSet, tmp_path: Path
) -> None:
    csv_path = tmp_path / "t.csv"
    result = runner.invoke(
        app, _args(evalset, "composite,reinhard", "--json", "--csv", str(csv_path))
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metrics"]["chroma_speckle"]["aggregate"] == "geomean"
    comp = data["methods"][0]
    expected = {}
    for key in ("a", "b", "c"):
        image = read_image(evalset.composites / f"{key}.png")
        mask = read_mask(evalset.masks / f"{key}.png")
        expected[key] = chroma_speckle(image, image, mask)
        assert comp["per_item"][key]["chroma_speckle"] == pytest.approx(expected[key], rel=1e-4)
    geomean = float(np.exp(np.mean(np.log(list(expected.values())))))
    assert comp["metrics"]["chroma_speckle"] == pytest.approx(geomean, rel=1e-4)
    assert geomean < 0.5  # the smooth photo objects have less colour detail than the painting
    text = " ".join(result.stderr.split())  # notes wrap at the table's width
    assert "chroma speckle →1" in text and "above 1 = colour speckle the painting lacks" in text
    with open(csv_path, newline="") as fh:
        table = list(csv.DictReader(fh))
    assert float(table[0]["chroma_speckle"]) == pytest.approx(geomean, rel=1e-4)


# --------------------------------------------------------------------------- deeper VGG taps


def test_vgg_metrics_with_distilled_deeper_taps(evalset: EvalSet, tmp_path: Path) -> None:
    """An exact file to relu3_1 plus a distilled relu5_1 file: five taps, the two deep ones
    labelled as the approximation, content at relu4_1 (self-made weights: the plumbing)."""
    from safetensors.torch import save_file

    from dkt.dktnet.encoders import VGG19Encoder

    torch.manual_seed(0)
    exact = tmp_path / "vgg3.safetensors"
    state = VGG19Encoder(depth="relu3_1").state_dict()
    save_file({k: v.contiguous() for k, v in state.items()}, str(exact))
    deep = write_cd16x_encoder(tmp_path / "cd16x_encoder_relu5_1.pth", depth="relu5_1")
    result = runner.invoke(
        app,
        _args(evalset, "composite,reinhard", "--vgg-weights", str(exact),
              "--vgg-deep-weights", str(deep), "--json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    vgg = data["vgg"]
    assert vgg["taps"] == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert vgg["content_tap"] == "relu4_1"
    assert vgg["sources"] == [
        {"taps": ["relu1_1", "relu2_1", "relu3_1"], "network": "vgg19",
         "file": "vgg3.safetensors", "approximation": False},
        {"taps": ["relu4_1", "relu5_1"], "network": "distilled-vgg19-cd16x",
         "file": deep.name, "approximation": True},
    ]  # fmt: skip
    comp, reinhard = (m["metrics"] for m in data["methods"])
    assert comp["vgg_content"] == pytest.approx(0.0, abs=1e-9) and reinhard["vgg_content"] > 0
    text = " ".join(result.stderr.split())
    assert (
        "VGG style at relu1_1..relu3_1 (VGG-19, vgg3.safetensors) + relu4_1, relu5_1 "
        f"(distilled cd16x approximation, {deep.name}); VGG content at relu4_1 "
        f"(distilled cd16x approximation, {deep.name})." in text
    ), text


def test_vgg_deep_weights_needs_vgg_weights_and_a_distilled_file(
    evalset: EvalSet, tmp_path: Path
) -> None:
    deep = write_cd16x_encoder(tmp_path / "cd16x_encoder_relu5_1.pth", depth="relu5_1")
    alone = runner.invoke(app, _args(evalset, "composite", "--vgg-deep-weights", str(deep)))
    assert alone.exit_code == 2 and "pass --vgg-weights too" in alone.stderr
    not_distilled = tmp_path / "junk.pth"
    torch.save({"conv11.weight": torch.zeros(1)}, not_distilled)
    wrong = runner.invoke(
        app,
        _args(evalset, "composite", "--vgg-weights", str(deep),
              "--vgg-deep-weights", str(not_distilled)),
    )  # fmt: skip
    assert wrong.exit_code == 2 and "Traceback" not in wrong.output
    assert len(wrong.stderr.strip().splitlines()) == 1, wrong.stderr


def test_real_distilled_taps_and_adain_relu4(
    evalset: EvalSet, shared_weights: Path, shared_cd16x_weights: Path
) -> None:
    """The real files: the exact VGG-19 to relu3_1 with the distilled relu4_1/relu5_1 taps,
    and the adain-relu4 baseline. Lab transfer moves the object's statistics towards the
    painting's, so its style distance must fall below the composite's."""
    result = runner.invoke(
        app,
        _args(evalset, "composite,reinhard,adain-relu4",
              "--adain-weights", str(shared_cd16x_weights),
              "--vgg-weights", str(shared_weights / "vgg_normalised_conv3_1.pth"),
              "--vgg-deep-weights", str(shared_cd16x_weights / "cd16x_encoder_relu5_1.pth"),
              "--json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["vgg"]["label"] == (
        "relu1_1..relu3_1 (VGG-19, vgg_normalised_conv3_1.pth) + relu4_1, relu5_1 "
        "(distilled cd16x approximation, cd16x_encoder_relu5_1.pth)"
    )
    rows = {m["method"]: m["metrics"] for m in data["methods"]}
    assert rows["reinhard"]["vgg_style"] < rows["composite"]["vgg_style"]
    assert rows["adain-relu4"]["vgg_style"] < rows["composite"]["vgg_style"]
    assert rows["adain-relu4"]["colour_swd"] < rows["composite"]["colour_swd"]
    assert rows["adain-relu4"]["bg_max_change"] == 0
