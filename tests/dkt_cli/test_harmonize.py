"""``dkt harmonize`` end to end, on a tiny model and small images.

Human-facing messages go to stderr and ``--json`` to stdout; both are checked as a user
would read them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dkt.imaging.imageio import read_image, read_mask, write_image
from dkt.inference.pairing import OUTPUT_MARKER
from dkt_cli.app import app

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
    """Temporary files left behind (the output-folder marker is meant to stay)."""
    return [
        str(p)
        for p in root.rglob("*")
        if p.name != OUTPUT_MARKER and (p.name.startswith(".") or p.name.endswith(".tmp"))
    ]


def files(root: Path) -> list[str]:
    """The results under ``root``, without the output-folder marker."""
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != OUTPUT_MARKER
    )


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
    """``python -m dkt`` is the same application as the ``dkt`` script."""
    composite, mask = write_pair(tmp_path / "c.png", tmp_path / "m.png")
    out = tmp_path / "out.png"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "dkt", "harmonize", tmp_path / "c.png", "--mask",
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


def test_json_reports_the_pipeline_settings_cpu_defaults_included(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    """On the CPU a batch is one image and the model leaves a core per worker."""
    from dkt.inference.cpu import pipeline_threads

    _tree(tmp_path, write_pair, ["a.png"])
    result = dkt(*folder_args(tmp_path, "--json", *model_args(tiny_model)))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pipeline"] == {
        "workers": 2, "batch": 1, "threads": pipeline_threads(2), "max_inflight_mb": 1024
    }  # fmt: skip
    result = dkt(*folder_args(tmp_path, "--json", "--overwrite", "--batch", 3, "--threads", 1,
                              "--max-inflight-mb", 0, *model_args(tiny_model)))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pipeline"] == {
        "workers": 2, "batch": 3, "threads": 1, "max_inflight_mb": None
    }  # fmt: skip


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
    written = files(tmp_path / "out")
    if workers == "0":
        assert written == ["a.png"]
    else:  # parallel readers: which image reaches the model first is not fixed
        assert len(written) == 1
        assert written[0] in {"a.png", "b.png", "c.png"}
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
        (None, ["harmonize", "demo", "info", "train", "data"]),
        ("harmonize", ["--mask", "--output", "--composites", "--masks", "--out",
                       "--composite-pattern", "--mask-pattern", "--skip-existing",
                       "--overwrite", "--model", "--device", "--size", "--json", "--upsample",
                       "--strength", "--manifest", "--shard", "--workers", "--batch",
                       "--max-pixels"]),
        ("info", ["--json", "model"]),
        ("demo", ["--output", "--model", "--seed"]),
        ("train", ["--config", "--set", "--print-config", "--resume", "--init", "--paintings",
                   "--paintings-csv", "--photos", "--masks", "--coco", "--yolo", "--loss-network",
                   "--download-weights", "--steps", "--batch-size", "--size", "--run-dir"]),
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


# --------------------------------------------------------------------------- scale


def test_pipeline_and_sequential_runs_write_the_same_images(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    pairs = _tree(tmp_path, write_pair, [f"{i}.png" for i in range(5)])
    runs = {}
    for workers in ("0", "2"):
        out = tmp_path / f"out{workers}"
        result = dkt("harmonize", "--composites", tmp_path / "comps", "--masks",
                     tmp_path / "masks", "--out", out, "--workers", workers, "--batch", "3",
                     "--json", *model_args(tiny_model))  # fmt: skip
        assert result.exit_code == 0, result.output
        runs[workers] = json.loads(result.stdout)
        assert runs[workers]["outputs"] == [str(out / f"{i}.png") for i in range(5)]
    for rel, (composite, mask) in pairs.items():
        a, b = read_image(tmp_path / "out0" / rel), read_image(tmp_path / "out2" / rel)
        assert_harmonized(tmp_path / "out2" / rel, composite, mask)
        # Batched float arithmetic may round a rare value the other way, never more.
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert (a != b).mean() < 0.01


def test_shards_split_a_folder_and_together_do_everything_once(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    rels = [f"s{i % 2}/img{i}.png" for i in range(8)]
    _tree(tmp_path, write_pair, rels)
    seen: list[str] = []
    for i in (1, 2, 3):
        result = dkt(*folder_args(tmp_path, "--shard", f"{i}/3", "--json", *model_args(tiny_model)))
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["done"] == data["total"] == len(data["outputs"])
        seen += data["outputs"]
        assert f"in shard {i}/3" in result.stderr
    assert sorted(seen) == sorted(str(tmp_path / "out" / rel) for rel in rels)
    assert files(tmp_path / "out") == sorted(rels)


@pytest.mark.parametrize("shard", ["3/2", "0/2", "two/4"])
def test_shard_that_names_no_shard_is_a_usage_error(
    tmp_path: Path, write_pair, tiny_model: Path, shard: str
) -> None:
    _tree(tmp_path, write_pair, ["a.png"])
    result = dkt(*folder_args(tmp_path, "--shard", shard, *model_args(tiny_model)))
    _usage_error(result, f"--shard {shard}", "shards count from 1")
    assert not (tmp_path / "out").exists()


def test_manifest_run_writes_where_the_rows_say(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    a = write_pair(tmp_path / "data" / "a_comp.png", tmp_path / "data" / "a_m.png")
    b = write_pair(tmp_path / "data" / "b.png", tmp_path / "other" / "b.png", seed=3)
    manifest = tmp_path / "data" / "jobs.csv"
    manifest.write_text(
        "composite,mask,output\n"
        "a_comp.png,a_m.png,results/a.png\n"
        f"b.png,{tmp_path / 'other' / 'b.png'},../elsewhere/b.png\n"
    )
    result = dkt("harmonize", "--manifest", manifest, "--output-root", tmp_path, "--json",
                 *model_args(tiny_model))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["done"] == 2
    assert_harmonized(tmp_path / "data" / "results" / "a.png", *a)
    assert_harmonized(tmp_path / "elsewhere" / "b.png", *b)


def test_malformed_manifest_is_a_one_line_usage_error(tmp_path: Path, tiny_model: Path) -> None:
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text('{"composite": "a.png", "mask": "m.png", "output": "o.png"}\n{oops\n')
    result = dkt("harmonize", "--manifest", manifest, *model_args(tiny_model))
    _usage_error(result, f"{manifest}:2: not valid JSON")
    mixed = dkt("harmonize", "--manifest", manifest, "--out", tmp_path / "o",
                *model_args(tiny_model))  # fmt: skip
    _usage_error(mixed, "--manifest lists the images itself")


def test_max_pixels_refuses_big_images_with_a_clear_reason(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    _tree(tmp_path, write_pair, ["a.png", "b.png"])
    result = dkt(*folder_args(tmp_path, "--max-pixels", "5000", "--json", *model_args(tiny_model)))
    assert result.exit_code == 1, result.output
    errors = [f["error"] for f in json.loads(result.stdout)["failures"]]
    assert len(errors) == 2
    assert (
        "image is 80x64 = 5120 pixels, over the limit of 5000 (decompression-bomb guard)"
        in (errors[0])
    )
    assert "raise --max-pixels (0: no limit)" in errors[0]
    unlimited = dkt(*folder_args(tmp_path, "--max-pixels", "0", *model_args(tiny_model)))
    assert unlimited.exit_code == 0, unlimited.output
    assert files(tmp_path / "out") == ["a.png", "b.png"]


def test_decompression_bomb_is_refused_by_default_not_decoded(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    """A PNG claiming 20000x10000 pixels (200 Mpx, 600 MB decoded) in a few hundred bytes."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            len(body).to_bytes(4, "big") + kind + body + zlib.crc32(kind + body).to_bytes(4, "big")
        )

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 10000, 8, 2, 0,
           0, 0)) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")  # fmt: skip
    _tree(tmp_path, write_pair, ["good.png"])
    (tmp_path / "comps" / "bomb.png").write_bytes(bomb)
    write_image(tmp_path / "masks" / "bomb.png", np.zeros((8, 8), np.uint8))
    result = dkt(*folder_args(tmp_path, "--json", *model_args(tiny_model)))
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    assert (data["done"], data["failed"]) == (1, 1)
    assert "over the limit of 178956970 (decompression-bomb guard)" in data["failures"][0]["error"]
    assert files(tmp_path / "out") == ["good.png"]


