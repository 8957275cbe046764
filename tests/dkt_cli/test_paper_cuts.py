"""Paper cuts a new user hit (issue 12): each test names the item it covers.

Everything runs on the suite's tiny model and on small images the tests make themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dkt.imaging.imageio import read_image, write_image
from dkt_cli.app import app

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()
WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}


def dkt(*args: object):
    return runner.invoke(app, [str(a) for a in args])


def model_args(model: Path) -> list[object]:
    return ["--model", model, "--device", "cpu"]


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def folder(tmp_path: Path, write_pair, names: list[str]) -> tuple[Path, Path]:
    comps, masks = tmp_path / "comps", tmp_path / "masks"
    for i, name in enumerate(names):
        write_pair(comps / name, masks / name, seed=i)
    return comps, masks


# --------------------------------------------------------------------------- item 7


def test_failures_off_a_terminal_are_one_whole_line_each(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    """Item 7: a log or a pipe gets ``path: what is wrong`` with the whole path, no table."""
    deep = tmp_path.joinpath(*["a-rather-long-folder-name"] * 4)
    comps, masks = folder(deep, write_pair, ["good.png"])
    write_pair(
        comps / "broken_composite_with_a_long_name.png",
        masks / "broken_composite_with_a_long_name.png",
    )
    (comps / "broken_composite_with_a_long_name.png").write_bytes(b"not a png at all")
    result = dkt("harmonize", "--composites", comps, "--masks", masks, "--out", tmp_path / "out",
                 *model_args(tiny_model))  # fmt: skip
    assert result.exit_code == 1, result.output
    bad = comps / "broken_composite_with_a_long_name.png"
    lines = [line for line in error_lines(result.stderr) if str(bad) in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{bad}: ")
    assert "not an image file" in lines[0]
    assert "┃" not in result.stderr and "│" not in result.stderr  # no table off a terminal


# --------------------------------------------------------------------------- item 8


def test_cpu_fallback_is_said_on_stderr_once(tmp_path: Path, write_pair, tiny_model: Path) -> None:
    """Item 8: ``--allow-cpu-fallback`` on a machine with no usable GPU says it runs on the CPU."""
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU: nothing falls back")
    comps, masks = folder(tmp_path, write_pair, ["a.png", "b.png"])
    result = dkt("harmonize", "--composites", comps, "--masks", masks, "--out", tmp_path / "out",
                 "--model", tiny_model, "--device", "cuda", "--allow-cpu-fallback")  # fmt: skip
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "falling back" in line]
    assert len(notes) == 1, result.stderr
    assert "cuda" in notes[0] and "CPU" in notes[0]


# --------------------------------------------------------------------------- item 9


@pytest.mark.parametrize("mode", ["single", "manifest"])
def test_unsupported_output_suffix_is_refused_before_any_work(
    tmp_path: Path, write_pair, mode: str
) -> None:
    """Item 9: ``-o x.txt`` exits 2 before the model is even loaded (the model is missing)."""
    write_pair(tmp_path / "c.png", tmp_path / "m.png")
    out = tmp_path / "x.txt"
    missing_model = tmp_path / "never-loaded.safetensors"
    if mode == "single":
        args = [tmp_path / "c.png", "--mask", tmp_path / "m.png", "-o", out]
    else:
        (tmp_path / "jobs.csv").write_text(f"composite,mask,output\nc.png,m.png,{out.name}\n")
        args = ["--manifest", tmp_path / "jobs.csv"]
    result = dkt("harmonize", *args, "--model", missing_model)
    assert result.exit_code == 2, result.output
    lines = error_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert str(out) in lines[0] and "unsupported output format '.txt'" in lines[0]
    assert "no such file" not in result.stderr  # refused before the model was looked at
    assert not out.exists()


# --------------------------------------------------------------------------- item 13


def test_model_help_names_every_model_format() -> None:
    """Item 13: ``harmonize --model`` takes .safetensors, .onnx and .engine files."""
    result = runner.invoke(app, ["harmonize", "--help"], env=WIDE)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert ".safetensors" in text and ".onnx" in text and ".engine" in text
    assert "Model file (.safetensors)." not in text


def test_train_run_options_have_help() -> None:
    """Item 13: --steps, --batch-size, --workers and --seed say what they are."""
    result = runner.invoke(app, ["train", "--help"], env=WIDE)
    assert result.exit_code == 0
    for option in ("--steps", "--batch-size", "--workers", "--seed"):
        match = re.search(rf"^│\s+{option}\s(.*)$", result.output, re.MULTILINE)
        assert match, (option, result.output)
        text = re.sub(r"<[^>]*>|\[[^\]]*\]|│", " ", match[1])  # drop metavar, range, frame
        assert len(text.split()) >= 3, (option, match[0])


def test_vgg_weights_help_points_to_a_file_in_the_repo() -> None:
    """Item 13: the method description the help points to exists."""
    result = runner.invoke(app, ["evaluate", "--help"], env=WIDE)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "METHOD.md" not in text
    assert "docs/method.md" in text
    page = Path(__file__).resolve().parents[2] / "docs" / "method.md"
    assert page.is_file()
    body = page.read_text()
    for term in ("K_c", "K_b", "standard style", "AdaIN", "relu3_1", "inverter"):
        assert term in body, term


# --------------------------------------------------------------------------- item 14


def test_demo_model_line_is_one_line_off_a_terminal(tmp_path: Path, tiny_model: Path) -> None:
    """Item 14: the demo's ``model:`` line does not wrap when stderr is a log."""
    deep = tmp_path.joinpath(*["some-long-folder"] * 4)
    deep.mkdir(parents=True)
    model = deep / "a-model-with-a-long-name.safetensors"
    model.write_bytes(tiny_model.read_bytes())
    result = dkt("demo", "-o", tmp_path / "demo.png", *model_args(model))
    assert result.exit_code == 0, result.output
    line = next(line for line in result.stderr.splitlines() if line.startswith("model:"))
    assert str(model) in line and line.rstrip().endswith(")"), result.stderr


