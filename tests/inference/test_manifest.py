"""Tests for ``dkt.inference.manifest.plan_manifest``: explicit job lists in CSV or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dkt.csvcells import guard_row
from dkt.errors import ManifestError
from dkt.inference.manifest import plan_manifest


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_rows_become_jobs_relative_to_the_manifest(tmp_path: Path) -> None:
    manifest = _write(
        tmp_path / "lists" / "jobs.csv",
        "id,composite,mask,output\n"
        "1,../in/a.jpg,../in/a_mask.png,out/a.png\n"
        "\n"
        f"2,{tmp_path}/in/b.jpg,masks/b.png,out/sub/b.png\n",
    )
    jobs = plan_manifest(manifest)
    base = tmp_path / "lists"
    assert [(j.key, j.composite, j.mask, j.output) for j in jobs] == [
        ("out/a.png", base / "../in/a.jpg", base / "../in/a_mask.png", base / "out/a.png"),
        ("out/sub/b.png", tmp_path / "in/b.jpg", base / "masks/b.png", base / "out/sub/b.png"),
    ]


def test_jsonl_rows_become_jobs(tmp_path: Path) -> None:
    rows = [{"composite": "a.jpg", "mask": "a_m.png", "output": "o/a.png", "extra": 1},
            {"composite": "b.jpg", "mask": "b_m.png", "output": "o/b.png"}]  # fmt: skip
    manifest = _write(tmp_path / "jobs.jsonl", "\n".join(json.dumps(r) for r in rows) + "\n\n")
    jobs = plan_manifest(manifest)
    assert [j.key for j in jobs] == ["o/a.png", "o/b.png"]
    assert jobs[1].mask == tmp_path / "b_m.png"


def test_csv_with_a_spreadsheet_byte_order_mark(tmp_path: Path) -> None:
    manifest = tmp_path / "jobs.csv"
    manifest.write_bytes(b"\xef\xbb\xbfcomposite,mask,output\r\na.jpg,a.png,o.png\r\n")
    assert [j.key for j in plan_manifest(manifest)] == ["o.png"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("jobs.csv", "composite,output\na.jpg,o.png\n", "jobs.csv:1: the header must name"),
        ("jobs.csv", "composite,mask,output\na.jpg,,o.png\n", "jobs.csv:2: empty 'mask'"),
        ("jobs.csv", "composite,mask,output\na,b,c\nd,e,f,g\n", "jobs.csv:3: more values"),
        ("jobs.csv", "composite,mask,output\na,b\n", "jobs.csv:2: missing 'output'"),
        ("jobs.jsonl", '{"composite": "a", "mask": "b", "output": "c"}\n{"composite": "a",\n',
         "jobs.jsonl:2: not valid JSON"),
        ("jobs.jsonl", '["a", "b", "c"]\n', "jobs.jsonl:1: expected an object"),
        ("jobs.jsonl", '{"composite": "a", "mask": 3, "output": "c"}\n',
         "jobs.jsonl:1: 'mask' must be a path"),
        ("jobs.jsonl", '{"composite": "a", "output": "c"}\n', "jobs.jsonl:1: missing 'mask'"),
        ("jobs.csv", "composite,mask,output\na,b,o.png\nc,d,./o.png\n",
         "jobs.csv:3: output ./o.png is already written by line 2"),
        ("jobs.csv", "composite,mask,output\na.png,b.png,o.png\nc.png,d.png,a.png\n",
         "jobs.csv:3: output a.png would overwrite an input (line 2)"),
        ("jobs.csv", "composite,mask,output\n", "jobs.csv: lists no images"),
    ],
)  # fmt: skip
def test_malformed_manifests_are_refused_naming_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    manifest = _write(tmp_path / name, text)
    with pytest.raises(ManifestError) as excinfo:
        plan_manifest(manifest)
    assert str(excinfo.value).startswith(str(tmp_path / message.split(":")[0]))
    assert message.split(":", 1)[1] in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_wrong_suffix_missing_file_and_binary_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match=r"use a \.csv file"):
        plan_manifest(_write(tmp_path / "jobs.txt", "a,b,c\n"))
    with pytest.raises(ManifestError, match="no such file"):
        plan_manifest(tmp_path / "missing.csv")
    binary = tmp_path / "jobs.csv"
    binary.write_bytes(b"composite,mask,output\n\xff\xfe\x00\x01,b,c\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        plan_manifest(binary)


def test_a_nul_in_a_path_is_refused_by_line_and_column(tmp_path: Path) -> None:
    """It was ``ValueError: embedded null byte`` with a traceback (issue 26 item 11)."""
    row = {"composite": "a\u0000.png", "mask": "m.png", "output": "o.png"}
    manifest = _write(tmp_path / "jobs.jsonl", json.dumps(row))
    with pytest.raises(ManifestError, match=r"jobs.jsonl:1: 'composite' .*contains a NUL"):
        plan_manifest(manifest)


def test_a_path_of_megabytes_is_refused_without_printing_it_whole(tmp_path: Path) -> None:
    row = {"composite": "c.png", "mask": "m.png", "output": "o" * 1_000_000 + ".png"}
    manifest = _write(tmp_path / "jobs.jsonl", "\n" + json.dumps(row))
    with pytest.raises(ManifestError) as caught:
        plan_manifest(manifest)
    message = str(caught.value)
    assert message.startswith(f"{manifest}:2: 'output' ")
    assert "over the file system's limit of 255 bytes" in message
    assert len(message) < 400


# --------------------------------------------------------------------------- one rule for names

_ROW = ("a.png", "m.png", "o.png")


def _manifest(tmp_path: Path, fmt: str, names: list[str], values: list[str]) -> Path:
    """The same row in either format: CSV columns or the keys of one JSON object."""
    if fmt == "csv":
        return _write(tmp_path / "jobs.csv", ",".join(names) + "\n" + ",".join(values) + "\n")
    pairs = ", ".join(
        f"{json.dumps(n)}: {json.dumps(v)}" for n, v in zip(names, values, strict=True)
    )
    return _write(tmp_path / "jobs.jsonl", "{" + pairs + "}\n")


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_other_names_are_ignored_and_spaces_around_names_too(tmp_path: Path, fmt: str) -> None:
    """Issue 26: one rule for CSV columns and JSON keys (a JSON ' mask' was 'missing')."""
    manifest = _manifest(tmp_path, fmt, ["id", "composite", " mask ", "output", "seed"],
                         ["7", *_ROW, "3"])  # fmt: skip
    [job] = plan_manifest(manifest)
    assert (job.composite, job.mask, job.output) == tuple(tmp_path / p for p in _ROW)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
@pytest.mark.parametrize(
    ("names", "values", "line", "message"),
    [
        (["composite", "mask", "output", "output"], [*_ROW, "x.png"], 1,
         "'output' is given twice"),
        (["composite", "mask", "output", "Output"], [*_ROW, "x.png"], 1,
         "'Output' is not a known name; write 'output'"),
        (["Composite", "mask", "output"], list(_ROW), 1,
         "'Composite' is not a known name; write 'composite'"),
        (["composite", "mask", "output", ""], [*_ROW, "x.png"], 2,
         "value 'x.png' has an empty name"),
    ],
)  # fmt: skip
def test_names_that_hide_a_path_are_refused_in_both_formats(
    tmp_path: Path, fmt: str, names: list[str], values: list[str], line: int, message: str
) -> None:
    """Before, JSON kept the last of two keys and CSV the last of two columns, silently."""
    manifest = _manifest(tmp_path, fmt, names, values)
    line = line if fmt == "csv" else 1  # a JSON object is one line: names and values
    with pytest.raises(ManifestError) as caught:
        plan_manifest(manifest)
    assert str(caught.value).startswith(f"{manifest}:{line}: {message}")


# --------------------------------------------------------------------------- confinement


@pytest.mark.parametrize("output", ["../x.png", "sub/../../x.png", "/etc/dkt-x.png"])
def test_outputs_outside_the_manifests_folder_are_refused(tmp_path: Path, output: str) -> None:
    """Issue 26: a manifest could write (and with --overwrite replace) any writable file."""
    rows = f"composite,mask,output\na.png,m.png,ok.png\nb.png,n.png,{output}\n"
    manifest = _write(tmp_path / "lists" / "jobs.csv", rows)
    with pytest.raises(ManifestError) as caught:
        plan_manifest(manifest)
    assert str(caught.value) == (
        f"{manifest}:3: output {output} is outside the manifest's folder; pass --output-root "
        "DIR to allow results under DIR"
    )


def test_a_link_out_of_the_folder_does_not_escape_it(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "results").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    manifest = _write(tmp_path / "lists" / "jobs.csv", "composite,mask,output\na,m,results/o.png\n")
    with pytest.raises(ManifestError, match="outside the manifest's folder"):
        plan_manifest(manifest)


def test_output_root_states_where_outputs_may_go(tmp_path: Path) -> None:
    manifest = _write(tmp_path / "lists" / "jobs.csv",
                      "composite,mask,output\na.png,m.png,../out/x.png\n")  # fmt: skip
    [job] = plan_manifest(manifest, output_root=tmp_path / "out")
    assert job.output == tmp_path / "lists" / "../out/x.png"
    with pytest.raises(ManifestError, match=r"outside --output-root .*/sub;"):
        plan_manifest(manifest, output_root=tmp_path / "sub")


def test_cells_written_as_text_read_back_as_the_names_they_were(tmp_path: Path) -> None:
    """``dkt data make-composites`` writes a cell a spreadsheet would run with a quote in
    front; the manifest's reader takes the quote off again."""
    names = ["-a.jpg", "=a_mask.png", "@a.png"]
    manifest = _write(tmp_path / "jobs.csv", "composite,mask,output\n" + ",".join(guard_row(names)))
    [job] = plan_manifest(manifest)
    assert (job.composite, job.mask, job.output) == tuple(tmp_path / n for n in names)