def test_upsample_method_is_selectable(tmp_path: Path, write_pair, tiny_model: Path) -> None:
    composite, mask = write_pair(tmp_path / "c.png", tmp_path / "m.png", height=96, width=120)
    outs = {}
    for method in ("guided", "residual"):
        outs[method] = tmp_path / f"{method}.png"
        result = dkt("harmonize", tmp_path / "c.png", "-m", tmp_path / "m.png", "-o",
                     outs[method], "--upsample", method, "--size", "48",
                     *model_args(tiny_model))  # fmt: skip
        assert result.exit_code == 0, result.output
        assert_harmonized(outs[method], composite, mask)
    assert not np.array_equal(read_image(outs["guided"]), read_image(outs["residual"]))
    bad = dkt("harmonize", tmp_path / "c.png", "-m", tmp_path / "m.png", "-o",
              tmp_path / "x.png", "--upsample", "nearest", *model_args(tiny_model))  # fmt: skip
    _usage_error(bad, "upsample must be guided or residual, got 'nearest'")


# --------------------------------------------------------------------------- style strength


def _single(tmp_path: Path, tiny_model: Path, name: str, *extra: object):
    out = tmp_path / f"{name}.png"
    result = dkt("harmonize", tmp_path / "c.png", "-m", tmp_path / "m.png", "-o", out,
                 *extra, *model_args(tiny_model))  # fmt: skip
    return result, out


