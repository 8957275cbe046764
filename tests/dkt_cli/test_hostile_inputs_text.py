"""Hostile names and text in what ``dkt harmonize`` prints, and the paper cuts of issue 26.

One case per kind, as in ``test_hostile_inputs.py``: the exit code, the one line that names
the file and what is wrong, and no partial or wrong output left behind. A file name holding
an escape sequence or a newline must come out escaped in every human-readable line (as
``--json`` always had it), never clear the screen or start a forged log line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dkt.imaging.imageio import write_image
from dkt.inference import progress
from dkt.inference.pairing import OUTPUT_MARKER
from dkt_cli import console
from dkt_cli.app import app
from tests.conftest import synthetic_pair

pytestmark = pytest.mark.usefixtures("one_thread")

runner = CliRunner()

#: Clears the screen, then starts a line of its own that reads like dkt's.
HOSTILE = "bad\x1b[2J\nerror: all good"
SHOWN = "bad\\x1b[2J\\nerror: all good"


def dkt(model: Path, *args: object):
    return runner.invoke(app, ["harmonize", *map(str, args), "--model", str(model),
                               "--device", "cpu"])  # fmt: skip


def _pair(composite: Path, mask: Path, seed: int = 0) -> None:
    image, alpha = synthetic_pair(40, 48, seed)
    write_image(composite, image)
    write_image(mask, alpha)


def _folder(tmp: Path, names: list[str]) -> tuple[Path, Path]:
    comps, masks = tmp / "comps", tmp / "masks"
    for i, name in enumerate(names):
        _pair(comps / f"{name}.png", masks / f"{name}.png", seed=i)
    return comps, masks


def _leftovers(folder: Path) -> list[str]:
    """Hidden temporaries: a partial output."""
    if not folder.is_dir():
        return []
    return [p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != OUTPUT_MARKER]


def _assert_escaped(stderr: str) -> None:
    assert "\x1b" not in stderr
    assert not any(line.startswith("error: all good") for line in stderr.splitlines())


# --------------------------------------------------------------------------- escaping (item 12)


def test_a_hostile_name_in_a_failure_line_is_escaped(tmp_path: Path, tiny_model: Path) -> None:
    comps, masks = _folder(tmp_path, ["ok", HOSTILE])
    (comps / f"{HOSTILE}.png").write_bytes(b"not an image")
    result = dkt(tiny_model, "--composites", comps, "--masks", masks, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    _assert_escaped(result.stderr)
    [line] = [line for line in result.stderr.splitlines() if "not an image file" in line]
    assert line.startswith(f"{comps}/{SHOWN}.png: ")
    assert (tmp_path / "out" / "ok.png").is_file()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [OUTPUT_MARKER, "ok.png"]


def test_a_hostile_name_in_the_failure_table_is_escaped(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a terminal the failures are a table; its cells are escaped like the lines."""
    monkeypatch.setattr(console.err, "_force_terminal", True)
    comps, masks = _folder(tmp_path, [HOSTILE])
    (masks / f"{HOSTILE}.png").unlink()
    result = dkt(tiny_model, "--composites", comps, "--masks", masks, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    _assert_escaped(result.stderr)
    assert "no mask found" in result.stderr and SHOWN in result.stderr
    assert "┃" in result.stderr  # the table, not the plain lines
    assert not (tmp_path / "out" / f"{HOSTILE}.png").exists()


def test_a_hostile_name_in_an_error_line_is_escaped(tmp_path: Path, tiny_model: Path) -> None:
    _pair(tmp_path / "c.png", tmp_path / "m.png")
    output = tmp_path / f"{HOSTILE}.txt"
    result = dkt(tiny_model, tmp_path / "c.png", "--mask", tmp_path / "m.png", "-o", output)
    assert result.exit_code == 2, result.output
    _assert_escaped(result.stderr)
    assert result.stderr.startswith(f"error: {tmp_path}/{SHOWN}.txt: unsupported output format")
    assert len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "m.png"]


def test_a_hostile_name_in_a_note_is_escaped(tmp_path: Path, tiny_model: Path) -> None:
    comps, masks = _folder(tmp_path, [HOSTILE])
    out = tmp_path / "out"
    out.mkdir()
    (out / f"{HOSTILE}.png").write_bytes(b"\x89PNG\r\n\x1a\n")  # an interrupted copy
    result = dkt(tiny_model, "--composites", comps, "--masks", masks, "--out", out,
                 "--skip-existing")  # fmt: skip
    assert result.exit_code == 0, result.output
    _assert_escaped(result.stderr)
    [line] = [line for line in result.stderr.splitlines() if "does not decode" in line]
    assert line.startswith(f"note: {out}/{SHOWN}.png: existing output does not decode")
    assert _leftovers(out) == []


