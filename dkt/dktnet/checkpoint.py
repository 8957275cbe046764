"""Checkpoint files: one ``.safetensors`` with the weights, the config and provenance.

Safetensors holds only raw tensors and a JSON header, so loading a file a user passes in can
never execute code. Loading is strict: every tensor the config implies must be present with
the right shape, and nothing else may be, with the offending names in the error.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from dkt.atomic import atomic_path
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import DKTNet
from dkt.errors import CheckpointError

FORMAT_NAME = "dkt-dktnet"
FORMAT_VERSION = 1
_SHOWN_NAMES = 5


@dataclass(frozen=True)
class CheckpointInfo:
    """What ``dkt info`` shows; reading it does not build the network."""

    path: Path
    config: DKTNetConfig
    provenance: dict[str, Any]
    format_version: int
    parameter_count: int
    tensor_count: int
    file_size: int
    sha256: str


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def non_finite_tensors(state: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity.

    A diverged training run writes such weights, and the model they make outputs NaN that
    a blend would hide: the composite came back unchanged and the run counted as done.
    """
    return [
        name
        for name, tensor in state.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def _refuse_non_finite(path: Path, state: Mapping[str, torch.Tensor], doing: str) -> None:
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointError(
            path,
            f"{doing}: tensor(s) with NaN or infinite values: {_name_list(bad)} "
            "(a diverged training run?)",
        )


def save_checkpoint(
    path: str | Path,
    model: DKTNet,
    provenance: dict[str, Any] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write ``model`` atomically; ``dtype`` (e.g. float16) shrinks the file, loads as float32.

    Non-finite weights (or ones past float16's range with ``dtype=float16``) are refused:
    no file is written that loading would refuse.
    """
    state = {
        name: (t.detach().to(dtype) if dtype is not None else t.detach()).contiguous().cpu()
        for name, t in model.state_dict().items()
    }
    _refuse_non_finite(Path(path), state, "not written")
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "config": json.dumps(model.config.to_dict(), sort_keys=True),
        "provenance": json.dumps(provenance or {}, sort_keys=True),
    }
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata=metadata)


def _read_header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """Metadata and tensor shapes, without reading tensor data."""
    if not path.is_file():
        raise CheckpointError(path, "no such file")
    try:
        with safe_open(str(path), framework="pt") as fh:
            metadata = fh.metadata() or {}
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    except Exception as exc:
        hint = (
            " (pickle-based .pth/.pt files are never loaded)"
            if path.suffix in {".pth", ".pt", ".ckpt"}
            else ""
        )
        raise CheckpointError(path, f"not a safetensors checkpoint{hint}") from exc
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(
            path, "safetensors file without dkt metadata (not a DKTNet checkpoint)"
        )
    try:
        version = int(metadata.get("format_version", "0"))
        provenance = json.loads(metadata.get("provenance", "{}"))
    except (ValueError, RecursionError) as exc:
        raise CheckpointError(path, f"corrupt dkt metadata ({exc})") from exc
    if not isinstance(provenance, dict):
        raise CheckpointError(path, "corrupt dkt metadata (provenance is not a JSON object)")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            path,
            f"checkpoint format {version} is newer than this dkt reads ({FORMAT_VERSION}); "
            "upgrade dkt",
        )
    return metadata, shapes


def _config_from(path: Path, metadata: dict[str, str]) -> DKTNetConfig:
    try:
        return DKTNetConfig.from_dict(json.loads(metadata["config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(path, f"invalid model config in metadata ({exc})") from exc


def _name_list(names: list[str]) -> str:
    shown = ", ".join(sorted(names)[:_SHOWN_NAMES])
    more = len(names) - _SHOWN_NAMES
    return shown + (f" and {more} more" if more > 0 else "")


def _check_tensors(path: Path, model: DKTNet, shapes: dict[str, tuple[int, ...]]) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    if missing:
        raise CheckpointError(path, f"missing tensor(s): {_name_list(missing)}")
    if unexpected:
        raise CheckpointError(path, f"unexpected tensor(s): {_name_list(unexpected)}")
    for name, shape in expected.items():
        if shapes[name] != shape:
            raise CheckpointError(
                path,
                f"tensor {name} has shape {list(shapes[name])}, the config needs {list(shape)}",
            )


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> DKTNet:
    """Rebuild the network from ``path`` in eval mode, float32, on ``device``."""
    path = Path(path)
    metadata, shapes = _read_header(path)
    model = DKTNet(_config_from(path, metadata))
    _check_tensors(path, model, shapes)
    with safe_open(str(path), framework="pt", device="cpu") as fh:
        state = {k: fh.get_tensor(k).float() for k in shapes}
    _refuse_non_finite(path, state, "not loaded")
    model.load_state_dict(state, strict=True)
    model.provenance = json.loads(metadata.get("provenance", "{}"))
    return model.to(device).eval()


def read_checkpoint_info(path: str | Path) -> CheckpointInfo:
    path = Path(path)
    metadata, shapes = _read_header(path)
    params = 0
    for shape in shapes.values():
        count = 1
        for dim in shape:
            count *= dim
        params += count
    return CheckpointInfo(
        path=path,
        config=_config_from(path, metadata),
        provenance=json.loads(metadata.get("provenance", "{}")),
        format_version=int(metadata.get("format_version", "0")),
        parameter_count=params,
        tensor_count=len(shapes),
        file_size=path.stat().st_size,
        sha256=file_sha256(path),
    )
