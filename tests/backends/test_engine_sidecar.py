"""The engine's sidecar JSON: round trip, validation, and refusing another TensorRT or GPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.engine_sidecar import (
    EngineMetadata,
    check_compatible,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)
from backends.shapes import ShapeProfile
from dkt.errors import BackendError, EngineMismatchError, ModelMetadataError

META = EngineMetadata(
    dkt_version="0.1.0",
    source_checkpoint="dktnet-lite.safetensors",
    source_sha256="ab" * 32,
    tensorrt_version="10.8.0.43",
    gpu_name="NVIDIA H100 80GB HBM3",
    compute_capability="9.0",
    precision="fp16",
    profile=ShapeProfile((1, 16, 16), (1, 512, 512), (4, 1024, 1024)),
    working_size=256,
)


def test_round_trip_keeps_the_engine_file_plain(tmp_path: Path) -> None:
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"\x00engine bytes")
    path = write_sidecar(engine, META)
    assert path == sidecar_path(engine) == tmp_path / "model.engine.json"
    assert engine.read_bytes() == b"\x00engine bytes"
    data = json.loads(path.read_text())
    assert data["format"] == "dkt-tensorrt-engine"
    assert data["inputs"] == ["composite", "mask"] and data["outputs"] == ["harmonized"]
    assert data["profile"]["max"] == [4, 1024, 1024]
    assert read_sidecar(engine) == META


def test_missing_or_broken_sidecar(tmp_path: Path) -> None:
    engine = tmp_path / "m.plan"
    with pytest.raises(BackendError, match=r"m\.plan\.json is missing .* re-export"):
        read_sidecar(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(BackendError, match="engine metadata is not valid JSON"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps({"format": "other"}))
    with pytest.raises(BackendError, match="not a dkt engine sidecar"):
        read_sidecar(engine)
    data = META.to_dict()
    del data["gpu_name"]
    sidecar_path(engine).write_text(json.dumps(data))
    with pytest.raises(BackendError, match="engine metadata has no 'gpu_name'"):
        read_sidecar(engine)
    sidecar_path(engine).write_text(json.dumps({**META.to_dict(), "format_version": 99}))
    with pytest.raises(BackendError, match="newer dkt"):
        read_sidecar(engine)


def _nested(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


#: Tampered sidecars, each with what the one-line refusal must say.
TAMPERED = [
    (b"[1, 2, 3]", "engine metadata is a JSON list, not an object"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (json.dumps({**META.to_dict(), "extra": {"a": _nested(20)}}).encode(), "more than 16 levels"),
    ('{"gpu_name": "caf\xe9"}'.encode("latin-1"), "engine metadata is not UTF-8 text"),
    (json.dumps({**META.to_dict(), "format_version": "1"}).encode(), "format_version must be"),
    (json.dumps({**META.to_dict(), "working_size": "huge"}).encode(), "working_size must be"),
    (json.dumps({**META.to_dict(), "profile": "big"}).encode(), "profile must be"),
    (json.dumps({**META.to_dict(), "gpu_name": {"x": 1}}).encode(), "gpu_name must be a string"),
    (json.dumps({**META.to_dict(), "inputs": "composite"}).encode(), "inputs must be a list"),
]


@pytest.mark.parametrize(("content", "says"), TAMPERED, ids=[says for _, says in TAMPERED])
def test_tampered_sidecar_is_refused_naming_the_field(
    tmp_path: Path, content: bytes, says: str
) -> None:
    """A list, deep nesting, non-UTF-8 bytes or a wrong type gave AttributeError,
    RecursionError, UnicodeDecodeError or a str-ified value; each is now a one-line refusal."""
    engine = tmp_path / "m.engine"
    sidecar_path(engine).write_bytes(content)
    with pytest.raises(ModelMetadataError) as info:
        read_sidecar(engine)
    message = str(info.value)
    assert message.startswith(f"{sidecar_path(engine)}: ") and says in message
    assert "\n" not in message and len(message) < 300


def test_same_release_and_gpu_is_accepted() -> None:
    check_compatible(
        META,
        "m.engine",
        tensorrt_version="10.8.0.99",
        gpu_name=META.gpu_name,
        compute_capability="9.0",
    )


def test_other_tensorrt_release_is_refused_with_a_re_export_hint() -> None:
    with pytest.raises(EngineMismatchError) as info:
        check_compatible(
            META,
            "out/m.engine",
            tensorrt_version="11.4.0.106",
            gpu_name=META.gpu_name,
            compute_capability="9.0",
        )
    assert str(info.value) == (
        "out/m.engine: built with TensorRT 10.8.0.43, but this machine has TensorRT "
        "11.4.0.106; engines only load in the release that built them; re-export it on this "
        "machine: dkt export dktnet-lite.safetensors --format trt -o m.engine"
    )


@pytest.mark.parametrize(
    ("name", "capability"), [("NVIDIA A100-SXM4-80GB", "8.0"), ("NVIDIA H200", "9.0")]
)
def test_other_gpu_is_refused(name: str, capability: str) -> None:
    with pytest.raises(EngineMismatchError, match=rf"but this GPU is {name} .* re-export it"):
        check_compatible(
            META,
            "m.engine",
            tensorrt_version="10.8.0.43",
            gpu_name=name,
            compute_capability=capability,
        )
