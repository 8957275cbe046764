"""The one front door (dkt.inference.run): modes, mix-ups, outputs refused up front, cut-outs
named as the user gave them, and the Python API going through the same verbs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import dkt
from backends.base import LoadOptions
from dkt.errors import DktError, PairingError, UsageError
from dkt.imaging.imageio import read_image, write_image
from dkt.inference import run as front
from dkt.inference.cpu import pipeline_threads
from dkt.inference.jobs import Existing, Failure, RunSummary
from dkt.inference.pairing import OUTPUT_MARKER
from dkt.inference.sharding import Shard


def _cutout(path: Path) -> Path:
    rgba = np.zeros((20, 24, 4), np.uint8)
    rgba[4:16, 5:19] = (200, 40, 40, 255)
    Image.fromarray(rgba, "RGBA").save(path)
    return path


def _painting(path: Path) -> Path:
    write_image(path, np.full((64, 80, 3), 90, np.uint8))
    return path


# --------------------------------------------------------------------------- modes


def test_one_composite_plans_one_job(tmp_path: Path) -> None:
    planned = front.plan(front.Inputs(tmp_path / "c.png", "m.png", tmp_path / "o.jpg"))
    assert [(job.composite, job.output) for job in planned.jobs] == [
        (tmp_path / "c.png", tmp_path / "o.jpg")
    ]
    assert planned.warnings and "JPEG" in planned.warnings[0]  # said before, not printed here


def test_mask_alpha_takes_the_composites_own_alpha(tmp_path: Path) -> None:
    planned = front.plan(front.Inputs(tmp_path / "c.png", front.ALPHA, tmp_path / "o.png"))
    assert planned.jobs[0].mask_in_alpha and planned.warnings == []


def test_folders_plan_every_pair_and_skip_an_earlier_runs_results(
    tmp_path: Path, write_pair
) -> None:
    for name in ("a", "b", "old/c"):
        write_pair(tmp_path / "comps" / f"{name}.png", tmp_path / "masks" / f"{name}.png")
    (tmp_path / "comps" / "old" / OUTPUT_MARKER).write_text("")
    inputs = front.Inputs(composites=tmp_path / "comps", masks=tmp_path / "masks",
                          out=tmp_path / "out")  # fmt: skip
    planned = front.plan(inputs)
    assert [job.key for job in planned.jobs] == ["a", "b"]
    assert len(planned.notes) == 1 and OUTPUT_MARKER in planned.notes[0]
    both = [front.plan(inputs.__class__(**{**vars(inputs), "shard": f"{i}/2"})) for i in (1, 2)]
    assert sorted(job.key for part in both for job in part.jobs) == ["a", "b"]
    assert both[0].shard == Shard(1, 2)


def test_a_manifest_plans_its_own_lines(tmp_path: Path) -> None:
    (tmp_path / "jobs.csv").write_text("composite,mask,output\nc.png,m.png,out/o.png\n")
    planned = front.plan(front.Inputs(manifest=tmp_path / "jobs.csv"))
    assert [job.output for job in planned.jobs] == [tmp_path / "out" / "o.png"]


# --------------------------------------------------------------------------- mix-ups


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ({"composite": Path("c.png"), "composites": Path("comps")},
         "give either COMPOSITE --mask -o, or --composites --masks --out, not both"),
        ({"manifest": Path("jobs.csv"), "out": Path("out")},
         "--manifest lists the images itself; drop COMPOSITE, --mask, -o and the folders"),
        ({"composite": Path("c.png")},
         "one image needs --mask MASK (or --mask alpha) and -o OUTPUT"),
        ({}, "give COMPOSITE --mask MASK -o OUTPUT, or --composites DIR --masks DIR --out DIR"),
        ({"at": "1,2"}, "--at, --scale and --save-composite go with --painting and --object"),
        ({"painting": Path("p.png")}, "--painting and --object go together: give both"),
        ({"painting": Path("p.png"), "cutout": Path("o.png"), "manifest": Path("j.csv")},
         "--painting and --object make the composite and its mask; drop COMPOSITE, --mask, "
         "the folders and --manifest"),
        ({"painting": Path("p.png"), "cutout": Path("o.png")},
         "--painting and --object need -o OUTPUT"),
        ({"composite": Path("c.png"), "mask": "m.png", "output": Path("o.png"), "shard": "1/2"},
         "--shard splits a folder or a manifest, not one image"),
        ({"composite": Path("c.png"), "output_root": Path("r")},
         "--output-root goes with --manifest: it confines the outputs a manifest lists"),
    ],
)  # fmt: skip
def test_a_mix_of_modes_is_a_usage_error_in_the_command_lines_words(
    given: dict, words: str
) -> None:
    with pytest.raises(UsageError) as info:
        front.plan(front.Inputs(**given))
    assert str(info.value) == words


def test_skip_existing_and_overwrite_contradict() -> None:
    assert front.existing_policy(True, False) is Existing.SKIP
    with pytest.raises(UsageError, match="--skip-existing and --overwrite contradict"):
        front.existing_policy(True, True)


def test_at_must_be_x_comma_y() -> None:
    assert front.parse_at("-3,40") == (-3, 40)
    with pytest.raises(UsageError, match="give the position as X,Y in pixels"):
        front.parse_at("12")


# --------------------------------------------------------------------------- outputs


def test_an_output_folder_that_is_a_file_is_refused_before_the_model_loads(
    tmp_path: Path, write_pair
) -> None:
    write_pair(tmp_path / "comps" / "a.png", tmp_path / "masks" / "a.png")
    (tmp_path / "results").write_text("a file where the results folder must go")
    planned = front.plan(front.Inputs(composites=tmp_path / "comps", masks=tmp_path / "masks",
                                      out=tmp_path / "results" / "out"))  # fmt: skip
    with pytest.raises(PairingError, match="results"):
        front.check_outputs(planned)


def test_the_api_refuses_an_unwritable_out_before_running(
    tiny_model: Path, tmp_path: Path, write_pair
) -> None:
    """dkt.Harmonizer.harmonize_folder now plans and checks as the command line does: it
    raised a bare NotADirectoryError (a traceback) from marking the folder."""
    write_pair(tmp_path / "comps" / "a.png", tmp_path / "masks" / "a.png")
    (tmp_path / "results").write_text("not a folder")
    out = tmp_path / "results" / "out"
    with dkt.Harmonizer(tiny_model, device="cpu") as h, pytest.raises(DktError) as info:
        h.harmonize_folder(tmp_path / "comps", tmp_path / "masks", out)
    assert "\n" not in str(info.value) and "results" in str(info.value)
    assert (tmp_path / "results").read_text() == "not a folder"


def test_an_unknown_output_format_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    planned = front.plan(front.Inputs(tmp_path / "c.png", "m.png", tmp_path / "o.xyz"))
    with pytest.raises(DktError, match=r"o\.xyz"):
        front.check_outputs(planned)


# --------------------------------------------------------------------------- cut-outs


def test_a_cutout_is_pasted_into_the_callers_scratch_folder(tmp_path: Path) -> None:
    painting, cutout = _painting(tmp_path / "p.png"), _cutout(tmp_path / "obj.png")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    planned = front.plan(front.Inputs(painting=painting, cutout=cutout, at="0,0",
                                      output=tmp_path / "o.png"), scratch=scratch)  # fmt: skip
    job = planned.jobs[0]
    assert job.composite.parent == scratch and job.mask is not None
    assert read_image(job.composite)[10, 10].tolist() == [200, 40, 40]


def test_a_failure_names_the_files_the_user_gave_not_the_scratch_paste(tmp_path: Path) -> None:
    painting, cutout = _painting(tmp_path / "p.png"), _cutout(tmp_path / "obj.png")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    planned = front.plan(front.Inputs(painting=painting, cutout=cutout,
                                      output=tmp_path / "o.png"), scratch=scratch)  # fmt: skip
    job = planned.jobs[0]
    summary = RunSummary(total=1, failures=[
        Failure(job.key, str(job.composite), f"{job.composite}: unreadable; {job.mask}: bad")
    ])  # fmt: skip
    planned.name_given_files(summary)
    failure = summary.failures[0]
    assert str(scratch) not in failure.error + failure.composite
    assert failure.error == f"{cutout} on {painting}: unreadable; {cutout} (its alpha): bad"


def test_a_kept_composite_is_named_as_it_is(tmp_path: Path) -> None:
    painting, cutout = _painting(tmp_path / "p.png"), _cutout(tmp_path / "obj.png")
    planned = front.plan(front.Inputs(painting=painting, cutout=cutout,
                                      save_composite=tmp_path / "kept.png",
                                      output=tmp_path / "o.png"))  # fmt: skip
    assert (tmp_path / "kept.png").is_file() and (tmp_path / "kept_mask.png").is_file()
    assert planned.given == {}


# --------------------------------------------------------------------------- model and run


def test_open_harmonizer_leaves_the_pipeline_its_cores(tiny_model: Path) -> None:
    with front.open_harmonizer(tiny_model, LoadOptions(), workers=2) as opened:
        assert opened.options.threads == pipeline_threads(2)
    with front.open_harmonizer(tiny_model, LoadOptions(threads=1), workers=2) as opened:
        assert opened.options.threads == 1


def test_run_marks_the_output_folder_and_writes_every_result(
    tiny_model: Path, tmp_path: Path, write_pair
) -> None:
    for name in ("a", "b"):
        write_pair(tmp_path / "comps" / f"{name}.png", tmp_path / "masks" / f"{name}.png")
    planned = front.plan(front.Inputs(composites=tmp_path / "comps", masks=tmp_path / "masks",
                                      out=tmp_path / "out"))  # fmt: skip
    front.check_outputs(planned)
    done = []
    with front.open_harmonizer(tiny_model, LoadOptions()) as opened:
        summary = front.run(planned, opened, front.RunOptions(workers=0), done.append)
    assert (summary.done, summary.failed, len(done)) == (2, 0, 2)
    assert (tmp_path / "out" / OUTPUT_MARKER).is_file()
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["a.png", "b.png"]
