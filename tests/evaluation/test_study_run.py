"""Tests for the study verbs a script calls: designing a study and fitting its judgments."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dkt.errors import DktError, JudgmentError, JudgmentLogError, StudyError
from dkt.evaluation.catch import CatchScreen
from dkt.evaluation.study_run import (
    FitCallbacks,
    FitRequest,
    PairsRequest,
    fit_study,
    read_items,
    write_design,
)

STRENGTH = {"composite": -1.0, "reinhard": 0.0, "dkt": 1.0}
LOG_HEADER = ["item", "method_a", "method_b", "winner", "rater", "trial", "left", "ms", "catch"]


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _judged(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def _answer(rows: list[dict[str, str]], seed: int = 0) -> list[dict[str, str]]:
    """Winners as raters with :data:`STRENGTH` would pick them."""
    rng = np.random.default_rng(seed)
    for row in rows:
        a, b = row["method_a"], row["method_b"]
        row["winner"] = a if rng.random() < 1 / (1 + np.exp(STRENGTH[b] - STRENGTH[a])) else b
    return rows


def test_write_design_from_a_folder_is_balanced_and_summarized(tmp_path: Path) -> None:
    comps = tmp_path / "comps"
    (comps / "sub").mkdir(parents=True)
    for name in ("a_comp.png", "b_comp.jpg", "sub/c_comp.png", "a_mask.png", ".d_comp.png"):
        (comps / name).write_bytes(b"")
    out = tmp_path / "design.csv"
    request = PairsRequest("composite,reinhard,dkt", str(comps), out, per_item=2, seed=3,
                           composite_pattern="{key}_comp")  # fmt: skip
    summary = write_design(request)
    rows = _rows(out)
    assert {r["item"] for r in rows} == {"a", "b", "sub/c"}  # masks and hidden files left out
    assert [r["winner"] for r in rows] == [""] * 6
    per_pair = Counter(frozenset((r["method_a"], r["method_b"])) for r in rows)
    assert (summary.per_pair_min, summary.per_pair_max) == (min(per_pair.values()), 2)
    assert summary.to_dict() == {
        "output": str(out), "comparisons": 6, "items": 3, "per_item": 2,
        "methods": ["composite", "reinhard", "dkt"], "seed": 3,
        "per_pair_min": summary.per_pair_min, "per_pair_max": 2,
    }  # fmt: skip
    assert summary.method_pairs == 3
    write_design(request)
    assert _rows(out) == rows  # same seed, same study


@pytest.mark.parametrize(
    ("methods", "items", "pattern", "message"),
    [
        ("a", "x,y", "{key}", "--methods needs at least 2"),
        ("a,b,a", "x,y", "{key}", "--methods lists a name twice"),
        ("a,b", "no/such.txt", "{key}", "--items no/such.txt: no such folder or file"),
        ("a,b", "x,y,x", "{key}", "--items: 'x' is listed more than once"),
        ("a,b", "FOLDER", "comp", "--composite-pattern 'comp' must contain {key} exactly once"),
        ("a,b", "FOLDER", "{key}_comp", "no images matching '{key}_comp'"),
    ],
)
def test_a_bad_design_request_is_one_line_and_keeps_the_old_design(
    tmp_path: Path, methods: str, items: str, pattern: str, message: str
) -> None:
    out = tmp_path / "design.csv"
    write_design(PairsRequest("p,q", "i,j", out))
    before = out.read_bytes()
    (tmp_path / "empty").mkdir()
    items = items.replace("FOLDER", str(tmp_path / "empty"))
    with pytest.raises(StudyError) as caught:
        write_design(PairsRequest(methods, items, out, composite_pattern=pattern))
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert out.read_bytes() == before


def test_read_items_takes_a_list_file_with_comments(tmp_path: Path) -> None:
    listing = tmp_path / "items.txt"
    listing.write_text("# the study set\nk1\n\n k2 \n", encoding="utf-8")
    assert read_items(str(listing)) == ["k1", "k2"]
    listing.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(StudyError, match="the file lists no items"):
        read_items(str(listing))


def test_fit_study_recovers_the_order_of_the_methods(tmp_path: Path) -> None:
    design = tmp_path / "design.csv"
    items = ",".join(f"i{k}" for k in range(30))
    write_design(PairsRequest("composite,reinhard,dkt", items, design, per_item=9))
    judged = _judged(tmp_path / "judged.csv", _answer(_rows(design)))
    fitted = fit_study(FitRequest(judged, bootstrap=50))
    ranked = [fitted.result.methods[i] for i in fitted.result.ranking()]
    assert ranked == ["dkt", "reinhard", "composite"]
    data = fitted.to_dict()
    assert data["file"] == str(judged) and data["judgments"] == 270
    assert data["bootstrap"]["by"] == "items"  # 30 items: whole items are resampled
    assert data["catch"]["catch_trials"] == 0
    three = [r for r in _rows(judged) if r["item"] in ("i0", "i1", "i2")]
    few = _judged(tmp_path / "few.csv", three)
    assert fit_study(FitRequest(few, bootstrap=10)).to_dict()["bootstrap"]["by"] == "judgments"


def _log(path: Path, attentive: dict[str, bool]) -> Path:
    """A study log: each rater answers 60 trials and 4 composite catch trials."""
    rows = []
    for rater, good in attentive.items():
        design = [{"item": f"i{t % 20}", "method_a": "dkt", "method_b": "reinhard",
                   "trial": str(t + 1), "catch": ""} for t in range(60)]  # fmt: skip
        for row in _answer(design, seed=len(rows)):
            rows.append({**row, "rater": rater, "left": "dkt", "ms": "700"})
        for k in range(4):
            rows.append({"item": f"i{k}", "method_a": "composite", "method_b": "dkt",
                         "winner": "dkt" if good else "composite", "rater": rater,
                         "trial": f"c{k + 1}", "left": "composite", "ms": "700",
                         "catch": "composite"})  # fmt: skip
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_fit_study_reports_the_screen_and_a_torn_line_through_its_callbacks(
    tmp_path: Path,
) -> None:
    log = _log(tmp_path / "judgments.csv", {"ana": True, "bob": False})
    with open(log, "a") as fh:
        fh.write("i3,dkt,rein")  # a server killed while writing an answer
    notes: list[str] = []
    screens: list[CatchScreen] = []
    callbacks = FitCallbacks(note=notes.append, screened=screens.append)
    fitted = fit_study(FitRequest(log, bootstrap=0, min_catch=0.8), callbacks)
    assert notes == [f"{log}: ignored a torn last line (11 characters, an answer the study "
                     "server never confirmed)"]  # fmt: skip
    assert [s.dropped for s in screens] == [("bob",)]
    assert fitted.result.judgments == 60 and fitted.to_dict()["catch"]["dropped_raters"] == ["bob"]
    assert fit_study(FitRequest(log, bootstrap=0)).result.judgments == 120  # silent by default


def test_fit_study_notes_min_catch_with_nothing_to_screen(tmp_path: Path) -> None:
    judged = _judged(tmp_path / "judged.csv", [
        {"item": "x", "method_a": "a", "method_b": "b", "winner": "a"},
        {"item": "y", "method_a": "a", "method_b": "b", "winner": "b"},
    ])  # fmt: skip
    notes: list[str] = []
    fit_study(FitRequest(judged, bootstrap=0, min_catch=0.5), FitCallbacks(note=notes.append))
    assert notes == [f"{judged}: no catch trials, so --min-catch drops no one"]


def test_fit_study_errors_name_the_file(tmp_path: Path) -> None:
    absent = tmp_path / "absent.csv"
    with pytest.raises(StudyError, match="--bootstrap-by 'rows': use auto, items or judgments"):
        fit_study(FitRequest(absent, bootstrap_by="rows"))  # checked before the file is read
    with pytest.raises(JudgmentLogError, match=r"absent\.csv: no such file"):
        fit_study(FitRequest(absent))
    columns = tmp_path / "cols.csv"
    columns.write_text("item,left,right,choice\nx,a,b,a\n")
    with pytest.raises(JudgmentLogError, match=r"cols.csv: missing column\(s\) method_a"):
        fit_study(FitRequest(columns))
    bad = tmp_path / "bad.csv"
    bad.write_text("item,method_a,method_b,winner\nx,a,b,a\nx,a,b,zzz\n")
    with pytest.raises(JudgmentError, match=r"bad\.csv: row 3: winner 'zzz'"):
        fit_study(FitRequest(bad))
    one = tmp_path / "one.csv"
    one.write_text("item,method_a,method_b,winner\nx,a,b,\n")
    with pytest.raises(DktError, match=r"one\.csv: no judged rows"):
        fit_study(FitRequest(one))
    only_bob = _log(tmp_path / "bob.csv", {"bob": False})
    with pytest.raises(JudgmentError, match="every rater with judgments is below --min-catch"):
        fit_study(FitRequest(only_bob, min_catch=0.8))
