"""The ``dkt serve`` load benchmark end to end at its smoke-test size (a few seconds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_serve_load_quick_runs_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip(
        "fastapi", reason="the web stack is not installed: pip install 'dkt[serve]'"
    )
    pytest.importorskip("httpx", reason="httpx is not installed")
    out_json = tmp_path / "load.json"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--quick",
         "--json", str(out_json)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("| clients"))
    assert "requests/s" in header and "p95 latency ms" in header
    rows = [line for line in result.stdout.splitlines() if line[:4] in ("| 1 ", "| 2 ")]
    assert len(rows) == 2
    data = json.loads(out_json.read_text())
    assert [row["clients"] for row in data["rows"]] == [1, 2]
    for row in data["rows"]:
        assert row["requests"] == 4
        assert 0 < row["p50_ms"] <= row["p95_ms"]
        assert row["requests_per_s"] > 0