@pytest.mark.parametrize("size", ["0", "48"])  # the direct path, and the transfer to full size
def test_strength_0_writes_the_composite_byte_for_byte(
    tmp_path: Path, write_pair, tiny_model: Path, size: str
) -> None:
    composite, _ = write_pair(tmp_path / "c.png", tmp_path / "m.png", height=72, width=90)
    result, out = _single(tmp_path, tiny_model, "none", "--strength", "0", "--size", size)
    assert result.exit_code == 0, result.output
    assert np.array_equal(read_image(out), composite)


def test_strength_1_is_the_default_and_half_changes_the_object_less(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    composite, mask = write_pair(tmp_path / "c.png", tmp_path / "m.png", height=72, width=90)
    results = {}
    for name, extra in {"default": (), "1": ("--strength", "1"), "0.3": ("--strength", "0.3"),
                        "0.5": ("--strength", ".5")}.items():  # fmt: skip
        result, out = _single(tmp_path, tiny_model, name, *extra)
        assert result.exit_code == 0, result.output
        results[name] = read_image(out)
        assert np.array_equal(results[name][mask == 0], composite[mask == 0]), name
    assert np.array_equal(results["1"], results["default"])
    change = {k: np.abs(v.astype(int) - composite)[mask > 0].mean() for k, v in results.items()}
    assert 0 < change["0.3"] < change["1"] and 0 < change["0.5"] < change["1"], change


def test_json_records_the_strength(tmp_path: Path, write_pair, tiny_model: Path) -> None:
    _tree(tmp_path, write_pair, ["a.png"])
    result = dkt(*folder_args(tmp_path, "--json", "--strength", "0.25", *model_args(tiny_model)))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["strength"] == 0.25
    again = dkt(*folder_args(tmp_path, "--json", "--overwrite", *model_args(tiny_model)))
    assert json.loads(again.stdout)["strength"] == 1.0


@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc", "nan", "inf", ""])
def test_a_strength_outside_0_to_1_is_a_one_line_usage_error(
    tmp_path: Path, write_pair, tiny_model: Path, value: str
) -> None:
    write_pair(tmp_path / "c.png", tmp_path / "m.png")
    result, out = _single(tmp_path, tiny_model, "x", "--strength", value)
    _usage_error(result, f"--strength {value}: give a number from 0")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()


def test_an_old_export_refuses_a_strength_saying_re_export(
    tmp_path: Path, write_pair, old_style_onnx: Path
) -> None:
    composite, mask = write_pair(tmp_path / "c.png", tmp_path / "m.png")
    result, out = _single(tmp_path, old_style_onnx, "half", "--strength", "0.5")
    _usage_error(result, "old-style.onnx was exported without a strength input", "re-export")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not out.exists()
    result, out = _single(tmp_path, old_style_onnx, "full")  # it runs at full strength
    assert result.exit_code == 0, result.output
    assert_harmonized(out, composite, mask)


# --------------------------------------------------------------------------- real signals


def _start_folder_run(tmp_path: Path, tiny_model: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "-m", "dkt", *map(str, folder_args(tmp_path)), "--size", "0",
            "--workers", "2", "--batch", "1", *extra,
            *map(str, model_args(tiny_model))]  # fmt: skip
    with _ctrl_c_reaches_children():
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env)  # fmt: skip


