"""The README's Python examples, run as written on files the test makes beside them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

README = Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.usefixtures("one_thread")


def python_examples() -> list[str]:
    """The ```python blocks of the README's "## Python" section, in order."""
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Python\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def _write_inputs(folder: Path) -> None:
    """The files the examples name: a composite and mask, a painting and a cut-out, folders."""
    from dkt.demo.samples import make_demo_sample

    sample = make_demo_sample(128, 160, seed=3)
    Image.fromarray(sample.composite).save(folder / "composite.jpg", quality=95)
    Image.fromarray(sample.mask).save(folder / "mask.png")
    Image.fromarray(sample.painting).save(folder / "painting.jpg", quality=95)
    ys, xs = np.nonzero(sample.mask)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    cutout = np.dstack([sample.composite[box], sample.mask[box]])
    Image.fromarray(cutout, "RGBA").save(folder / "cutout.png")
    for sub in ("comps", "masks"):
        (folder / sub).mkdir()
    for key in ("a", "b"):
        Image.fromarray(sample.composite).save(folder / "comps" / f"{key}.png")
        Image.fromarray(sample.mask).save(folder / "masks" / f"{key}.png")


def test_the_readme_has_python_examples() -> None:
    examples = python_examples()
    assert len(examples) >= 2 and "dkt.Harmonizer()" in examples[0]


def test_the_readme_python_examples_run(tmp_path: Path, monkeypatch, capsys) -> None:
    _write_inputs(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for example in python_examples():
        exec(compile(example, str(README), "exec"), namespace)  # the README's own code
    assert (tmp_path / "harmonized.png").is_file()
    assert sorted(p.name for p in (tmp_path / "results").glob("*.png")) == ["a.png", "b.png"]
    assert capsys.readouterr().out.splitlines()[-1] == "2 harmonized, 0 failed"
