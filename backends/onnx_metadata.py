"""The dkt record inside an exported ONNX file: what a runtime reads before it loads one.

Export tooling (:mod:`dkt.export.onnx`) writes this record; the runtimes read it to check a
file before building a session or an engine, so the reading side lives with them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backends.registry import require_module
from dkt.errors import BackendError

METADATA_KEY = "dkt"
METADATA_FORMAT = "dkt-onnx"
METADATA_VERSION = 1
#: The network's dtype in the graph: what every runtime, TensorRT included, builds from.
EXPORT_PRECISIONS = ("fp32", "fp16")
#: What an ONNX export can be: a graph dtype, or fp32 with int8 convolutions
#: (:mod:`dkt.export.quantize`, for ONNX Runtime).
ONNX_PRECISIONS = (*EXPORT_PRECISIONS, "int8")


def parse_metadata(props: dict[str, str], source: str) -> dict[str, Any]:
    """The dkt export record from an ONNX file's metadata properties (``{}`` if none)."""
    raw = props.get(METADATA_KEY)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BackendError(f"{source}: unreadable dkt metadata in the ONNX file ({exc})") from exc
    if (
        data.get("format") != METADATA_FORMAT
        or int(data.get("format_version", 0)) > METADATA_VERSION
    ):
        raise BackendError(f"{source}: ONNX metadata from a newer or different dkt; re-export it")
    return data


def read_metadata(path: Path | str) -> dict[str, Any]:
    """Read the dkt record of an exported file without loading its weights into a runtime."""
    onnx = require_module("onnx", "reading ONNX metadata")
    proto = onnx.load_model(str(path), load_external_data=False)
    return parse_metadata({p.key: p.value for p in proto.metadata_props}, str(path))
