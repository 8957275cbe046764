"""Tests for ``dkt.inference.pairing``: folder planning never reads pixels, so empty files do."""

from __future__ import annotations

from pathlib import Path

import pytest

from dkt.errors import PairingError
from dkt.inference import pairing
from dkt.inference.pairing import (
    IMAGE_SUFFIXES,
    Job,
    check_output_folders,
    plan_folder,
    plan_single,
)

SAME_FOLDER = {"composite_pattern": "{key}_comp", "mask_pattern": "{key}_mask"}


def touch(root: Path, *names: str) -> None:
    """Create empty files (and their folders) under ``root``."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def rel(jobs: list[Job], root: Path) -> list[tuple[str, str, str | None, str]]:
    """Jobs as (key, composite, mask, output) strings relative to ``root``, for asserts."""
    return [
        (
            j.key,
            j.composite.relative_to(root).as_posix(),
            None if j.mask is None else j.mask.relative_to(root).as_posix(),
            j.output.relative_to(root).as_posix(),
        )
        for j in jobs
    ]


# --------------------------------------------------------------------------- pairing


def test_two_trees_pair_by_relative_path_and_keep_subfolders(tmp_path: Path) -> None:
    touch(tmp_path / "comps", "x.jpg", "a/y.JPG", "a/b/z.png", "notes.txt")
    touch(tmp_path / "masks", "x.png", "a/y.png", "a/b/z.bmp", "a/unused.png")
    jobs = plan_folder(tmp_path / "comps", tmp_path / "masks", tmp_path / "out")
    assert rel(jobs, tmp_path) == [
        ("a/b/z", "comps/a/b/z.png", "masks/a/b/z.bmp", "out/a/b/z.png"),
        ("a/y", "comps/a/y.JPG", "masks/a/y.png", "out/a/y.png"),
        ("x", "comps/x.jpg", "masks/x.png", "out/x.png"),
    ]


def test_same_folder_patterns_ignore_bg_and_dilated(tmp_path: Path) -> None:
    d = tmp_path / "ex"
    touch(
        d,
        "dph_0_comp.jpg",
        "dph_0_mask.png",
        "dph_0_bg.jpg",
        "dph_0_mask_dilated.png",
        "arto_2_comp.jpg",
        "arto_2_mask.png",
        "arto_2_bg.jpg",
        "index.csv",
    )
    jobs = plan_folder(d, d, tmp_path / "out", **SAME_FOLDER)
    assert rel(jobs, tmp_path) == [
        ("arto_2", "ex/arto_2_comp.jpg", "ex/arto_2_mask.png", "out/arto_2.png"),
        ("dph_0", "ex/dph_0_comp.jpg", "ex/dph_0_mask.png", "out/dph_0.png"),
    ]


def test_same_folder_default_composite_pattern_excludes_masks(tmp_path: Path) -> None:
    """``{key}`` composites next to ``{key}_mask`` masks: the masks are not composites."""
    d = tmp_path / "d"
    touch(d, "x.jpg", "x_mask.png", "orphan_mask.png")
    jobs = plan_folder(d, d, tmp_path / "out", mask_pattern="{key}_mask")
    assert rel(jobs, tmp_path) == [("x", "d/x.jpg", "d/x_mask.png", "out/x.png")]


def test_more_specific_composite_pattern_wins_over_catch_all_mask(tmp_path: Path) -> None:
    d = tmp_path / "d"
    touch(d, "x_comp.jpg", "x.png")
    jobs = plan_folder(d, d, tmp_path / "out", composite_pattern="{key}_comp")
    assert rel(jobs, tmp_path) == [("x", "d/x_comp.jpg", "d/x.png", "out/x.png")]


def test_masks_nested_in_composites_are_not_composites(tmp_path: Path) -> None:
    touch(tmp_path / "c", "x.jpg", "masks/x.png")
    jobs = plan_folder(tmp_path / "c", tmp_path / "c" / "masks", tmp_path / "out")
    assert rel(jobs, tmp_path) == [("x", "c/x.jpg", "c/masks/x.png", "out/x.png")]


def test_out_pattern_and_suffix(tmp_path: Path) -> None:
    touch(tmp_path / "c", "s/x.jpg")
    touch(tmp_path / "m", "s/x.png")
    jobs = plan_folder(
        tmp_path / "c", tmp_path / "m", tmp_path / "o", out_pattern="{key}_harm", out_suffix=".jpg"
    )
    assert jobs[0].output == tmp_path / "o" / "s" / "x_harm.jpg"


def test_real_example_composites_all_pair(shared_data: Path, tmp_path: Path) -> None:
    folder = shared_data / "example_composites"
    jobs = plan_folder(folder, folder, tmp_path / "out", **SAME_FOLDER)
    assert len(jobs) == 47
    assert [j.key for j in jobs] == sorted(j.key for j in jobs)
    for job in jobs:
        assert job.composite.name == f"{job.key}_comp.jpg"
        assert job.mask is not None and job.mask.name == f"{job.key}_mask.png", job.key
        assert job.output == tmp_path / "out" / f"{job.key}.png"


# --------------------------------------------------------------------------- masks


def test_missing_mask_gives_job_with_candidates(tmp_path: Path) -> None:
    touch(tmp_path / "c", "sub/x.jpg")
    (tmp_path / "m").mkdir()
    [job] = plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out")
    assert job.mask is None
    assert job.mask_candidates[0] == "sub/x.png"
    assert set(job.mask_candidates) == {f"sub/x{s}" for s in IMAGE_SUFFIXES}
    reason = job.missing_mask_reason()
    assert reason.startswith("no mask found (looked for sub/x.{png,")
    assert "\n" not in reason


def test_missing_mask_with_pattern_lists_pattern_name(tmp_path: Path) -> None:
    d = tmp_path / "d"
    touch(d, "k_comp.jpg", "k_bg.jpg")
    [job] = plan_folder(d, d, tmp_path / "out", **SAME_FOLDER)
    assert job.mask is None
    assert "k_mask.png" in job.mask_candidates


def test_suffix_preference_png_then_sorted(tmp_path: Path) -> None:
    touch(tmp_path / "c", "a.jpg", "b.jpg", "c.jpg")
    touch(tmp_path / "m", "a.jpg", "a.PNG", "a.bmp", "b.webp", "b.jpeg", "b.tif", "c.jpg")
    jobs = plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out")
    assert [j.mask.name if j.mask else None for j in jobs] == ["a.PNG", "b.jpeg", "c.jpg"]


def test_mask_lookup_ignores_folders_and_hidden(tmp_path: Path) -> None:
    touch(tmp_path / "c", "x.jpg")
    (tmp_path / "m" / "x.png").mkdir(parents=True)
    touch(tmp_path / "m", ".x.png.tmp", "x.txt")
    [job] = plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out")
    assert job.mask is None


# --------------------------------------------------------------------------- exclusions


def test_nested_out_is_excluded(tmp_path: Path) -> None:
    d = tmp_path / "d"
    touch(d, "x_comp.jpg", "x_mask.png", "out/x_comp.png", "out/deeper/y_comp.png")
    jobs = plan_folder(d, d, d / "out", **SAME_FOLDER)
    assert rel(jobs, tmp_path) == [("x", "d/x_comp.jpg", "d/x_mask.png", "d/out/x.png")]


def test_hidden_files_and_folders_ignored(tmp_path: Path) -> None:
    touch(tmp_path / "c", "x.jpg", ".x.abc123.tmp", ".y.png", ".cache/z.jpg", "s/.w.jpg")
    touch(tmp_path / "m", "x.png", "y.png", "z.png")
    jobs = plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out")
    assert [j.key for j in jobs] == ["x"]


def test_sorted_deterministic_order(tmp_path: Path) -> None:
    names = ["b.jpg", "a.jpg", "z/a.jpg", "A.jpg", "dph_10.jpg", "dph_2.jpg", "a/b.jpg"]
    touch(tmp_path / "c", *names)
    (tmp_path / "m").mkdir()
    jobs = plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out")
    keys = [j.key for j in jobs]
    assert keys == sorted(keys)
    assert keys == ["A", "a", "a/b", "b", "dph_10", "dph_2", "z/a"]
    assert plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out") == jobs


# --------------------------------------------------------------------------- refusals


def test_out_equal_to_composites_refused(tmp_path: Path) -> None:
    touch(tmp_path / "c", "x.jpg")
    touch(tmp_path / "m", "x.png")
    with pytest.raises(PairingError, match="--composites folder"):
        plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "c")
    # Same folder spelled differently still counts.
    with pytest.raises(PairingError, match="--composites folder"):
        plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "m" / ".." / "c")


def test_out_equal_to_masks_refused(tmp_path: Path) -> None:
    touch(tmp_path / "c", "x.jpg")
    touch(tmp_path / "m", "x.png")
    with pytest.raises(PairingError, match="--masks folder"):
        plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "m")


def test_missing_or_file_inputs_refused(tmp_path: Path) -> None:
    touch(tmp_path, "file.jpg")
    (tmp_path / "m").mkdir()
    with pytest.raises(PairingError, match=r"--composites .*no such folder"):
        plan_folder(tmp_path / "nope", tmp_path / "m", tmp_path / "out")
    with pytest.raises(PairingError, match=r"--composites .*not a folder"):
        plan_folder(tmp_path / "file.jpg", tmp_path / "m", tmp_path / "out")
    with pytest.raises(PairingError, match=r"--masks .*no such folder"):
        plan_folder(tmp_path / "m", tmp_path / "nope", tmp_path / "out")
    with pytest.raises(PairingError, match=r"--out .*not a folder"):
        plan_folder(tmp_path / "m", tmp_path / "m", tmp_path / "file.jpg", mask_pattern="{key}_m")


def test_same_folder_identical_patterns_refused_with_hint(tmp_path: Path) -> None:
    d = tmp_path / "d"
    touch(d, "x_comp.jpg", "x_mask.png")
    with pytest.raises(PairingError) as err:
        plan_folder(d, d, tmp_path / "out")
    message = str(err.value)
    assert "--composite-pattern '{key}_comp' --mask-pattern '{key}_mask'" in message
    assert "\n" not in message


def test_duplicate_outputs_refused_naming_both(tmp_path: Path) -> None:
    touch(tmp_path / "c", "s/a.jpg", "s/a.png")
    touch(tmp_path / "m", "s/a.png")
    with pytest.raises(PairingError) as err:
        plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out")
    assert "s/a.jpg" in str(err.value) and "s/a.png" in str(err.value)


def test_output_landing_on_an_input_refused(tmp_path: Path) -> None:
    """``--composites`` nested in ``--out``: an output could overwrite a composite."""
    # o/c/c/x.jpg (key c/x) writes o/c/x.png, which is the composite o/c/x.png.
    touch(tmp_path / "o" / "c", "x.png", "c/x.jpg")
    touch(tmp_path / "m", "x.png", "c/x.png")
    with pytest.raises(PairingError, match="overwrite an input"):
        plan_folder(tmp_path / "o" / "c", tmp_path / "m", tmp_path / "o")


@pytest.mark.parametrize(
    ("option", "pattern", "fragment"),
    [
        ("composite_pattern", "comp", "exactly once"),
        ("mask_pattern", "{key}_{key}", "exactly once"),
        ("out_pattern", "{name}{key}", "placeholder"),
        ("mask_pattern", "masks/{key}", "not a path"),
        ("composite_pattern", ".{key}", "hidden"),
        ("mask_pattern", "{key}.png", "extension"),
    ],
)
def test_invalid_patterns_refused(tmp_path: Path, option: str, pattern: str, fragment: str) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "m").mkdir()
    flag = "--" + option.replace("_", "-")
    with pytest.raises(PairingError, match=fragment) as err:
        plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out", **{option: pattern})
    assert str(err.value).startswith(flag)


def test_invalid_out_suffix_refused(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "m").mkdir()
    with pytest.raises(PairingError, match="--out-suffix"):
        plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out", out_suffix="png")


def test_pattern_literals_are_escaped(tmp_path: Path) -> None:
    d = tmp_path / "d"
    touch(d, "[v2]x.jpg", "v2x.jpg", "x+m.png")
    jobs = plan_folder(
        d, d, tmp_path / "out", composite_pattern="[v2]{key}", mask_pattern="{key}+m"
    )
    assert rel(jobs, tmp_path) == [("x", "d/[v2]x.jpg", "d/x+m.png", "out/x.png")]


# --------------------------------------------------------------------------- single


def test_plan_single(tmp_path: Path) -> None:
    job = plan_single(tmp_path / "dph_13_comp.jpg", tmp_path / "m.png", tmp_path / "o.png")
    assert job.key == "dph_13_comp"
    assert job.mask == tmp_path / "m.png"
    assert job.output == tmp_path / "o.png"


def test_plan_single_refuses_overwriting_inputs(tmp_path: Path) -> None:
    comp, mask = tmp_path / "c.png", tmp_path / "m.png"
    touch(tmp_path, "c.png", "m.png")
    with pytest.raises(PairingError, match="composite"):
        plan_single(comp, mask, tmp_path / "." / "c.png")
    with pytest.raises(PairingError, match="mask"):
        plan_single(comp, mask, mask)
    with pytest.raises(PairingError, match="composite itself"):
        plan_single(comp, comp, tmp_path / "o.png")


# --------------------------------------------------------------------------- impossible names


def test_an_output_name_over_the_file_systems_limit_is_refused_shortened(tmp_path: Path) -> None:
    """Refused while planning, in one line that shows the name cut short (issue 26 item 9)."""
    long = tmp_path / ("x" * 300 + ".png")
    with pytest.raises(PairingError) as caught:
        plan_single(tmp_path / "c.png", tmp_path / "m.png", long)
    message = str(caught.value)
    assert "over the file system's limit of 255 bytes" in message
    assert "(304 bytes)" in message and "x" * 80 not in message
    assert "\n" not in message
    plan_single(tmp_path / "c.png", tmp_path / "m.png", tmp_path / ("x" * 251 + ".png"))


def test_an_out_pattern_making_names_too_long_is_refused_before_any_work(tmp_path: Path) -> None:
    touch(tmp_path, "c/a.png", "m/a.png")
    pattern = "{key}" + "y" * 260
    with pytest.raises(PairingError, match=r"--out-pattern .* over the file system's limit"):
        plan_folder(tmp_path / "c", tmp_path / "m", tmp_path / "out", out_pattern=pattern)
    assert not (tmp_path / "out").exists()


def test_a_nul_in_a_path_is_a_pairing_error_not_a_value_error_traceback(tmp_path: Path) -> None:
    with pytest.raises(PairingError, match=r"output .*a\\0b.png.*: contains a NUL character"):
        plan_single(tmp_path / "c.png", tmp_path / "m.png", tmp_path / "a\0b.png")


def test_outputs_that_cannot_be_written_are_refused_before_any_work(tmp_path: Path) -> None:
    """Issue 26: an unwritable output was found at the first write, after the model ran."""
    (tmp_path / "afile").write_text("in the way")
    with pytest.raises(PairingError, match=r"afile/r\.png cannot be written: .*afile is a file"):
        check_output_folders([tmp_path / "ok.png", tmp_path / "afile" / "r.png"])
    (tmp_path / "r.png").mkdir()
    with pytest.raises(PairingError, match=r"r\.png is a folder"):
        check_output_folders([tmp_path / "r.png"])


def test_a_folder_refusing_new_files_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Permissions, ACLs and read-only mounts are found by trying (as root, modes say nothing)."""

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path / ".dkt-write-test.x"))

    monkeypatch.setattr(pairing.tempfile, "mkstemp", refused)
    with pytest.raises(PairingError) as caught:
        check_output_folders([tmp_path / "new" / "deeper" / "r.png"])
    assert str(caught.value) == (
        f"output {tmp_path / 'new' / 'deeper' / 'r.png'} cannot be written: cannot create "
        f"files in {tmp_path} (Permission denied)"
    )


def test_checking_outputs_creates_nothing(tmp_path: Path) -> None:
    check_output_folders([tmp_path / "new" / "deeper" / "r.png", tmp_path / "s.png"])
    assert list(tmp_path.iterdir()) == []
