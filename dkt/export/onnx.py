"""Export a DKTNet checkpoint to ONNX with named I/O and a dynamic shape profile.

The graph is the whole inference contract of :meth:`dktnet.model.DKTNet.forward`: pad to a
multiple of 8 (replicate padding computed from the input's shape), encode, bi-transform with
the dynamic kernels, decode, crop back and blend with the composite outside the mask. So an
ONNX Runtime or TensorRT user gets the same "the painting is never altered" guarantee as
the eager model, with the same I/O: ``composite`` (B,3,H,W) and ``mask`` (B,1,H,W), float32
in [0, 1], and ``strength`` (shape [1], float32 in [0, 1], :mod:`dkt.dktnet.strength`) ->
``harmonized`` (B,3,H,W) float32. The strength is an input, not a constant, so one file serves
every strength; ``strength_input=False`` writes the two-input graph of the exports made
before it existed (for consumers wired to that I/O), which runs at strength 1 only.

Exporters. ``dynamo`` (default) is ``torch.export`` + onnxscript, the path torch supports
going forward; dynamic axes are declared by name so nothing about the example input's size
is frozen into the graph, and its graph comes out already constant-folded (about a third of
the TorchScript exporter's node count for this model). ``torchscript`` is the legacy tracer:
much faster to run (about a second instead of tens of seconds), kept as a fallback for
machines without onnxscript. Both are checked by the same parity tests at sizes other than
the example's.

fp16. The network is converted to half in torch before export, so the reduced precision is
in the graph itself (what TensorRT 11's strongly typed builds need). The region statistics
stay float32 because :mod:`dktnet.stats` upcasts. The graph's inputs and output stay float32
with casts inside, and the final blend runs in float32 on the original inputs, so callers
do not change and pixels outside the mask still come back bit-exact.

int8 (ONNX Runtime only). The fp32 graph with its convolutions quantized after export,
calibrated on composites the user passes (:mod:`dkt.export.quantize`); the I/O, the
statistics and the blend stay float32, so the background is still bit-exact.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from backends.onnx_metadata import (
    METADATA_FORMAT,
    METADATA_KEY,
    METADATA_VERSION,
    ONNX_PRECISIONS,
)
from backends.registry import require_module
from backends.shapes import (
    CHANNELS,
    INPUT_NAMES,
    OUTPUT_NAMES,
    STRENGTH_INPUT,
    STRENGTH_SHAPE,
    ShapeProfile,
)
from dkt import dktnet
from dkt.atomic import atomic_path
from dkt.dktnet.checkpoint import file_sha256, load_checkpoint
from dkt.dktnet.model import DKTNet, blend
from dkt.dktnet.strength import toward
from dkt.errors import BackendError
from dkt.export.quantize import (
    CALIBRATION_PERCENTILE,
    MAX_CALIBRATION_IMAGES,
    Sample,
    calibration_shape,
    quantize_int8,
)
from dkt.export.request import DEFAULT_OPSET, EXPORTERS

#: The network's dtype in the graph, by the names :mod:`backends.onnx_metadata` records.
EXPORT_DTYPES = {"fp32": torch.float32, "fp16": torch.float16}
MIN_OPSET = 17  # LayerNormalization is an ONNX op from 17 on


class ExportGraph(nn.Module):
    """What gets exported: DKTNet.forward with the network run at ``dtype``.

    For float32 this is exactly ``DKTNet.forward``. For float16 the network runs in half,
    and the fade-in by strength and the blend with the composite are done in float32 on the
    untouched inputs (the composite comes back exactly at strength 0).
    """

    def __init__(self, model: DKTNet, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model = model.to(dtype).eval()
        self.dtype = dtype

    def forward(
        self, composite: torch.Tensor, mask: torch.Tensor, strength: torch.Tensor | None = None
    ) -> torch.Tensor:
        if self.dtype == torch.float32:
            return self.model(composite, mask, strength)
        half = (composite.to(self.dtype), mask.to(self.dtype))
        generated = self.model.unblended(*half, strength).float()
        return blend(composite, toward(composite, generated, strength), mask)


@dataclass
class ExportResult:
    path: Path
    metadata: dict[str, Any]
    seconds: float
    nodes: int
    notes: list[str] = field(default_factory=list)


def example_inputs(shape: tuple[int, int, int], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random composite and a centred rectangular mask of (batch, height, width)."""
    batch, height, width = shape
    gen = torch.Generator().manual_seed(seed)
    composite = torch.rand(batch, 3, height, width, generator=gen)
    mask = torch.zeros(batch, 1, height, width)
    mask[..., height // 4 : height - height // 4, width // 4 : width - width // 4] = 1.0
    return composite, mask


def graph_input_names(strength_input: bool) -> tuple[str, ...]:
    """The exported graph's inputs, in order."""
    return (*INPUT_NAMES, STRENGTH_INPUT) if strength_input else INPUT_NAMES


def _example(profile: ShapeProfile, names: tuple[str, ...]) -> tuple[torch.Tensor, ...]:
    """Example inputs for the exporters; a strength between 0 and 1, so neither end is traced
    as a special case (nothing in the graph depends on its value, but a tracer cannot know)."""
    images = example_inputs(profile.opt)
    return (*images, torch.full(STRENGTH_SHAPE, 0.5)) if STRENGTH_INPUT in names else images


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporters log and warn a lot that is no use to a dkt user; keep the terminal clean."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _dynamic_names(profile: ShapeProfile) -> dict[int, str]:
    axes = {"batch": 0, "height": 2, "width": 3}
    return {axes[name]: name for name in profile.dynamic_axes}


def _export_dynamo(
    graph: nn.Module, inputs: tuple, names: tuple[str, ...], profile: ShapeProfile, opset: int
) -> Any:
    require_module("onnxscript", "the dynamo ONNX exporter")
    axes = _dynamic_names(profile)
    dynamic_shapes = (
        {name: dict(axes) if name in INPUT_NAMES else None for name in names} if axes else None
    )
    with _quiet_exporter():
        program = torch.onnx.export(
            graph,
            inputs,
            input_names=list(names),
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamo=True,
            dynamic_shapes=dynamic_shapes,
            verbose=False,
        )
    return program.model_proto


def _export_torchscript(
    graph: nn.Module, inputs: tuple, names: tuple[str, ...], profile: ShapeProfile, opset: int
) -> Any:
    onnx = require_module("onnx", "ONNX export")
    axes = _dynamic_names(profile)
    dynamic_axes = {name: dict(axes) for name in (*INPUT_NAMES, *OUTPUT_NAMES)} if axes else None
    buffer = io.BytesIO()
    with _quiet_exporter():
        torch.onnx.export(
            graph,
            inputs,
            buffer,
            input_names=list(names),
            output_names=list(OUTPUT_NAMES),
            opset_version=opset,
            dynamic_axes=dynamic_axes,
            do_constant_folding=True,
            dynamo=False,
        )
    return onnx.load_from_string(buffer.getvalue())


def simplify_model(proto: Any) -> tuple[Any, str]:
    """Simplify with onnxslim if it is installed, else onnxruntime's offline graph optimizer.

    The fallback runs ONNX Runtime's *basic* optimization level only (constant folding,
    redundant-node elimination), whose output is plain ONNX that any runtime can load;
    the higher levels write ORT-specific fused ops and are not used here.
    """
    try:
        import onnxslim
    except ImportError:
        pass
    else:
        slim = onnxslim.slim(proto)
        # onnxslim's symbolic shape inference annotates some intermediate tensors with
        # wrong dims for this graph (the pad-to-8 arithmetic), which ONNX Runtime then
        # refuses to load. The annotations are optional: runtimes infer shapes themselves.
        del slim.graph.value_info[:]
        return slim, f"onnxslim {getattr(onnxslim, '__version__', '?')}"
    onnx = require_module("onnx", "ONNX simplification")
    ort = require_module("onnxruntime", "ONNX simplification without onnxslim")
    with tempfile.TemporaryDirectory(prefix="dkt-simplify-") as tmp:
        src, dst = Path(tmp) / "in.onnx", Path(tmp) / "out.onnx"
        onnx.save_model(proto, str(src))
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        options.optimized_model_filepath = str(dst)
        ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
        simplified = onnx.load_model(str(dst))
    return simplified, f"onnxruntime {ort.__version__} basic offline graph optimization"


def _set_io_dims(proto: Any, profile: ShapeProfile) -> None:
    """Declare every I/O dimension from the profile: a fixed size, or the axis's name.

    Exporters leave some output dims as generated symbols (the pad-and-crop arithmetic
    hides that the output has the input's size); the declared shapes are the contract.
    """
    dynamic = _dynamic_names(profile)
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if value.name == STRENGTH_INPUT:  # one number, whatever the images' shapes
            for dim, size in zip(dims, STRENGTH_SHAPE, strict=True):
                dim.dim_value = size
            continue
        fixed = dict(enumerate((profile.opt[0], CHANNELS[value.name], *profile.opt[1:])))
        for index in range(len(dims)):
            if index in dynamic:
                dims[index].dim_param = dynamic[index]
            else:
                dims[index].dim_value = fixed[index]


def export_onnx(
    checkpoint: Path | str,
    output: Path | str,
    *,
    profile: ShapeProfile,
    precision: str = "fp32",
    opset: int = DEFAULT_OPSET,
    exporter: str = "dynamo",
    simplify: bool = False,
    calibration: Sequence[Sample] | None = None,
    strength_input: bool = True,
) -> ExportResult:
    """Write ``output`` (.onnx) from a ``.safetensors`` checkpoint, atomically.

    ``calibration`` (int8 only, and required there): (3,h,w) composites and (1,h,w) masks
    that set the activation ranges, all at the profile's :func:`calibration_shape`.
    ``strength_input``: give the graph its ``strength`` input (``False``: the two-input graph
    of older exports, strength 1 only).
    """
    if precision not in ONNX_PRECISIONS:
        raise BackendError(f"unknown export precision '{precision}' (use fp32, fp16 or int8)")
    if (precision == "int8") != (calibration is not None):
        raise BackendError("int8 and only int8 takes calibration composites (--calibration DIR)")
    if exporter not in EXPORTERS:
        raise BackendError(f"unknown exporter '{exporter}' (use {' or '.join(EXPORTERS)})")
    if opset < MIN_OPSET:
        raise BackendError(f"opset {opset} is too old: DKTNet needs opset {MIN_OPSET} or newer")
    onnx = require_module("onnx", "ONNX export")
    checkpoint, output = Path(checkpoint), Path(output)
    start = time.perf_counter()
    model = load_checkpoint(checkpoint)
    graph = ExportGraph(model, EXPORT_DTYPES.get(precision, torch.float32))
    names = graph_input_names(strength_input)
    export = _export_dynamo if exporter == "dynamo" else _export_torchscript
    try:
        proto = export(graph, _example(profile, names), names, profile, opset)
    except BackendError:
        raise
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        other = "torchscript" if exporter == "dynamo" else "dynamo"
        raise BackendError(
            f"{checkpoint}: the {exporter} exporter failed ({first}); try --exporter {other}"
        ) from exc
    notes = []
    simplified_with = None
    if simplify:
        proto, simplified_with = simplify_model(proto)
        notes.append(f"simplified with {simplified_with}")
    calibrated = None
    if calibration is not None:
        shape = calibration_shape(profile, model.config.working_size)
        proto = quantize_int8(proto, calibration, shape)
        calibrated = min(len(calibration), MAX_CALIBRATION_IMAGES)
        notes.append(f"int8 convolutions calibrated on {calibrated} composites")
    _set_io_dims(proto, profile)
    metadata = {
        "format": METADATA_FORMAT,
        "format_version": METADATA_VERSION,
        "dkt_version": dktnet.__version__,
        "torch_version": torch.__version__,
        "source_checkpoint": checkpoint.name,
        "source_sha256": file_sha256(checkpoint),
        "config": model.config.to_dict(),
        "working_size": model.config.working_size,
        "precision": precision,
        "calibration": None
        if calibrated is None
        else {"composites": calibrated, "percentile": CALIBRATION_PERCENTILE},
        "profile": profile.to_dict(),
        "opset": opset,
        "exporter": exporter,
        "simplified_with": simplified_with,
        "inputs": list(names),
        "outputs": list(OUTPUT_NAMES),
        "strength_input": strength_input,
    }
    set_metadata(proto, metadata)
    proto.producer_name = "dkt"
    proto.producer_version = dktnet.__version__
    onnx.checker.check_model(proto)
    with atomic_path(output) as tmp:
        onnx.save_model(proto, str(tmp))
    return ExportResult(output, metadata, time.perf_counter() - start, len(proto.graph.node), notes)


def set_metadata(proto: Any, metadata: dict[str, Any]) -> None:
    for entry in list(proto.metadata_props):
        if entry.key == METADATA_KEY:
            proto.metadata_props.remove(entry)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata, sort_keys=True)