# --------------------------------------------------------------------------- progress


def test_a_run_off_a_terminal_prints_progress_lines(
    tmp_path: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Off a terminal a folder run was silent until its end; --quiet keeps it silent."""
    monkeypatch.setattr(progress, "EVERY_SECONDS", 0.0)
    comps, masks = _folder(tmp_path, ["a", "b", "c"])
    result = dkt(tiny_model, "--composites", comps, "--masks", masks, "--out", tmp_path / "o")
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("harmonizing: ")]
    assert [line.split(" (")[0] for line in lines] == ["harmonizing: 1 of 3", "harmonizing: 2 of 3"]
    quiet = dkt(tiny_model, "--composites", comps, "--masks", masks, "--out", tmp_path / "q",
                "--quiet", "--json")  # fmt: skip
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""


# --------------------------------------------------------------------------- unwritable outputs


def test_an_output_that_cannot_be_written_is_refused_before_the_model_runs(
    tmp_path: Path, tiny_model: Path
) -> None:
    """It was ``c.png: FileExistsError: [Errno 17] File exists: 'afile'`` after the model ran."""
    _pair(tmp_path / "c.png", tmp_path / "m.png")
    (tmp_path / "afile").write_text("a file where the output folder should be")
    output = tmp_path / "afile" / "r.png"
    result = dkt(tiny_model, tmp_path / "c.png", "--mask", tmp_path / "m.png", "-o", output)
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: output {output} cannot be written: {tmp_path / 'afile'} is a file, not a folder\n"
    )
    assert "Error" not in result.stderr.removeprefix("error:")
    assert (tmp_path / "afile").read_text() == "a file where the output folder should be"


def test_a_pasted_run_names_the_users_files_not_its_temporary_composite(
    tmp_path: Path, tiny_model: Path
) -> None:
    """It was ``/tmp/dkt-q46k/big-on-p.png: the mask covers the whole image``."""
    painting, cutout = tmp_path / "p.png", tmp_path / "big.png"
    write_image(painting, np.full((40, 48, 3), 90, np.uint8))
    rgba = np.zeros((120, 120, 4), np.uint8)
    rgba[30:90, 30:90] = (200, 120, 60, 255)  # opaque over the whole painting at -30,-30
    Image.fromarray(rgba, "RGBA").save(cutout)
    result = dkt(tiny_model, "--painting", painting, "--object", cutout, "--at", "-30,-30",
                 "-o", tmp_path / "r.png")  # fmt: skip
    assert result.exit_code == 1, result.output
    [line] = [line for line in result.stderr.splitlines() if "covers the whole image" in line]
    assert line.startswith(f"{cutout} on {painting}: the mask covers the whole image")
    assert "dkt-" not in result.stderr
    assert not (tmp_path / "r.png").exists()


# --------------------------------------------------------------------------- manifests


def test_a_manifest_cannot_write_outside_its_folder(tmp_path: Path, tiny_model: Path) -> None:
    """With --overwrite a manifest could replace any file the user can write."""
    _pair(tmp_path / "lists" / "c.png", tmp_path / "lists" / "m.png")
    victim = tmp_path / "precious.png"
    write_image(victim, np.zeros((4, 4, 3), np.uint8))
    before = victim.read_bytes()
    manifest = tmp_path / "lists" / "jobs.csv"
    manifest.write_text("composite,mask,output\nc.png,m.png,ok.png\nc.png,m.png,../precious.png\n")
    result = dkt(tiny_model, "--manifest", manifest, "--overwrite")
    assert result.exit_code == 2, result.output
    assert result.stderr == (
        f"error: {manifest}:3: output ../precious.png is outside the manifest's folder; pass "
        "--output-root DIR to allow results under DIR\n"
    )
    assert victim.read_bytes() == before
    assert not (tmp_path / "lists" / "ok.png").exists()  # refused before any job ran
    allowed = dkt(tiny_model, "--manifest", manifest, "--overwrite", "--output-root", tmp_path)
    assert allowed.exit_code == 0, allowed.output
    assert victim.read_bytes() != before


def test_a_jsonl_key_given_twice_is_refused_like_a_csv_column(
    tmp_path: Path, tiny_model: Path
) -> None:
    """JSON kept the last of two ``output`` keys without a word."""
    _pair(tmp_path / "c.png", tmp_path / "m.png")
    manifest = tmp_path / "jobs.jsonl"
    manifest.write_text('{"composite": "c.png", "mask": "m.png", "output": "a.png", '
                        '"output": "b.png"}\n')  # fmt: skip
    result = dkt(tiny_model, "--manifest", manifest)
    assert result.exit_code == 2, result.output
    assert result.stderr == f"error: {manifest}:1: 'output' is given twice; give it once\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "jobs.jsonl", "m.png"]
