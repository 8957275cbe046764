"""Build a TensorRT engine from a dkt ONNX export with the TensorRT Python API.

Precision, TensorRT 10 and 11. TensorRT 11 removed the weak-typing builder flags (FP16,
BF16, INT8, ...): the network's own types decide the precision. So dkt puts reduced
precision into the ONNX graph at export (the network converted to half in torch, float32
I/O and statistics) and always builds a *strongly typed* network. On TensorRT 10 that is
the ``STRONGLY_TYPED`` network-creation flag; on 11, where every network is strongly typed,
the flag is still accepted (and set when the enum has it). No precision builder flag is
ever set, so one code path gives the same engine precision on both releases, and the
precision the user asked for is checked against the one the ONNX file records.

One optimization profile covers both inputs (same B, H, W). A timing cache is used by
default (``~/.cache/dkt/tensorrt/``, one file per TensorRT release and GPU kind): a rebuild
on the same machine skips most kernel timing. The engine file is TensorRT's serialization,
untouched; its metadata goes to the sidecar JSON.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.engine_sidecar import EngineMetadata, write_sidecar
from backends.shapes import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    STRENGTH_INPUT,
    ShapeProfile,
    strength_input,
)
from backends.tensorrt_backend import gpu_identity, import_tensorrt, tensorrt_major
from dkt import dktnet
from dkt.atomic import atomic_write_bytes
from dkt.errors import BackendError
from dkt.export.request import DEFAULT_WORKSPACE_MIB

CACHE_DIR = Path.home() / ".cache" / "dkt" / "tensorrt"


@dataclass(frozen=True)
class BuildReport:
    engine: Path
    sidecar: Path
    metadata: EngineMetadata
    seconds: float
    timing_cache: Path | None
    network_flags: list[str]


def default_timing_cache(tensorrt_version: str, capability: str) -> Path:
    release = ".".join(tensorrt_version.split(".")[:3])
    return CACHE_DIR / f"timing-trt{release}-sm{capability.replace('.', '')}.cache"


def network_flags(trt: Any) -> tuple[int, list[str]]:
    """Network-creation flags: strongly typed (required behaviour on 11, opt-in on 10)."""
    names = ["STRONGLY_TYPED"]
    flags = 0
    for name in names:
        value = getattr(trt.NetworkDefinitionCreationFlag, name, None)
        if value is not None:
            flags |= 1 << int(value)
    if tensorrt_major(trt) >= 11:
        names = ["STRONGLY_TYPED (always on in TensorRT 11)"]
    return flags, names


def _parse(trt: Any, network: Any, logger: Any, onnx_path: Path) -> tuple[str, ...]:
    """Parse the export into ``network``; its input names (the strength's, if it has one)."""
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BackendError(f"{onnx_path}: TensorRT's ONNX parser refused it: {errors[0]}{more}")
    inputs = [network.get_input(i).name for i in range(network.num_inputs)]
    outputs = [network.get_output(i).name for i in range(network.num_outputs)]
    if strength_input(inputs) is None or tuple(outputs) != OUTPUT_NAMES:
        raise BackendError(
            f"{onnx_path}: I/O {inputs} -> {outputs} is not dkt's "
            f"{list(INPUT_NAMES)} (+ '{STRENGTH_INPUT}') -> {list(OUTPUT_NAMES)}"
        )
    return tuple(inputs)


def _load_timing_cache(config: Any, path: Path | None) -> Any:
    if path is None:
        return None
    data = path.read_bytes() if path.is_file() else b""
    cache = config.create_timing_cache(data)
    config.set_timing_cache(cache, ignore_mismatch=False)
    return cache


def build_engine(
    onnx_path: Path | str,
    engine_path: Path | str,
    *,
    profile: ShapeProfile,
    precision: str,
    onnx_metadata: dict[str, Any],
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    timing_cache: Path | bool | None = True,
    device_index: int = 0,
    trt: Any = None,
    identity: tuple[str, str] | None = None,
) -> BuildReport:
    """Build ``engine_path`` (+ ``engine_path.json``) from a dkt ONNX export.

    ``timing_cache``: ``True`` for the default cache file, a path, or ``False``/``None``
    for none. ``trt``/``identity`` let tests pass a stand-in module and GPU.
    """
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    graph_precision = onnx_metadata.get("precision", "fp32")
    if graph_precision != precision:
        raise BackendError(
            f"{onnx_path} is an {graph_precision} graph; TensorRT builds strongly typed, so "
            f"export the ONNX with --precision {precision} first"
        )
    if workspace_mib < 1:
        raise BackendError("--workspace must be at least 1 MiB")
    trt = trt or import_tensorrt()
    name, capability = identity or gpu_identity(device_index)
    if timing_cache is True:
        timing_cache = default_timing_cache(trt.__version__, capability)
    cache_path = timing_cache or None
    start = time.perf_counter()
    scope = contextlib.nullcontext()
    if identity is None:
        import torch

        scope = torch.cuda.device(device_index)
    with scope:
        logger = trt.Logger(trt.Logger.WARNING)
        builder = trt.Builder(logger)
        flags, flag_names = network_flags(trt)
        network = builder.create_network(flags)
        inputs = _parse(trt, network, logger, onnx_path)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mib << 20)
        if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
            config.clear_flag(trt.BuilderFlag.TF32)  # on by default; fp32 means fp32 here
        trt_profile = builder.create_optimization_profile()
        for input_name in INPUT_NAMES:  # the strength has one fixed shape: no profile
            trt_profile.set_shape(input_name, *profile.tensor_shapes(input_name))
        config.add_optimization_profile(trt_profile)
        _load_timing_cache(config, cache_path)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BackendError(
                f"TensorRT {trt.__version__} could not build an engine from {onnx_path} "
                "(see its log above; a larger --workspace or a smaller --max-shape may help)"
            )
        if cache_path is not None:
            atomic_write_bytes(cache_path, bytes(memoryview(config.get_timing_cache().serialize())))
        atomic_write_bytes(engine_path, bytes(memoryview(serialized)))
    metadata = EngineMetadata(
        dkt_version=dktnet.__version__,
        source_checkpoint=str(onnx_metadata.get("source_checkpoint", onnx_path.name)),
        source_sha256=str(onnx_metadata.get("source_sha256", "")),
        tensorrt_version=str(trt.__version__),
        gpu_name=name,
        compute_capability=capability,
        precision=precision,
        profile=profile,
        working_size=onnx_metadata.get("working_size"),
        inputs=inputs,
        extra={
            "workspace_mib": workspace_mib,
            "network_flags": flag_names,
            "opset": onnx_metadata.get("opset"),
        },
    )
    sidecar = write_sidecar(engine_path, metadata)
    return BuildReport(
        engine_path, sidecar, metadata, time.perf_counter() - start, cache_path, flag_names
    )


