"""The dkt record inside an exported ONNX file: what a runtime reads before it loads one.

Export tooling (:mod:`dkt.export.onnx`) writes this record; the runtimes read it to check a
file before building a session or an engine, so the reading side lives with them.
"""

from __future__ import annotations

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
    one_of,
    optional,
    parse_record,
    shown,
)
from backends.registry import require_module
from dkt.dktnet.config import DKTNetConfig
from dkt.errors import BackendError, ModelMetadataError

METADATA_KEY = "dkt"
METADATA_FORMAT = "dkt-onnx"
METADATA_VERSION = 1
#: The network's dtype in the graph: what every runtime, TensorRT included, builds from.
EXPORT_PRECISIONS = ("fp32", "fp16")
#: What an ONNX export can be: a graph dtype, or fp32 with int8 convolutions
#: (:mod:`dkt.export.quantize`, for ONNX Runtime).
ONNX_PRECISIONS = (*EXPORT_PRECISIONS, "int8")


def _is_model_config(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    try:
        DKTNetConfig.from_dict(value)
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _is_calibration(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and is_int(value.get("composites"), 1)
        and isinstance(value.get("percentile"), (int, float))
        and not isinstance(value.get("percentile"), bool)
    )


#: What each key of the record must be. Exports from before a key existed lack it, so only
#: the format keys are required; what a runtime reads is checked whenever it is there.
SCHEMA = {
    "format_version": Field("a whole number from 1", lambda v: is_int(v, 1), required=True),
    "dkt_version": Field("a string", is_str),
    "torch_version": Field("a string", is_str),
    "source_checkpoint": Field("a string", is_str),
    "source_sha256": Field("a string", is_str),
    "config": Field("a model config object", _is_model_config),
    "working_size": Field("a whole number from 8, or null", optional(lambda v: is_int(v, 8))),
    "precision": Field(f"one of {', '.join(ONNX_PRECISIONS)}", one_of(*ONNX_PRECISIONS)),
    "calibration": Field("null or {composites, percentile}", optional(_is_calibration)),
    "profile": Field(PROFILE_WORDS, is_profile),
    "opset": Field("a whole number from 1", lambda v: is_int(v, 1)),
    "exporter": Field("a string", is_str),
    "simplified_with": Field("a string or null", optional(is_str)),
    "inputs": Field("a list of strings", is_str_list),
    "outputs": Field("a list of strings", is_str_list),
    "strength_input": Field("true or false", lambda v: isinstance(v, bool)),
}
_LABEL = "dkt metadata in the ONNX file"


def parse_metadata(props: dict[str, str], source: str) -> dict[str, Any]:
    """The dkt export record from an ONNX file's metadata properties (``{}`` if none).

    Checked against :data:`SCHEMA` before any runtime reads it: a tampered record is refused
    with the field at fault named.
    """
    raw = props.get(METADATA_KEY)
    if raw is None:
        return {}
    data = parse_record(raw, source, _LABEL)
    if data.get("format") != METADATA_FORMAT:
        raise ModelMetadataError(
            f"{source}: ONNX metadata from a different program (format "
            f"{shown(data.get('format'))}, not {METADATA_FORMAT!r}); re-export it with dkt"
        )
    check_fields(data, {"format_version": SCHEMA["format_version"]}, source, _LABEL)
    if data["format_version"] > METADATA_VERSION:
        raise ModelMetadataError(
            f"{source}: ONNX metadata format {data['format_version']} is newer than this dkt "
            f"reads ({METADATA_VERSION}); upgrade dkt or re-export it"
        )
    check_fields(data, SCHEMA, source, _LABEL)
    return data


def read_metadata(path: Path | str) -> dict[str, Any]:
    """Read the dkt record of an exported file without loading its weights into a runtime."""
    onnx = require_module("onnx", "reading ONNX metadata")
    try:
        proto = onnx.load_model(str(path), load_external_data=False)
    except Exception as exc:  # onnx's parser raises its own DecodeError, and others
        raise BackendError(f"{path}: not an ONNX file ({type(exc).__name__})") from exc
    return parse_metadata({p.key: p.value for p in proto.metadata_props}, str(path))
