"""Tests for ``dkt study pairs`` and ``dkt study fit`` through the CLI."""

from __future__ import annotations

import csv
import inspect
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dkt.csvcells import read_row
from dkt_cli import serve as serve_cli
from dkt_cli import study as study_cli
from dkt_cli.app import app

runner = CliRunner()
STRENGTH = {"composite": -0.8, "reinhard": 0.0, "dkt": 0.8}


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _answer(rows: list[dict[str, str]], seed: int = 0) -> list[dict[str, str]]:
    """Fill the winner column as simulated users with strengths ``STRENGTH`` would."""
    rng = np.random.default_rng(seed)
    for row in rows:
        a, b = row["method_a"], row["method_b"]
        p = 1.0 / (1.0 + np.exp(-(STRENGTH[a] - STRENGTH[b])))
        row["winner"] = a if rng.random() < p else b
    return rows


def test_pairs_from_a_folder_is_balanced_and_reproducible(tmp_path: Path) -> None:
    comps = tmp_path / "comps"
    comps.mkdir()
    for i in range(5):
        (comps / f"k{i}_comp.jpg").write_bytes(b"")
        (comps / f"k{i}_mask.png").write_bytes(b"")
    out1, out2 = tmp_path / "p1.csv", tmp_path / "p2.csv"
    args = ["study", "pairs", "--methods", "composite,reinhard,dkt", "--items", str(comps),
            "--composite-pattern", "{key}_comp", "--per-item", "2", "--seed", "4"]  # fmt: skip
    assert runner.invoke(app, [*args, "-o", str(out1)]).exit_code == 0
    result = runner.invoke(app, [*args, "-o", str(out2), "--json"])
    assert result.exit_code == 0, result.output
    assert out1.read_bytes() == out2.read_bytes()
    rows = _read(out1)
    assert list(rows[0]) == ["trial", "item", "method_a", "method_b", "winner"]
    assert {r["item"] for r in rows} == {f"k{i}" for i in range(5)}
    assert all(r["winner"] == "" for r in rows)
    pairs = Counter(frozenset((r["method_a"], r["method_b"])) for r in rows)
    assert max(pairs.values()) - min(pairs.values()) <= 1
    summary = json.loads(result.stdout)
    assert summary["comparisons"] == 10 and summary["items"] == 5