@contextlib.contextmanager
def _ctrl_c_reaches_children():
    """Children started here take SIGINT as Ctrl-C even when the tests run in the background.

    A shell starts a background job with SIGINT ignored, an ignored signal stays ignored
    across exec, and Python then installs no KeyboardInterrupt handler: the CLI under test
    would run to the end and the Ctrl-C test would fail for a reason that is not the CLI's.
    A handler (unlike "ignore") is reset to the default at exec.
    """
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


def _wait_for_outputs(proc: subprocess.Popen, out: Path, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.png"))) < count:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        assert time.monotonic() < deadline, "no outputs appeared"
        time.sleep(0.01)


def _assert_complete_png(path: Path) -> None:
    with Image.open(path) as img:
        img.verify()  # checksums and structure of the whole file
    with Image.open(path) as img:
        img.load()  # every pixel decodes


@pytest.fixture
def many_pairs(tmp_path: Path, write_pair) -> int:
    """40 composites large enough that a run takes a few seconds on one thread."""
    _tree(tmp_path, write_pair, [])
    for i in range(40):
        write_pair(tmp_path / "comps" / f"{i:02d}.png", tmp_path / "masks" / f"{i:02d}.png",
                   height=192, width=256, seed=i)  # fmt: skip
    return 40


def test_sigkill_midway_then_skip_existing_completes_every_output(
    tmp_path: Path, tiny_model: Path, many_pairs: int
) -> None:
    out = tmp_path / "out"
    proc = _start_folder_run(tmp_path, tiny_model)
    _wait_for_outputs(proc, out, 3)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    present = sorted(out.glob("*.png"))
    assert 3 <= len(present) < many_pairs
    for path in present:  # every file under its final name is whole
        _assert_complete_png(path)

    rerun = _start_folder_run(tmp_path, tiny_model, "--skip-existing", "--json")
    stdout, stderr = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, stderr
    data = json.loads(stdout)
    assert (data["skipped"], data["done"], data["failed"]) == (
        len(present), many_pairs - len(present), 0)  # fmt: skip
    assert sorted(files(out)) == [f"{i:02d}.png" for i in range(many_pairs)]
    assert leftovers(out) == []  # no temporary file left from the killed run
    for path in out.glob("*.png"):  # complete
        _assert_complete_png(path)


def test_ctrl_c_stops_cleanly_with_exit_130_and_a_summary(
    tmp_path: Path, tiny_model: Path, many_pairs: int
) -> None:
    out = tmp_path / "out"
    proc = _start_folder_run(tmp_path, tiny_model)
    _wait_for_outputs(proc, out, 3)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    written = sorted(p for p in out.iterdir() if p.name != OUTPUT_MARKER)
    assert f"{len(written)} harmonized, 0 skipped, 0 failed of {many_pairs} (interrupted)" in (
        " ".join(stderr.split())
    )
    assert len(written) < many_pairs
    for path in written:  # only whole outputs, no temporary files
        assert not path.name.startswith(".")
        _assert_complete_png(path)
