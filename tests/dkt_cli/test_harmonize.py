"""``dkt harmonize`` end to end, on a tiny model and small images.

Human-facing messages go to stderr and ``--json`` to stdout; both are checked as a user
would read them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dkt_cli.app import app
from dktnet.imageio import read_image, read_mask, write_image

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()


def dkt(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def model_args(model: Path) -> list[object]:
    return ["--model", model, "--device", "cpu"]


def flat(text: str) -> str:
    """Text with all whitespace removed, so wrapped paths can be searched for."""
    return "".join(text.split())


def leftovers(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def assert_harmonized(output: Path, composite: np.ndarray, mask: np.ndarray) -> None:
    """Same size, background byte-identical, object changed."""
    result = read_image(output)
    assert result.shape == composite.shape
    assert np.array_equal(result[mask == 0], composite[mask == 0])
    assert not np.array_equal(result[mask > 0], composite[mask > 0])


# --------------------------------------------------------------------------- single


def test_single_image_happy_path(tmp_path: Path, write_pair, tiny_model: Path) -> None:
    composite, mask = write_pair(tmp_path / "c.png", tmp_path / "m.png", height=72, width=90)
    out = tmp_path / "result" / "out.png"
    result = dkt(
        "harmonize",
        tmp_path / "c.png",
        "--mask",
        tmp_path / "m.png",
        "-o",
        out,
        *model_args(tiny_model),
    )
    assert result.exit_code == 0, result.output
    assert_harmonized(out, composite, mask)
    assert "1 harmonized, 0 skipped, 0 failed of 1" in result.stderr
    assert result.stdout == ""  # stdout stays clean without --json


def test_single_image_quiet_prints_nothing(tmp_path: Path, write_pair, tiny_model: Path) -> None:
    write_pair(tmp_path / "c.png", tmp_path / "m.png")
    out = tmp_path / "out.jpg"
    result = dkt(
        "harmonize",
        tmp_path / "c.png",
        "-m",
        tmp_path / "m.png",
        "-o",
        out,
        "-q",
        *model_args(tiny_model),
    )
    assert result.exit_code == 0, result.output
    assert result.output == ""
    assert read_image(out).shape == (64, 80, 3)


def test_module_entry_point_runs_harmonize(tmp_path: Path, write_pair, tiny_model: Path) -> None:
    """``python -m dkt_cli`` is the same application as the ``dkt`` script."""
    composite, mask = write_pair(tmp_path / "c.png", tmp_path / "m.png")
    out = tmp_path / "out.png"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "dkt_cli", "harmonize", tmp_path / "c.png", "--mask",
            tmp_path / "m.png", "-o", out, "--json", *model_args(tiny_model)]  # fmt: skip
    proc = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["done"] == 1
    assert_harmonized(out, composite, mask)


# --------------------------------------------------------------------------- folders


def _tree(tmp_path: Path, write_pair, rels: list[str]) -> dict[str, tuple]:
    """Composites under comps/ and masks under masks/ with the same relative names."""
    pairs = {}
    for i, rel in enumerate(rels):
        pairs[rel] = write_pair(tmp_path / "comps" / rel, tmp_path / "masks" / rel, seed=i)
    return pairs


def folder_args(tmp_path: Path, *extra: object) -> list[object]:
    comps, masks, out = tmp_path / "comps", tmp_path / "masks", tmp_path / "out"
    return ["harmonize", "--composites", comps, "--masks", masks, "--out", out, *extra]


def test_folder_mode_keeps_the_sub_folder_tree(tmp_path: Path, write_pair, tiny_model) -> None:
    pairs = _tree(tmp_path, write_pair, ["top.png", "a/x.png", "b/c/y.png"])
    result = dkt(*folder_args(tmp_path, *model_args(tiny_model)))
    assert result.exit_code == 0, result.output
    assert files(tmp_path / "out") == ["a/x.png", "b/c/y.png", "top.png"]
    for rel, (composite, mask) in pairs.items():
        assert_harmonized(tmp_path / "out" / rel, composite, mask)
    assert "3 harmonized, 0 skipped, 0 failed of 3" in result.stderr


def test_json_summary_on_stdout(tmp_path: Path, write_pair, tiny_model: Path) -> None:
    _tree(tmp_path, write_pair, ["a.png", "sub/b.png"])
    result = dkt(*folder_args(tmp_path, "--json", *model_args(tiny_model)))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # stdout holds nothing but the JSON
    assert (data["total"], data["done"], data["skipped"], data["failed"]) == (2, 2, 0, 0)
    assert data["failures"] == []
    assert sorted(data["outputs"]) == sorted(
        str(tmp_path / "out" / rel) for rel in ("a.png", "sub/b.png")
    )
    for key in ("seconds_total", "seconds_model", "seconds_load", "images_per_second"):
        assert isinstance(data[key], float) and data[key] >= 0, key
    assert data["backend"]["backend"] == "torch"
    assert data["backend"]["device"] == "cpu"
    assert data["backend"]["model"] == str(tiny_model)
    assert len(data["backend"]["model_sha256"]) == 64


def test_bad_files_are_reported_and_the_good_ones_written(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    comps, masks, out = tmp_path / "comps", tmp_path / "masks", tmp_path / "out"
    pairs = _tree(tmp_path, write_pair, ["good1.png", "sub/good2.png", "corrupt.png"])
    data = (comps / "corrupt.png").read_bytes()
    (comps / "corrupt.png").write_bytes(data[: len(data) // 2])  # truncated download
    write_pair(comps / "nomask.png", tmp_path / "elsewhere.png", seed=7)
    write_pair(comps / "wrongsize.png", tmp_path / "unused.png", seed=8)
    write_image(masks / "wrongsize.png", np.full((32, 32), 255, np.uint8))
    write_pair(comps / "fullmask.png", tmp_path / "unused2.png", seed=9)
    write_image(masks / "fullmask.png", np.full((64, 80), 255, np.uint8))

    result = dkt(*folder_args(tmp_path, "--json", *model_args(tiny_model)))
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert (summary["total"], summary["done"], summary["failed"]) == (6, 2, 4)
    errors = {f["key"]: f["error"] for f in summary["failures"]}
    assert set(errors) == {"corrupt", "nomask", "wrongsize", "fullmask"}
    assert "truncated or corrupt" in errors["corrupt"]
    assert str(comps / "corrupt.png") in errors["corrupt"]
    assert "no mask found" in errors["nomask"] and str(comps / "nomask.png") in errors["nomask"]
    assert "mask is 32x32 but the composite is 80x64" in errors["wrongsize"]
    assert "covers the whole image" in errors["fullmask"]
    for key in errors:  # the human report names every failed item too
        assert key in result.stderr
    assert "2 harmonized, 0 skipped, 4 failed of 6" in result.stderr

    assert files(out) == ["good1.png", "sub/good2.png"]
    assert leftovers(out) == []
    for rel in ("good1.png", "sub/good2.png"):
        assert_harmonized(out / rel, *pairs[rel])


def test_skip_existing_second_run_skips_everything(tmp_path: Path, write_pair, tiny_model) -> None:
    _tree(tmp_path, write_pair, ["a.png", "b/c.png"])
    first = dkt(*folder_args(tmp_path, *model_args(tiny_model)))
    assert first.exit_code == 0, first.output
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "out").rglob("*.png")}
    assert len(stamps) == 2

    again = dkt(*folder_args(tmp_path, *model_args(tiny_model)))
    assert again.exit_code == 1  # without a policy an existing output is an error
    assert "outputexists(use--overwriteor--skip-existing)" in flat(again.stderr)

    second = dkt(*folder_args(tmp_path, "--skip-existing", "--json", *model_args(tiny_model)))
    assert second.exit_code == 0, second.output
    data = json.loads(second.stdout)
    assert (data["total"], data["done"], data["skipped"], data["failed"]) == (2, 0, 2, 0)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps


@pytest.mark.parametrize("workers", ["0", "2"])
def test_interrupt_exits_130_with_a_summary(
    tmp_path: Path, write_pair, tiny_model: Path, monkeypatch: pytest.MonkeyPatch, workers: str
) -> None:
    """Ctrl-C during the second image: the first is written whole, the rest not started."""
    from backends.torch_backend import TorchBackend

    _tree(tmp_path, write_pair, ["a.png", "b.png", "c.png"])
    real = TorchBackend.run
    calls = {"n": 0}

    def run_then_ctrl_c(self, composite, mask):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self, composite, mask)

    monkeypatch.setattr(TorchBackend, "run", run_then_ctrl_c)
    result = dkt(*folder_args(tmp_path, "--workers", workers, "--batch", "1",
                              *model_args(tiny_model)))  # fmt: skip
    assert result.exit_code == 130
    assert "1 harmonized, 0 skipped, 0 failed of 3 (interrupted)" in result.stderr
    assert files(tmp_path / "out") == ["a.png"]
    assert leftovers(tmp_path / "out") == []


# --------------------------------------------------------------------------- usage errors


def _usage_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    text = flat(result.stderr)
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert flat(fragment) in text, (fragment, result.stderr)


def test_skip_existing_with_overwrite_is_a_usage_error(
    tmp_path: Path, write_pair, tiny_model
) -> None:
    _tree(tmp_path, write_pair, ["a.png"])
    result = dkt(*folder_args(tmp_path, "--skip-existing", "--overwrite", *model_args(tiny_model)))
    _usage_error(result, "--skip-existing and --overwrite")
    assert not (tmp_path / "out").exists()


def test_out_equal_to_composites_is_refused(tmp_path: Path, write_pair, tiny_model) -> None:
    _tree(tmp_path, write_pair, ["a.png"])
    before = (tmp_path / "comps" / "a.png").read_bytes()
    result = dkt("harmonize", "--composites", tmp_path / "comps", "--masks", tmp_path / "masks",
                 "--out", tmp_path / "comps", *model_args(tiny_model))  # fmt: skip
    _usage_error(result, "is the --composites folder", "overwrite the inputs")
    assert (tmp_path / "comps" / "a.png").read_bytes() == before
    assert files(tmp_path / "comps") == ["a.png"]


def test_mixing_single_and_folder_arguments_is_refused(
    tmp_path: Path, write_pair, tiny_model
) -> None:
    _tree(tmp_path, write_pair, ["a.png"])
    comp, mask = tmp_path / "comps" / "a.png", tmp_path / "masks" / "a.png"
    result = dkt("harmonize", comp, "--mask", mask, "-o", tmp_path / "x.png",
                 "--out", tmp_path / "out", *model_args(tiny_model))  # fmt: skip
    _usage_error(result, "not both")
    assert not (tmp_path / "x.png").exists()


def test_single_image_without_output_is_refused(tmp_path: Path, write_pair, tiny_model) -> None:
    write_pair(tmp_path / "c.png", tmp_path / "m.png")
    result = dkt(
        "harmonize", tmp_path / "c.png", "--mask", tmp_path / "m.png", *model_args(tiny_model)
    )
    _usage_error(result, "-o OUTPUT")


def test_missing_model_file_is_named(tmp_path: Path, write_pair) -> None:
    write_pair(tmp_path / "c.png", tmp_path / "m.png")
    missing = tmp_path / "models" / "nowhere.safetensors"
    result = dkt("harmonize", tmp_path / "c.png", "--mask", tmp_path / "m.png",
                 "-o", tmp_path / "out.png", "--model", missing, "--device", "cpu")  # fmt: skip
    _usage_error(result, f"{missing}: no such file")
    assert not (tmp_path / "out.png").exists()


def test_model_with_unknown_suffix_says_pass_backend(tmp_path: Path, write_pair) -> None:
    write_pair(tmp_path / "c.png", tmp_path / "m.png")
    model = tmp_path / "model.bin"
    model.write_bytes(b"\0" * 16)
    result = dkt("harmonize", tmp_path / "c.png", "--mask", tmp_path / "m.png",
                 "-o", tmp_path / "out.png", "--model", model)  # fmt: skip
    _usage_error(result, str(model), "pass --backend")


@pytest.mark.parametrize(
    ("command", "options"),
    [
        (None, ["harmonize", "demo", "info", "train"]),
        ("harmonize", ["--mask", "--output", "--composites", "--masks", "--out",
                       "--composite-pattern", "--mask-pattern", "--skip-existing",
                       "--overwrite", "--model", "--device", "--size", "--json"]),
        ("info", ["--json", "model"]),
        ("demo", ["--output", "--model", "--seed"]),
        ("train", ["--paintings", "--photos", "--masks", "--loss-network", "--steps",
                   "--batch-size", "--size", "--output"]),
    ],
)  # fmt: skip
def test_help_for_every_subcommand(command: str | None, options: list[str]) -> None:
    result = dkt(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    for option in options:
        assert option in result.output, option


# --------------------------------------------------------------------------- real data


def test_real_example_composites(shared_data: Path, tmp_path: Path, tiny_model: Path) -> None:
    """Three of the project's ready-made painterly composites, in their one-folder layout."""
    examples = shared_data / "example_composites"
    keys = sorted(
        p.name.removesuffix("_comp" + p.suffix)
        for p in examples.glob("*_comp.*")
        if (examples / f"{p.name.removesuffix('_comp' + p.suffix)}_mask.png").is_file()
    )[:3]
    assert len(keys) == 3
    work = tmp_path / "examples"
    work.mkdir()
    for key in keys:
        shutil.copy(next(examples.glob(f"{key}_comp.*")), work)
        shutil.copy(examples / f"{key}_mask.png", work)
    out = tmp_path / "out"
    result = dkt("harmonize", "--composites", work, "--masks", work, "--out", out,
                 "--composite-pattern", "{key}_comp", "--mask-pattern", "{key}_mask",
                 "--json", *model_args(tiny_model))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["done"] == 3
    assert files(out) == sorted(f"{key}.png" for key in keys)
    for key in keys:
        composite = read_image(next(work.glob(f"{key}_comp.*")))
        mask = read_mask(work / f"{key}_mask.png")
        result_image = read_image(out / f"{key}.png")
        assert result_image.shape == composite.shape
        assert np.array_equal(result_image[mask == 0], composite[mask == 0])