def test_pairs_from_a_list_default_per_item(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    result = runner.invoke(
        app, ["study", "pairs", "--methods", "a,b,c,d", "--items", "x,y", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(_read(out)) == 2 * 6  # every item sees every pair once
    assert "12 comparisons" in result.stderr


def test_pairs_usage_errors(tmp_path: Path) -> None:
    out = str(tmp_path / "p.csv")
    bad = runner.invoke(app, ["study", "pairs", "--methods", "a", "--items", "x", "-o", out])
    assert bad.exit_code == 2 and "at least 2" in bad.stderr
    missing = runner.invoke(
        app, ["study", "pairs", "--methods", "a,b", "--items", "no/such.txt", "-o", out]
    )
    assert missing.exit_code == 2 and "no such folder or file" in missing.stderr


def test_fit_round_trip_from_a_designed_study(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    items = ",".join(f"i{k}" for k in range(40))
    assert runner.invoke(app, ["study", "pairs", "--methods", "composite,reinhard,dkt",
                               "--items", items, "--per-item", "9", "-o", str(pairs)]
                         ).exit_code == 0  # fmt: skip
    rows = _answer(_read(pairs))
    rows[0]["winner"] = "tie"
    rows[1]["winner"] = ""
    judged = tmp_path / "judged.csv"
    _write(judged, rows)
    result = runner.invoke(app, ["study", "fit", str(judged), "--bootstrap", "200", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["judgments"] == 359 and data["ties"] == 1 and data["skipped_unjudged"] == 1
    assert data["bootstrap"]["by"] == "items"
    got = {m["method"]: m for m in data["methods"]}
    assert [m["method"] for m in data["methods"]] == ["dkt", "reinhard", "composite"]
    for name, truth in STRENGTH.items():
        assert abs(got[name]["log_strength"] - truth) < 0.3
        assert got[name]["ci_low"] < got[name]["log_strength"] < got[name]["ci_high"]

    table = runner.invoke(app, ["study", "fit", str(judged), "--bootstrap", "50"])
    assert table.exit_code == 0 and table.stdout == ""
    assert "BT log-strength" in table.stderr and "win rate of row over column" in table.stderr


def test_fit_errors_name_the_file_and_row(tmp_path: Path) -> None:
    wrong_columns = tmp_path / "cols.csv"
    wrong_columns.write_text("item,left,right,choice\nx,a,b,a\n")
    result = runner.invoke(app, ["study", "fit", str(wrong_columns)])
    assert result.exit_code == 2
    assert "cols.csv: missing column(s) method_a, method_b, winner" in result.stderr

    unknown = tmp_path / "unknown.csv"
    unknown.write_text("item,method_a,method_b,winner\nx,a,b,a\nx,a,b,zzz\n")
    result = runner.invoke(app, ["study", "fit", str(unknown)])
    assert result.exit_code == 2 and "row 3: winner 'zzz'" in result.stderr

    result = runner.invoke(app, ["study", "fit", str(tmp_path / "absent.csv")])
    assert result.exit_code == 2 and "no such file" in result.stderr

    result = runner.invoke(app, ["study", "fit", str(unknown), "--bootstrap-by", "rows"])
    assert result.exit_code == 2 and "--bootstrap-by" in result.stderr


# --------------------------------------------------------------------------- study logs

LOG_HEADER = ["item", "method_a", "method_b", "winner", "rater", "trial", "left", "ms", "catch"]


def _log_rows(rater: str, attentive: bool, seed: int) -> list[dict[str, str]]:
    """A rater's log: 120 design trials, 4 composite catches and 4 repeats.

    An attentive rater answers like the simulated users of ``_answer`` and passes every
    check; the other always presses the left key (the design's method_a here).
    """
    rng = np.random.default_rng(seed)
    names = list(STRENGTH)
    rows = []
    for t in range(120):
        i, j = rng.choice(3, 2, replace=False)
        rows.append({"item": f"i{t % 30}", "method_a": names[i], "method_b": names[j],
                     "trial": str(t + 1), "catch": ""})  # fmt: skip
    if attentive:
        rows = _answer(rows, seed)
    for row in rows:
        row.setdefault("winner", row["method_a"])
    for k in range(4):
        rows.append({"item": f"i{k}", "method_a": "composite", "method_b": "dkt",
                     "winner": "dkt" if attentive else "composite", "trial": f"c{k + 1}",
                     "catch": "composite"})  # fmt: skip
        first = rows[10 * k]
        rows.append({**first, "trial": f"r{first['trial']}", "catch": "repeat",
                     "winner": first["winner"] if attentive else first["method_b"]})  # fmt: skip
    for row in rows:
        row.update(rater=rater, left=row["method_a"], ms="800")
    return rows


def _write_log(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LOG_HEADER, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def test_fit_reads_a_study_log_and_reports_catch_accuracy(tmp_path: Path) -> None:
    log = tmp_path / "judgments.csv"
    _write_log(log, _log_rows("ana", True, 1) + _log_rows("bob", False, 2))
    result = runner.invoke(app, ["study", "fit", str(log), "--bootstrap", "20", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["judgments"] == 240  # the 16 catch rows are not in the fit
    catch = data["catch"]
    assert catch["catch_trials"] == 16 and catch["dropped_raters"] == []
    by_rater = {r["rater"]: r for r in catch["raters"]}
    assert by_rater["ana"]["catch_accuracy"] == 1.0 and by_rater["ana"]["judgments"] == 120
    assert by_rater["bob"]["composite"] == {"passed": 0, "total": 4}
    assert by_rater["bob"]["repeat"] == {"passed": 0, "total": 4}

    table = runner.invoke(app, ["study", "fit", str(log), "--bootstrap", "0"])
    assert table.exit_code == 0, table.output
    assert "catch trials by rater (16 catch trials, left out of the fit)" in table.stderr
    ana = next(line for line in table.stderr.splitlines() if "│ ana" in line)
    bob = next(line for line in table.stderr.splitlines() if "│ bob" in line)
    assert "4/4" in ana and "100%" in ana and "kept" in ana
    assert "0/4" in bob and "0%" in bob


def test_min_catch_drops_the_inattentive_rater(tmp_path: Path) -> None:
    log = tmp_path / "judgments.csv"
    _write_log(log, _log_rows("ana", True, 1) + _log_rows("bob", False, 2))
    args = ["study", "fit", str(log), "--bootstrap", "0", "--min-catch", "0.8"]
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "dropped 1 of 2 rater(s) with catch accuracy below 80% (--min-catch): bob" in (
        table.stderr
    )
    assert "dropped" in next(line for line in table.stderr.splitlines() if "│ bob" in line)
    data = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert data["judgments"] == 120 and data["catch"]["dropped_raters"] == ["bob"]
    assert data["catch"]["min_catch"] == 0.8
    # bob's always-left answers flattened the scale; without him the truth comes back
    got = {m["method"]: m["log_strength"] for m in data["methods"]}
    assert got["dkt"] > got["reinhard"] > got["composite"]

    everyone = json.loads(runner.invoke(app, [*args[:-2], "--json"]).stdout)
    assert everyone["judgments"] == 240

    only_bob = tmp_path / "bob.csv"
    _write_log(only_bob, _log_rows("bob", False, 2))
    result = runner.invoke(app, ["study", "fit", str(only_bob), "--min-catch", "0.8"])
    assert result.exit_code == 2
    assert "every rater with judgments is below --min-catch 0.8 (1 dropped)" in result.stderr


def test_fit_ignores_a_torn_last_line_and_keeps_row_numbers(tmp_path: Path) -> None:
    log = tmp_path / "judgments.csv"
    _write_log(log, _log_rows("ana", True, 1))
    with open(log, "a") as fh:
        fh.write("i3,dkt,reinh")
    result = runner.invoke(app, ["study", "fit", str(log), "--bootstrap", "0", "--json"])
    assert result.exit_code == 0, result.output
    assert "ignored a torn last line (12 characters" in result.stderr
    assert json.loads(result.stdout)["judgments"] == 120

    rows = _log_rows("ana", True, 1)
    rows.insert(1, {**rows[-1]})  # a catch row at line 3 ...
    rows[2]["winner"] = "zzz"  # ... and the bad row at line 4
    _write_log(log, rows)
    result = runner.invoke(app, ["study", "fit", str(log)])
    assert result.exit_code == 2 and "row 4: winner 'zzz'" in result.stderr


def test_min_catch_on_a_design_file_says_it_has_nothing_to_check(tmp_path: Path) -> None:
    judged = tmp_path / "judged.csv"
    _write(judged, [{"item": "x", "method_a": "a", "method_b": "b", "winner": "a"},
                    {"item": "y", "method_a": "a", "method_b": "b", "winner": "b"}])  # fmt: skip
    result = runner.invoke(app, ["study", "fit", str(judged), "--min-catch", "0.8", "--json"])
    assert result.exit_code == 0, result.output
    assert "no catch trials, so --min-catch drops no one" in result.stderr
    assert json.loads(result.stdout)["judgments"] == 2


def test_serve_names_what_is_missing_before_serving(tmp_path: Path, monkeypatch) -> None:
    pytest.importorskip("uvicorn", reason="the web stack is not installed")
    import uvicorn

    from tests.serve.study_data import make_study

    def never(*args, **kwargs):
        raise AssertionError("the server started")

    monkeypatch.setattr(uvicorn, "run", never)
    monkeypatch.setattr(uvicorn.Server, "run", never)
    design, images, _ = make_study(tmp_path)
    (images / "dkt" / "k2.png").unlink()
    out = tmp_path / "j.csv"
    args = ["study", "serve", str(design), "--images", str(images), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "dkt/k2.*: no image for item 'k2'" in result.stderr
    (images / "composite" / "k5.png").unlink()
    (images / "dkt" / "k2.png").write_bytes((images / "dkt" / "k1.png").read_bytes())
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "composite/k5.*: no image" in result.stderr
    assert not out.exists()
    help_text = runner.invoke(app, ["study", "serve", "--help"]).stdout
    assert "DIR/<method>/<item>" in " ".join(help_text.split())


#: Names a spreadsheet would run as formulas if written raw.
FORMULA_METHODS = ('=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "@SUM(1)", "dkt")
RISKY = re.compile(r"[=+\-@\t\r]")


def test_pairs_writes_formula_names_as_text_and_fit_reads_them_back(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.csv"
    args = ["study", "pairs", "--methods", ",".join(FORMULA_METHODS), "--items",
            "=1+1,@x,k3", "-o", str(pairs)]  # fmt: skip
    assert runner.invoke(app, args).exit_code == 0
    with open(pairs, newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if RISKY.match(c)]
    rows = _read(pairs)
    assert {read_row(r)["item"] for r in rows} == {"=1+1", "@x", "k3"}
    for row in rows:
        row["winner"] = row["method_a"]  # as written, the way a spreadsheet saves it back
    judged = tmp_path / "judged.csv"
    _write(judged, rows)
    result = runner.invoke(app, ["study", "fit", str(judged), "--bootstrap", "0", "--json"])
    assert result.exit_code == 0, result.output
    assert {m["method"] for m in json.loads(result.stdout)["methods"]} == set(FORMULA_METHODS)


def test_pairs_quiet_prints_nothing_and_writes_the_design(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    args = ["study", "pairs", "--methods", "a,b", "--items", "x,y", "-o", str(out), "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0 and (result.stdout, result.stderr) == ("", "")
    assert len(_read(out)) == 2


def test_the_two_servers_default_to_different_ports() -> None:
    def default_port(command: object) -> int:
        return inspect.signature(command).parameters["port"].default

    assert default_port(study_cli.serve) != default_port(serve_cli.serve)


def _get(url: str, headers: dict[str, str] | None = None, opener=None) -> int:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=10) as reply:
            return reply.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_study_serve_takes_port_0_and_a_token_as_dkt_serve_does(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="the web stack is not installed")
    from tests.serve.study_data import make_study

    design, images, _ = make_study(tmp_path)
    args = [sys.executable, "-m", "dkt", "study", "serve", str(design), "--images", str(images),
            "--out", str(tmp_path / "j.csv"), "--port", "0"]  # fmt: skip
    env = {**os.environ, "DKT_STUDY_TOKEN": "s3cret", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env=env)  # fmt: skip
    try:
        lines = []
        while not any("open http" in line for line in lines):
            lines.append(process.stdout.readline())
            assert lines[-1], "".join(lines)
        base = re.search(r"open (http://127\.0\.0\.1:\d+)/\?token=TOKEN", lines[-1])
        assert base, lines[-1]
        base = base[1]
        assert not base.endswith(":0")
        assert _get(base + "/v1/study/next?rater=ana") == 401
        assert _get(base + "/v1/study/next?rater=ana", {"Authorization": "Bearer s3cret"}) == 200
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        assert _get(base + "/", opener=browser) == 401
        assert _get(base + "/?token=s3cret", opener=browser) == 200  # the page, via its cookie
        assert _get(base + "/v1/study/next?rater=ana", opener=browser) == 200
    finally:
        process.terminate()
        process.wait(timeout=15)