def export_engine(
    checkpoint: Path | str,
    engine_path: Path | str,
    *,
    profile: ShapeProfile,
    precision: str = "fp32",
    opset: int = 18,
    exporter: str = "dynamo",
    simplify: bool = False,
    workspace_mib: int = DEFAULT_WORKSPACE_MIB,
    timing_cache: Path | bool | None = True,
    device_index: int = 0,
    keep_onnx: Path | None = None,
) -> BuildReport:
    """Checkpoint -> ONNX (with the precision in the graph) -> TensorRT engine + sidecar."""
    from backends.onnx_metadata import EXPORT_PRECISIONS
    from dkt.export.onnx import export_onnx

    if precision not in EXPORT_PRECISIONS:
        raise BackendError(
            f"TensorRT engines are built {' or '.join(EXPORT_PRECISIONS)}, not {precision} "
            "(int8 is an ONNX Runtime export: --format onnx)"
        )
    trt = import_tensorrt()  # fail before the slow ONNX export if TensorRT is missing
    with tempfile.TemporaryDirectory(prefix="dkt-trt-") as tmp:
        onnx_path = keep_onnx or Path(tmp) / "model.onnx"
        exported = export_onnx(
            checkpoint,
            onnx_path,
            profile=profile,
            precision=precision,
            opset=opset,
            exporter=exporter,
            simplify=simplify,
        )
        return build_engine(
            onnx_path,
            engine_path,
            profile=profile,
            precision=precision,
            onnx_metadata=exported.metadata,
            workspace_mib=workspace_mib,
            timing_cache=timing_cache,
            device_index=device_index,
            trt=trt,
        )