def test_train_log_line_says_what_the_numbers_are(train_data: Path, tmp_path: Path) -> None:
    """Item 13: "12 steps of 2 x 1" becomes "1 steps, batch 2 per process x 1 process"."""
    from tests.conftest import TINY_TRAIN_SETS

    args = ["train", "--paintings", train_data / "paintings", "--photos", train_data / "photos",
            "--masks", train_data / "masks", "--steps", 1,
            "--run-dir", tmp_path / "run"]  # fmt: skip
    for item in TINY_TRAIN_SETS:
        args += ["--set", item]
    result = dkt(*args)
    assert result.exit_code == 0, result.output
    assert "1 steps, batch 2 per process x 1 process at 32 px" in " ".join(result.stderr.split())


# --------------------------------------------------------------------------- item 10


def test_info_shows_an_onnx_exports_metadata(torchscript_odd_onnx: Path) -> None:
    """Item 10: ``dkt info model.onnx`` shows the metadata ``dkt export`` embedded."""
    result = dkt("info", torchscript_odd_onnx, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["path"] == str(torchscript_odd_onnx)
    assert record["export"]["precision"] == "fp32"
    assert record["export"]["profile"]["opt"] == [1, 61, 77]
    assert len(record["sha256"]) == 64
    table = dkt("info", torchscript_odd_onnx)
    assert table.exit_code == 0, table.output
    assert "export.profile" in table.stderr and "export.precision" in table.stderr


def test_info_shows_an_engines_sidecar(tmp_path: Path) -> None:
    """Item 10: ``dkt info model.engine`` reads ``model.engine.json``; TensorRT is not needed."""
    from backends.engine_sidecar import EngineMetadata, write_sidecar
    from backends.shapes import ShapeProfile

    engine = tmp_path / "model.engine"
    engine.write_bytes(b"serialized engine bytes")
    meta = EngineMetadata(
        dkt_version="0.1.0", source_checkpoint="tiny.safetensors", source_sha256="ab" * 32,
        tensorrt_version="10.3.0", gpu_name="NVIDIA H200", compute_capability="9.0",
        precision="fp16", profile=ShapeProfile((1, 16, 16), (1, 64, 64), (2, 128, 128)),
        working_size=64,
    )  # fmt: skip
    write_sidecar(engine, meta)
    result = dkt("info", engine, "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["engine"]["tensorrt_version"] == "10.3.0"
    assert record["engine"]["gpu_name"] == "NVIDIA H200"
    assert record["file_size"] == len(b"serialized engine bytes")
    (tmp_path / "model.engine.json").unlink()
    result = dkt("info", engine)
    assert result.exit_code == 2
    assert "model.engine.json is missing" in " ".join(result.stderr.split())


# --------------------------------------------------------------------------- item 11


def test_mask_of_an_exif_rotated_composite_names_the_rotation(
    tmp_path: Path, make_pair, tiny_model: Path
) -> None:
    """Item 11: a phone photo stored sideways (orientation 6) and a mask of its raw pixels."""
    from PIL import Image

    composite, mask = make_pair(64, 80)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(composite).save(tmp_path / "c.png", exif=exif)
    write_image(tmp_path / "m.png", mask)  # 80x64, as the raw pixels; the photo reads 64x80
    out = tmp_path / "out.png"
    result = dkt("harmonize", tmp_path / "c.png", "--mask", tmp_path / "m.png", "-o", out,
                 *model_args(tiny_model))  # fmt: skip
    assert result.exit_code == 1, result.output
    line = next(line for line in result.stderr.splitlines() if "m.png" in line)
    assert "mask is 80x64 but the composite is 64x80" in line
    assert "EXIF orientation 6" in line and "the mask must match the rotated image" in line
    assert not out.exists()


# --------------------------------------------------------------------------- item 5


def test_skip_existing_redoes_an_output_that_does_not_decode(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    """Item 5: a 0-byte or truncated output is not "done"; a complete one is skipped."""
    comps, masks = folder(tmp_path, write_pair, ["empty.png", "cut.png", "fine.png"])
    out = tmp_path / "out"
    args = ["harmonize", "--composites", comps, "--masks", masks, "--out", out,
            *model_args(tiny_model)]  # fmt: skip
    assert dkt(*args).exit_code == 0
    fine_before = (out / "fine.png").read_bytes()
    (out / "empty.png").write_bytes(b"")
    data = (out / "cut.png").read_bytes()
    (out / "cut.png").write_bytes(data[: len(data) // 2])
    result = dkt(*args, "--skip-existing", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["skipped"]) == (2, 1)
    for name in ("empty.png", "cut.png"):
        assert read_image(out / name).shape == (64, 80, 3)
        notes = [line for line in result.stderr.splitlines() if str(out / name) in line]
        assert len(notes) == 1 and "does not decode" in notes[0] and "redoing" in notes[0]
    assert (out / "fine.png").read_bytes() == fine_before


# --------------------------------------------------------------------------- item 15


def test_an_earlier_output_folder_inside_the_input_is_not_scanned(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    """Item 15: ``--out data/run1`` then ``--out data/run2``: run1's results are no composites."""
    data = tmp_path / "data"
    for i, key in enumerate(["a", "b"]):
        write_pair(data / f"{key}_comp.png", data / f"{key}_mask.png", seed=i)
    args = ["harmonize", "--composites", data, "--masks", data, "--composite-pattern",
            "{key}_comp", "--mask-pattern", "{key}_mask", *model_args(tiny_model)]  # fmt: skip
    first = dkt(*args, "--out", data / "run1", "--out-pattern", "{key}_comp")
    assert first.exit_code == 0, first.output
    assert (data / "run1" / ".dkt-output").is_file()
    second = dkt(*args, "--out", data / "run2", "--json")
    assert second.exit_code == 0, second.output
    summary = json.loads(second.stdout)
    assert (summary["total"], summary["done"], summary["failed"]) == (2, 2, 0)
    notes = [line for line in second.stderr.splitlines() if str(data / "run1") in line]
    assert len(notes) == 1 and ".dkt-output" in notes[0], second.stderr
    assert not (data / "run2" / "run1").exists()


# --------------------------------------------------------------------------- item 2


def test_a_0_1_label_mask_marks_the_object(tmp_path: Path, make_pair, tiny_model: Path) -> None:
    """Item 2: a mask of 0 and 1 (a segmentation tool's) harmonizes like the 0/255 one."""
    composite, mask = make_pair(64, 80)
    write_image(tmp_path / "c.png", composite)
    write_image(tmp_path / "white.png", mask)
    write_image(tmp_path / "labels.png", (mask > 0).astype(np.uint8))
    for name in ("white", "labels"):
        result = dkt("harmonize", tmp_path / "c.png", "--mask", tmp_path / f"{name}.png",
                     "-o", tmp_path / f"out-{name}.png", *model_args(tiny_model))  # fmt: skip
        assert result.exit_code == 0, result.output
    labelled = read_image(tmp_path / "out-labels.png")
    assert np.array_equal(labelled, read_image(tmp_path / "out-white.png"))
    assert not np.array_equal(labelled[mask > 0], composite[mask > 0])


def test_an_empty_mask_is_a_failure_not_a_success(
    tmp_path: Path, make_pair, tiny_model: Path
) -> None:
    """Item 2: nothing to harmonize is reported for that file, and nothing is written."""
    composite, _ = make_pair(64, 80)
    write_image(tmp_path / "c.png", composite)
    write_image(tmp_path / "m.png", np.zeros((64, 80), np.uint8))
    out = tmp_path / "out.png"
    result = dkt("harmonize", tmp_path / "c.png", "--mask", tmp_path / "m.png", "-o", out,
                 *model_args(tiny_model))  # fmt: skip
    assert result.exit_code == 1, result.output
    line = next(line for line in result.stderr.splitlines() if "m.png" in line)
    assert line.startswith(f"{tmp_path / 'm.png'}: mask is empty")
    assert "0 harmonized, 0 skipped, 1 failed of 1" in result.stderr
    assert not out.exists()


def test_mask_help_states_the_label_rule() -> None:
    result = runner.invoke(app, ["harmonize", "--help"], env=WIDE)
    assert "0/1 label mask" in " ".join(result.output.split())


# --------------------------------------------------------------------------- item 3


def test_webp_output_keeps_the_background_byte_identical(
    tmp_path: Path, make_pair, tiny_model: Path
) -> None:
    """Item 3: WebP is written losslessly, so the painting outside the mask is untouched."""
    from PIL import features

    if not features.check("webp"):
        pytest.skip("this Pillow has no WebP support")
    composite, mask = make_pair(64, 80)
    write_image(tmp_path / "c.png", composite)
    write_image(tmp_path / "m.png", mask)
    out = tmp_path / "out.webp"
    result = dkt("harmonize", tmp_path / "c.png", "--mask", tmp_path / "m.png", "-o", out,
                 *model_args(tiny_model))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    written = read_image(out)
    assert np.array_equal(written[mask == 0], composite[mask == 0])


def test_jpeg_output_warns_once_per_run(tmp_path: Path, write_pair, tiny_model: Path) -> None:
    """Item 3: a lossy output format says, once, that the background is no longer exact."""
    comps, masks = folder(tmp_path, write_pair, ["a.png", "b.png", "c.png"])
    result = dkt("harmonize", "--composites", comps, "--masks", masks, "--out", tmp_path / "out",
                 "--out-suffix", ".jpg", *model_args(tiny_model))  # fmt: skip
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1, result.stderr
    assert "no longer byte-identical" in warnings[0]


# --------------------------------------------------------------------------- item 1


class _GreedyBackend:
    """Runs out of memory on images wider than 60 px, as a model on a huge working size does."""

    on_cpu = True
    working_size = None
    min_input_hw = (9, 9)

    def working_bytes(self, height: int, width: int) -> int | None:
        return None  # no estimate: only the MemoryError tells

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if composite.shape[-1] > 60:
            raise MemoryError
        return np.clip(composite + 0.2 * mask, 0.0, 1.0).astype(np.float32)


def _run_big_and_small(tmp_path: Path, write_pair, harmonizer, workers: int):
    """A folder of an 80x64 and a 48x40 pair, run serially (0) or pipelined; (comps, summary)."""
    from dkt.inference.jobs import run_jobs
    from dkt.inference.pairing import plan_folder
    from dkt.inference.pipeline import run_pipelined

    comps, masks = tmp_path / "comps", tmp_path / "masks"
    write_pair(comps / "big.png", masks / "big.png", height=64, width=80)
    write_pair(comps / "small.png", masks / "small.png", height=40, width=48)
    jobs = plan_folder(comps, masks, tmp_path / "out")
    if workers:
        return comps, run_pipelined(jobs, harmonizer, workers=workers, batch=2)
    return comps, run_jobs(jobs, harmonizer)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_file_too_big_for_memory_fails_alone(tmp_path: Path, write_pair, workers: int) -> None:
    """Item 1: a MemoryError is that file's failure, in one line; the folder goes on."""
    from dkt.inference.harmonizer import Harmonizer

    harmonizer = Harmonizer(_GreedyBackend(), 0)  # type: ignore[arg-type]
    comps, summary = _run_big_and_small(tmp_path, write_pair, harmonizer, workers)
    assert (summary.done, summary.failed) == (1, 1)
    error = summary.failures[0].error
    assert error.startswith(f"{comps / 'big.png'}: not enough memory") and "--size" in error
    assert "\n" not in error
    assert (tmp_path / "out" / "small.png").is_file()
    assert not (tmp_path / "out" / "big.png").exists()


class _EstimatingBackend(_GreedyBackend):
    """Says up front that it needs 1 kB per working pixel, and never runs out itself."""

    def working_bytes(self, height: int, width: int) -> int:
        return 1000 * height * width

    def run(self, composite: np.ndarray, mask: np.ndarray) -> np.ndarray:
        return np.clip(composite + 0.2 * mask, 0.0, 1.0).astype(np.float32)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_file_over_the_memory_budget_is_refused_alone_before_it_runs(
    tmp_path: Path, write_pair, workers: int
) -> None:
    """Item 1, the budget: the file the memory cannot hold fails in one line, unrun."""
    from dkt.inference.harmonizer import Harmonizer

    harmonizer = Harmonizer(_EstimatingBackend(), 0)  # type: ignore[arg-type]
    harmonizer.memory_left = lambda: 1000 * 50 * 50
    comps, summary = _run_big_and_small(tmp_path, write_pair, harmonizer, workers)
    assert (summary.done, summary.failed) == (1, 1)
    error = summary.failures[0].error
    assert error.startswith(f"{comps / 'big.png'}: working size 80x64 needs about")
    assert error.endswith("pass a smaller --size") and "\n" not in error
    assert (tmp_path / "out" / "small.png").is_file()
    assert not (tmp_path / "out" / "big.png").exists()


def test_size_far_above_the_image_runs_at_the_images_size(
    tmp_path: Path, write_pair, tiny_model: Path
) -> None:
    """Item 1: ``--size 100000`` on a 64x80 image gives what ``--size 0`` gives, at once."""
    write_pair(tmp_path / "c.png", tmp_path / "m.png")
    outputs = []
    for size in (0, 100_000):
        out = tmp_path / f"out-{size}.png"
        result = dkt("harmonize", tmp_path / "c.png", "--mask", tmp_path / "m.png", "-o", out,
                     "--size", size, *model_args(tiny_model))  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs.append(read_image(out))
    assert np.array_equal(outputs[0], outputs[1])


# --------------------------------------------------------------------------- item 12


def _train_args(data: Path, run: Path, *extra: object) -> list[object]:
    from tests.conftest import TINY_TRAIN_SETS

    args = ["train", "--paintings", data / "paintings", "--photos", data / "photos",
            "--masks", data / "masks", "--steps", 1, "--run-dir", run]  # fmt: skip
    for item in TINY_TRAIN_SETS:
        args += ["--set", item]
    return [*args, *extra]


def test_a_corrupt_painting_stops_training_before_the_first_step(
    train_data: Path, tmp_path: Path
) -> None:
    """Item 12: every file's header is checked at the start, not when the file is drawn."""
    bad = train_data / "paintings" / "p3.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n but then nothing an image has")
    run = tmp_path / "run"
    result = dkt(*_train_args(train_data, run))
    assert result.exit_code == 2, result.output
    lines = error_lines(result.stderr)
    assert len(lines) == 1 and str(bad) in lines[0], result.stderr
    assert "1 of 12 image files fail to open" in lines[0]
    assert not run.exists()  # stopped before the run directory, let alone a step


def test_skip_bad_names_the_files_it_leaves_out(train_data: Path, tmp_path: Path) -> None:
    """Item 12: ``--skip-bad`` says which files it skipped, in the log and in the run folder."""
    bad_painting = train_data / "paintings" / "p3.png"
    bad_painting.write_bytes(b"")
    bad_mask = train_data / "masks" / "ph1_obj01.png"
    bad_mask.write_bytes(b"GIF89a, or so it claims")
    run = tmp_path / "run"
    result = dkt(*_train_args(train_data, run, "--skip-bad"))
    assert result.exit_code == 0, result.output
    text = " ".join(result.stderr.split())
    assert "checked 12 image files: 2 fail to open" in text
    line = next(line for line in result.stderr.splitlines() if "skipped 2 unreadable" in line)
    assert str(bad_painting) in line and str(bad_mask) in line
    listed = (run / "skipped-files.txt").read_text().splitlines()
    assert [entry.split(":")[0] for entry in listed] == [str(bad_painting), str(bad_mask)]
    assert "5 paintings, 2 foregrounds" in text


# --------------------------------------------------------------------------- item 4


@pytest.mark.parametrize(
    ("source", "suffix"), [(".png", ".png"), (".png", ".tif"), (".tif", ".png")]
)
def test_a_16_bit_input_gives_a_16_bit_output_with_its_background_exact(
    tmp_path: Path, make_pair, tiny_model: Path, source: str, suffix: str
) -> None:
    """Item 4: a 48-bit PNG came back as 8 bits; now the output has the input's depth."""
    import tifffile

    from tests.imaging.test_wide_io import save_png16

    composite8, mask = make_pair(64, 80)
    rng = np.random.default_rng(5)
    composite = composite8.astype(np.uint16) * 257 + rng.integers(0, 257, composite8.shape)
    composite = composite.astype(np.uint16)  # real low bytes: an 8-bit path loses them
    source_path = tmp_path / f"c{source}"
    if source == ".png":
        save_png16(source_path, composite)
    else:
        tifffile.imwrite(source_path, composite, photometric="rgb", compression="zlib")
    write_image(tmp_path / "m.png", mask)
    out = tmp_path / f"out{suffix}"
    result = dkt("harmonize", source_path, "--mask", tmp_path / "m.png", "-o", out,
                 *model_args(tiny_model))  # fmt: skip
    assert result.exit_code == 0, result.output
    written = read_image(out, keep_depth=True)
    assert written.dtype == np.uint16, "the output lost the input's 16 bits"
    assert np.array_equal(written[mask == 0], composite[mask == 0])
    assert not np.array_equal(written[mask > 0], composite[mask > 0])
