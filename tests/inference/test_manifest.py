"""Tests for ``dkt.inference.manifest.plan_manifest``: explicit job lists in CSV or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
