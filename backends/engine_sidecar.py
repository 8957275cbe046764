"""The JSON file that travels next to a TensorRT engine: ``model.engine`` -> ``model.engine.json``.

The engine file itself stays exactly what TensorRT serialized (other tools, ``trtexec`` or
Triton, load it as is). What dkt needs to know about it lives beside it: which dkt and
checkpoint it came from, the TensorRT version and GPU it was built for, its precision, its
shape profile and I/O names.

A TensorRT engine only runs with the TensorRT version that built it and is tuned for one GPU
model, so loading checks both against this machine and refuses a mismatch with a message
that says how to re-export, instead of TensorRT's deserialization error.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from backends.records import (
    PROFILE_WORDS,
    Field,
    check_fields,
    is_int,
    is_profile,
    is_str,
    is_str_list,
    optional,
    parse_record,
    shown,
)
from backends.shapes import INPUT_NAMES, OUTPUT_NAMES, ShapeProfile
from dkt.atomic import atomic_write_bytes
from dkt.errors import BackendError, EngineMismatchError, ModelMetadataError

SIDECAR_FORMAT = "dkt-tensorrt-engine"
SIDECAR_VERSION = 1


@dataclass(frozen=True)
class EngineMetadata:
    dkt_version: str
    source_checkpoint: str
    source_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"
    precision: str
    profile: ShapeProfile
    working_size: int | None = None
    inputs: tuple[str, ...] = INPUT_NAMES
    outputs: tuple[str, ...] = OUTPUT_NAMES
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["profile"] = self.profile.to_dict()
        data["inputs"], data["outputs"] = list(self.inputs), list(self.outputs)
        return {"format": SIDECAR_FORMAT, "format_version": SIDECAR_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Any, source: str = "sidecar") -> EngineMetadata:
        """Build from a parsed sidecar, checked against :data:`SCHEMA` first."""
        if not isinstance(data, dict):
            raise ModelMetadataError(f"{source}: engine metadata is not a JSON object")
        if data.get("format") != SIDECAR_FORMAT:
            raise ModelMetadataError(
                f"{source}: not a dkt engine sidecar (format {shown(data.get('format'))})"
            )
        check_fields(data, {"format_version": SCHEMA["format_version"]}, source, _LABEL)
        if data["format_version"] > SIDECAR_VERSION:
            raise ModelMetadataError(f"{source}: written by a newer dkt; upgrade dkt or re-export")
        check_fields(data, SCHEMA, source, _LABEL)
        return cls(
            **{key: data[key] for key in _TEXT_FIELDS},
            profile=ShapeProfile.from_dict(data["profile"]),
            working_size=data.get("working_size"),
            inputs=tuple(data.get("inputs", INPUT_NAMES)),
            outputs=tuple(data.get("outputs", OUTPUT_NAMES)),
            extra=dict(data.get("extra", {})),
        )


_TEXT_FIELDS = (
    "dkt_version", "source_checkpoint", "source_sha256", "tensorrt_version", "gpu_name",
    "compute_capability", "precision",
)  # fmt: skip
#: What each key of a sidecar must be; the writer always writes every key but ``extra``.
SCHEMA = {
    "format_version": Field("a whole number from 1", lambda v: is_int(v, 1), required=True),
    **{key: Field("a string", is_str, required=True) for key in _TEXT_FIELDS},
    "profile": Field(PROFILE_WORDS, is_profile, required=True),
    "working_size": Field("a whole number from 8, or null", optional(lambda v: is_int(v, 8))),
    "inputs": Field("a list of strings", is_str_list),
    "outputs": Field("a list of strings", is_str_list),
    "extra": Field("an object", lambda v: isinstance(v, dict)),
}
_LABEL = "engine metadata"


def sidecar_path(engine: Path | str) -> Path:
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


def write_sidecar(engine: Path | str, metadata: EngineMetadata) -> Path:
    path = sidecar_path(engine)
    text = json.dumps(metadata.to_dict(), indent=2, sort_keys=True) + "\n"
    atomic_write_bytes(path, text.encode())
    return path


def read_sidecar(engine: Path | str) -> EngineMetadata:
    path = sidecar_path(engine)
    if not path.is_file():
        raise BackendError(
            f"{engine}: its metadata file {path.name} is missing (dkt engines are written "
            "with one by `dkt export --format trt`); re-export the engine"
        )
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise BackendError(f"{path}: unreadable engine metadata ({exc})") from exc
    except UnicodeDecodeError:
        raise ModelMetadataError(
            f"{path}: engine metadata is not UTF-8 text (a dkt sidecar is JSON)"
        ) from None
    return EngineMetadata.from_dict(parse_record(text, str(path), _LABEL), str(path))


def _release(version: str) -> tuple[str, ...]:
    """'10.3.0.26' -> ('10', '3', '0'): engines are portable only within one release."""
    return tuple(version.split(".")[:3])


def check_compatible(
    metadata: EngineMetadata,
    engine: Path | str,
    *,
    tensorrt_version: str,
    gpu_name: str,
    compute_capability: str,
) -> None:
    """Refuse an engine built for another TensorRT release or another GPU."""
    redo = (
        f"re-export it on this machine: dkt export {metadata.source_checkpoint} --format trt "
        f"-o {Path(engine).name}"
    )
    if _release(metadata.tensorrt_version) != _release(tensorrt_version):
        raise EngineMismatchError(
            f"{engine}: built with TensorRT {metadata.tensorrt_version}, but this machine has "
            f"TensorRT {tensorrt_version}; engines only load in the release that built them; "
            + redo
        )
    if metadata.compute_capability != compute_capability or metadata.gpu_name != gpu_name:
        raise EngineMismatchError(
            f"{engine}: built for {metadata.gpu_name} (compute capability "
            f"{metadata.compute_capability}), but this GPU is {gpu_name} (compute capability "
            f"{compute_capability}); engines are tuned for one GPU model; " + redo
        )
