"""``dkt harmonize --painting --object`` and ``--mask alpha``: no hand-made mask needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dkt.imaging.imageio import read_image, read_mask
from dkt_cli.app import app

pytestmark = pytest.mark.usefixtures("one_thread")


def dkt(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def scene(tmp_path: Path, make_pair) -> Path:
    """A painting and an RGBA cut-out (a flat green blob, its edge half transparent)."""
    painting, _ = make_pair(64, 80, seed=1)
    Image.fromarray(painting).save(tmp_path / "painting.png")
    cut = np.zeros((24, 30, 4), np.uint8)
    cut[..., :3] = (40, 200, 60)
    cut[3:-3, 3:-3, 3] = 255
    cut[2, 2:-2, 3] = 128
    Image.fromarray(cut, "RGBA").save(tmp_path / "cutout.png")
    return tmp_path


def test_paste_and_harmonize_in_one_command(scene: Path, tiny_model: Path) -> None:
    result = dkt("harmonize", "--painting", scene / "painting.png",
                 "--object", scene / "cutout.png", "--at", "10,12", "--scale", "1.5",
                 "-o", scene / "out.png", "--save-composite", scene / "kept.png",
                 "--model", tiny_model, "--device", "cpu")  # fmt: skip
    assert result.exit_code == 0, result.output
    painting = read_image(scene / "painting.png")
    out, kept = read_image(scene / "out.png"), read_image(scene / "kept.png")
    mask = read_mask(scene / "kept_mask.png")
    ys, xs = np.nonzero(mask)
    # The cut-out scaled 1.5x is 45x36 px with its corner at --at; its middle is opaque.
    assert ys.min() >= 12 and xs.min() >= 10 and ys.max() < 12 + 36 and xs.max() < 10 + 45
    assert mask[12 + 18, 10 + 22] == 1.0
    assert np.array_equal(out[mask == 0], painting[mask == 0])
    assert np.array_equal(kept[mask == 0], painting[mask == 0])
    assert not np.array_equal(out[mask == 1], kept[mask == 1])  # the object was harmonized


def test_the_alpha_mask_gives_the_same_result_as_a_mask_file(scene: Path, tiny_model: Path) -> None:
    model = ["--model", tiny_model, "--device", "cpu"]
    first = dkt("harmonize", "--painting", scene / "painting.png", "--object",
                scene / "cutout.png", "-o", scene / "a.png", "--save-composite", scene / "c.png",
                *model)  # fmt: skip
    assert first.exit_code == 0, first.output
    rgb, alpha = read_image(scene / "c.png"), np.asarray(Image.open(scene / "c_mask.png"))
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(scene / "rgba.png")
    second = dkt("harmonize", scene / "rgba.png", "--mask", "alpha", "-o", scene / "b.png", *model)
    assert second.exit_code == 0, second.output
    assert np.array_equal(read_image(scene / "a.png"), read_image(scene / "b.png"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--object", "{d}/painting.png"], "painting.png: is not a cut-out: has no alpha"),
        (["--object", "{d}/cutout.png", "--at", "500,0"], "wholly outside the 80x64 painting"),
        (["--object", "{d}/cutout.png", "--scale", "0.01"], "it vanishes"),
        (["--object", "{d}/cutout.png", "--scale", "100000"], "too many pixels"),
        (["--object", "{d}/cutout.png", "--at", "3"], "give the position as X,Y"),
        (["--object", "{d}/cutout.png", "--save-composite", "{d}/k.jpg"], "use a .png file"),
        (["--object", "{d}/cutout.png", "--mask", "{d}/m.png"], "drop COMPOSITE, --mask"),
        ([], "--painting and --object go together"),
    ],
)
def test_bad_cutout_runs_fail_in_one_line_before_any_work(
    scene: Path, tiny_model: Path, args: list[str], message: str
) -> None:
    filled = [a.format(d=scene) for a in args]
    result = dkt("harmonize", "--painting", scene / "painting.png", *filled,
                 "-o", scene / "out.png", "--model", tiny_model)  # fmt: skip
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (scene / "out.png").exists()


def test_cutout_options_without_a_painting_are_refused(scene: Path) -> None:
    result = dkt("harmonize", scene / "painting.png", "--mask", scene / "m.png", "-o",
                 scene / "o.png", "--scale", "2")  # fmt: skip
    assert result.exit_code == 2 and "go with --painting and --object" in result.stderr


def test_mask_alpha_on_a_composite_without_alpha_fails_that_file(scene: Path, tiny_model: Path):
    result = dkt("harmonize", scene / "painting.png", "--mask", "alpha", "-o", scene / "o.png",
                 "--model", tiny_model, "--device", "cpu")  # fmt: skip
    assert result.exit_code == 1
    assert f"{scene / 'painting.png'}: has no alpha channel" in result.stderr
    assert not (scene / "o.png").exists()
