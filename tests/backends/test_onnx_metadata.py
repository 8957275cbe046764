"""The dkt record in an ONNX export: what a real export writes passes, a tampered one is
refused with the field at fault named (it gave AttributeError, RecursionError and ValueError
tracebacks, and ``dkt info`` called the file "not an ONNX file")."""

from __future__ import annotations

import json
from typing import Any

import pytest

from backends.onnx_metadata import METADATA_KEY, parse_metadata
from dkt.errors import ModelMetadataError
from tests.export_fixtures import PROFILE, TINY_CONFIG

#: What ``dkt export`` writes (dkt.export.onnx.export_onnx), for the tiny model.
RECORD: dict[str, Any] = {
    "format": "dkt-onnx",
    "format_version": 1,
    "dkt_version": "0.1.0",
    "torch_version": "2.5.0",
    "source_checkpoint": "tiny.safetensors",
    "source_sha256": "ab" * 32,
    "config": TINY_CONFIG.to_dict(),
    "working_size": 64,
    "precision": "fp32",
    "calibration": None,
    "profile": PROFILE.to_dict(),
    "opset": 18,
    "exporter": "torchscript",
    "simplified_with": None,
    "inputs": ["composite", "mask", "strength"],
    "outputs": ["harmonized"],
    "strength_input": True,
}


def _parse(raw: str) -> dict[str, Any]:
    return parse_metadata({METADATA_KEY: raw}, "m.onnx")


def test_a_real_record_and_an_old_minimal_one_pass() -> None:
    assert _parse(json.dumps(RECORD)) == RECORD
    old = {"format": "dkt-onnx", "format_version": 1, "profile": PROFILE.to_dict()}
    assert _parse(json.dumps(old)) == old
    assert parse_metadata({}, "m.onnx") == {}


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


TAMPERED = [
    ("list", "[1, 2, 3]", "is a JSON list, not an object"),
    ("deep", _deep(100_000), "is nested too deeply"),
    ("deep-inside", json.dumps({**RECORD, "x": json.loads(_deep(40))}), "more than 16 levels"),
    ("not-json", "{dkt", "is not valid JSON"),
    ("huge-size", json.dumps({**RECORD, "working_size": "huge"}), 'working_size must be'),
    ("version-word", json.dumps({**RECORD, "format_version": "x"}), "format_version must be"),
    ("version-list", json.dumps({**RECORD, "format_version": [1]}), "format_version must be"),
    ("version-bool", json.dumps({**RECORD, "format_version": True}), "format_version must be"),
    ("no-version", json.dumps({"format": "dkt-onnx"}), "has no 'format_version'"),
    ("newer", json.dumps({**RECORD, "format_version": 99}), "newer than this dkt reads"),
    ("other-format", json.dumps({**RECORD, "format": "x"}), "from a different program"),
    ("profile-word", json.dumps({**RECORD, "profile": "big"}), "profile must be"),
    ("profile-order", json.dumps({**RECORD, "profile": {**PROFILE.to_dict(), "min": [9, 9, 9]}}),
     "profile must be"),
    ("precision", json.dumps({**RECORD, "precision": "fp8"}), "precision must be one of"),
    ("config", json.dumps({**RECORD, "config": {"kernel_dim": "big"}}), "config must be"),
    ("inputs", json.dumps({**RECORD, "inputs": "composite"}), "inputs must be a list"),
    ("strength", json.dumps({**RECORD, "strength_input": "yes"}), "strength_input must be"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "says"), [c[1:] for c in TAMPERED], ids=[c[0] for c in TAMPERED])
def test_tampered_record_is_refused_naming_what_is_wrong(raw: str, says: str) -> None:
    with pytest.raises(ModelMetadataError) as info:
        _parse(raw)
    message = str(info.value)
    assert message.startswith("m.onnx: ") and says in message, message
    assert "\n" not in message and len(message) < 300


def test_a_long_bad_value_is_shown_cut_short() -> None:
    with pytest.raises(ModelMetadataError) as info:
        _parse(json.dumps({**RECORD, "working_size": "x" * 100_000}))
    assert len(str(info.value)) < 200 and str(info.value).endswith("...")
