"""Tests for ``dkt study pairs`` and ``dkt study fit`` through the CLI."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from dkt.cli.app import app

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
