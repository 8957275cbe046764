"""``dkt info``: what a model file is, without running it.

Each backend reads its own kind of file (:meth:`backends.base.Backend.inspect`): a checkpoint's
header, an ONNX export's embedded metadata, a TensorRT engine's JSON sidecar. This command only
picks the backend by the file's suffix and prints the record.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from backends.registry import get, name_for_model
from dkt import dktnet
from dkt.dktnet.distilled import DISTILLED_KIND, tap_groups
from dkt.errors import BackendError, DktError
from dkt_cli.console import err, fail, human_bytes, print_json

#: Table labels of record keys that read better in words.
_LABELS = {"file_size": "file size", "provenance": "trained", "format_version": "format version"}
#: Used for a file no backend claims: its reader explains what a .pth or unknown file is.
_FALLBACK_BACKEND = "torch"


def inspect_model(model: Path) -> dict[str, Any]:
    """The record of ``model`` from the backend its suffix implies."""
    try:
        name = name_for_model(model)
    except BackendError:
        name = _FALLBACK_BACKEND
    return get(name).inspect(model)


def _shown(key: str, value: Any) -> str:
    if key == "file_size" and isinstance(value, int):
        return human_bytes(value)
    if key == "parameters" and isinstance(value, int):
        return f"{value:,}"
    return value if isinstance(value, str) else json.dumps(value)


def _network_words(record: dict[str, Any], pretrained: bool) -> str:
    """``vgg19 pretrained, FILE``; a distilled network is an approximation, never "pretrained"
    VGG-19."""
    if record.get("kind") == DISTILLED_KIND:
        what = "approximation"
    else:
        what = "pretrained" if pretrained else "NOT pretrained (random weights)"
    source = f", {record['file']}" if record.get("file") else ""
    return f"{record.get('kind', '?')} {what}{source}"


def loss_network_line(provenance: dict[str, Any]) -> str | None:
    """One line on the loss network a checkpoint was trained with, its taps first.

    The taps matter: a truncated VGG-19 file gives relu1_1..relu3_1 only, and a reader must
    not assume the paper's four taps. Where the provenance records ``tap_sources`` (taps
    from more than one network, e.g. the exact VGG-19 to relu3_1 and the distilled
    approximation's relu4_1 and relu5_1), each run of taps is named with its own network.
    """
    lossnet = provenance.get("loss_network")
    if not isinstance(lossnet, dict):
        return None
    pretrained = bool(lossnet.get("pretrained"))
    sources = lossnet.get("tap_sources")
    taps = lossnet.get("taps") or (list(sources) if isinstance(sources, dict) else [])
    if isinstance(sources, dict) and sources and taps:
        groups = tap_groups(taps, {k: v for k, v in sources.items() if isinstance(v, dict)})
        parts = [
            f"{', '.join(run)} ({_network_words(dict(record), pretrained)})"
            if record
            else f"{', '.join(run)} (source not recorded)"
            for run, record in groups
        ]
        return f"taps {'; '.join(parts)}"
    shown = ", ".join(taps or ["(not recorded)"])
    return f"taps {shown} ({_network_words(lossnet, pretrained)})"


def _rows(record: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(label, text) per entry; a nested record shows one row per key (``config.size``)."""
    line = loss_network_line(record.get("provenance") or {})
    if line:
        yield "loss network", line
    for key, value in record.items():
        if key == "path":
            continue
        label = _LABELS.get(key, key)
        if isinstance(value, dict) and value:
            for sub, item in value.items():
                yield f"{label}.{sub}", _shown(sub, item)
        else:
            yield label, _shown(key, value)


def info(
    model: Annotated[
        Path,
        typer.Argument(
            help="Model file: .safetensors checkpoint, .onnx export or .engine/.plan TensorRT "
            "engine (with its .json sidecar).",
            show_default="bundled model",
            metavar="MODEL",
        ),
    ] = dktnet.BUNDLED_MODEL,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON on stdout.")] = False,
) -> None:
    """Show what a model file records: config, parameters, size, sha256, provenance.

    For an ONNX export, the metadata `dkt export` embedded in it; for a TensorRT engine, its
    JSON sidecar (TensorRT version, GPU, precision, shape profile, source checkpoint).
    """
    try:
        record = inspect_model(model)
    except DktError as exc:
        fail(str(exc))
    if json_output:
        print_json(record)
        return
    table = Table(show_header=False, title=record["path"], title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, text in _rows(record):
        table.add_row(label, text)
    err.print(table)
