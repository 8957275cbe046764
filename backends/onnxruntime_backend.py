"""ONNX Runtime backend: runs an ``.onnx`` file written by ``dkt export``.

The execution provider is chosen explicitly from ``--device``:

=================  ==========================================================
``cpu``            CPUExecutionProvider
``cuda[:N]``       CUDAExecutionProvider on GPU N (CPU only for ops CUDA lacks)
``tensorrt[:N]``   TensorrtExecutionProvider, then CUDA, on GPU N
``auto``           CUDA if this onnxruntime build has it, else the CPU
=================  ==========================================================

After the session is created the backend reads back which providers really loaded. If a
GPU was asked for and it did not load, that is an error (ONNX Runtime itself would only
log a warning and quietly run on the CPU) unless ``allow_cpu_fallback`` was given; then
:meth:`describe` says ``"fallback": true``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from backends.base import Backend, BackendDescriptor, LoadOptions
from backends.onnx_metadata import ONNX_PRECISIONS, parse_metadata, read_metadata
from backends.registry import require_module
from backends.shapes import (
    INPUT_NAMES,
    OUTPUT_NAMES,
    STRENGTH_INPUT,
    STRENGTH_SHAPE,
    ShapeProfile,
    strength_input,
)
from dkt.dktnet.checkpoint import file_sha256
from dkt.dktnet.config import DKTNetConfig
from dkt.dktnet.model import MULTIPLE, estimate_working_bytes
from dkt.errors import BackendError
from dkt.limits import MIN_IMAGE_SIDE

CPU, CUDA, TENSORRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"
GPU_KINDS = {"cuda": CUDA, "tensorrt": TENSORRT, "trt": TENSORRT}
DEFAULT_TRT_CACHE = Path.home() / ".cache" / "dkt" / "ort-tensorrt"
#: Peak RSS of an ORT CPU run over the eager estimate (see :meth:`working_bytes`).
ORT_ARENA_FACTOR = 1.25


def _gpu_index(device: str) -> int:
    _, _, index = device.partition(":")
    if not index:
        return 0
    if not index.isdigit():
        raise BackendError(f"invalid device '{device}' (use cpu, cuda, cuda:N, tensorrt[:N])")
    return int(index)


def provider_plan(
    device: str, available: list[str], profile: ShapeProfile | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """The (provider, options) list to ask ONNX Runtime for, most preferred first."""
    kind = device.partition(":")[0]
    if device == "cpu":
        return [(CPU, {})]
    if device == "auto":
        return [(CUDA, {"device_id": 0}), (CPU, {})] if CUDA in available else [(CPU, {})]
    if kind not in GPU_KINDS:
        raise BackendError(f"invalid device '{device}' (use auto, cpu, cuda[:N] or tensorrt[:N])")
    index = _gpu_index(device)
    plan: list[tuple[str, dict[str, Any]]] = []
    if GPU_KINDS[kind] == TENSORRT:
        plan.append((TENSORRT, tensorrt_provider_options(index, profile)))
    plan += [(CUDA, {"device_id": index}), (CPU, {})]
    return plan


def tensorrt_provider_options(index: int, profile: ShapeProfile | None) -> dict[str, Any]:
    """TensorRT EP options: an engine cache, and the export's profile so it builds once."""
    options: dict[str, Any] = {
        "device_id": index,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(DEFAULT_TRT_CACHE),
        "trt_timing_cache_enable": True,
    }
    if profile is not None:
        for key, shapes in zip(
            ("min", "opt", "max"),
            zip(*(profile.tensor_shapes(n) for n in INPUT_NAMES), strict=True),
            strict=True,
        ):
            spec = ",".join(
                f"{name}:{'x'.join(str(d) for d in shape)}"
                for name, shape in zip(INPUT_NAMES, shapes, strict=True)
            )
            options[f"trt_profile_{key}_shapes"] = spec
    return options


class OnnxRuntimeBackend(Backend):
    descriptor: ClassVar[BackendDescriptor] = BackendDescriptor(
        name="onnxruntime",
        suffixes=(".onnx",),
        devices=("auto", "cpu", "cuda", "tensorrt"),
        precisions=ONNX_PRECISIONS,  # fixed in the graph at export
        size_multiple=MULTIPLE,
        min_side=MIN_IMAGE_SIDE,
        dynamic_shapes=True,  # a --dynamic export; a --static one fixes its file's shape
        extra="onnx",
    )

    def __init__(
        self,
        session: Any,
        path: Path,
        metadata: dict[str, Any],
        requested_device: str,
        requested_providers: list[str],
        fallback: bool,
    ) -> None:
        self.session = session
        self.path = path
        self.metadata = metadata
        self.requested_device = requested_device
        self.requested_providers = requested_providers
        self.fallback = fallback
        self.profile = (
            ShapeProfile.from_dict(metadata["profile"]) if "profile" in metadata else None
        )
        self.providers: list[str] = list(session.get_providers())
        inputs = [i.name for i in session.get_inputs()]
        strength = strength_input(inputs)
        if strength is None or session.get_outputs()[0].name != OUTPUT_NAMES[0]:
            raise BackendError(
                f"{path}: not a dkt export (inputs {inputs}, expected {list(INPUT_NAMES)}, "
                f"and '{STRENGTH_INPUT}' in newer exports)"
            )
        #: Whether the graph takes a strength (exports made since strength exists do).
        self.has_strength = strength
        self._static = any(isinstance(d, int) for d in session.get_inputs()[0].shape[2:]) or (
            self.profile is not None and not self.profile.is_dynamic
        )

    @classmethod
    def load(cls, model: Path, options: LoadOptions = LoadOptions()) -> OnnxRuntimeBackend:
        device, precision = options.device, options.precision
        allow_cpu_fallback = options.allow_cpu_fallback
        ort = require_module("onnxruntime", "the onnxruntime backend")
        model = Path(model)
        if not model.is_file():
            raise BackendError(f"{model}: no such file")
        onnx = require_module("onnx", "the onnxruntime backend")
        try:
            proto = onnx.load_model(str(model), load_external_data=False)
        except Exception as exc:
            raise BackendError(f"{model}: not an ONNX file ({type(exc).__name__})") from exc
        metadata = parse_metadata({p.key: p.value for p in proto.metadata_props}, str(model))
        del proto
        graph_precision = metadata.get("precision", "fp32")
        if precision is not None and precision != graph_precision:
            raise BackendError(
                f"{model}: exported for {graph_precision}; an ONNX file's precision is fixed at "
                f"export (drop --precision, or re-export with --precision {precision})"
            )
        profile = ShapeProfile.from_dict(metadata["profile"]) if "profile" in metadata else None
        available = list(ort.get_available_providers())
        plan = provider_plan(device, available, profile)
        wanted = plan[0][0]
        if wanted != CPU and wanted not in available and not allow_cpu_fallback:
            raise BackendError(
                f"device '{device}' needs {wanted}, which this onnxruntime "
                f"{ort.__version__} does not have (it has: {', '.join(available)}); install "
                "onnxruntime-gpu, or pass --allow-cpu-fallback to run on the CPU"
            )
        plan = [(p, o) for p, o in plan if p in available] or [(CPU, {})]
        session_options = ort.SessionOptions()
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if options.threads:
            session_options.intra_op_num_threads = options.threads
        session_options.log_severity_level = 3
        try:
            session = ort.InferenceSession(
                str(model),
                session_options,
                providers=[p for p, _ in plan],
                provider_options=[o for _, o in plan],
            )
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{model}: onnxruntime cannot load it ({first})") from exc
        loaded = list(session.get_providers())
        fallback = wanted != CPU and (not loaded or loaded[0] != wanted)
        if fallback and not allow_cpu_fallback:
            raise BackendError(
                f"device '{device}' asked for {wanted}, but onnxruntime loaded only "
                f"{', '.join(loaded)}; fix the GPU setup, or pass --allow-cpu-fallback"
            )
        backend = cls(session, model, metadata, device, [p for p, _ in plan], fallback)
        if fallback:
            backend.fallback_note = (
                f"device '{device}' needs {wanted}, which onnxruntime did not load (it runs on "
                f"{', '.join(loaded) or 'nothing'}); falling back to the CPU (--allow-cpu-fallback)"
            )
        return backend

    @classmethod
    def inspect(cls, model: Path) -> dict[str, Any]:
        """The export's embedded ``metadata_props`` record; the weights are not loaded."""
        model = Path(model)
        if not model.is_file():
            raise BackendError(f"{model}: no such file")
        try:
            metadata = read_metadata(model)
        except BackendError:
            raise
        except Exception as exc:  # onnx's parser raises its own DecodeError, and others
            raise BackendError(f"{model}: not an ONNX file ({type(exc).__name__})") from exc
        return {
            "path": str(model),
            "format": "ONNX export" if metadata else "ONNX file without dkt metadata",
            "file_size": model.stat().st_size,
            "sha256": file_sha256(model),
            "export": metadata,
        }

    @property
    def working_size(self) -> int | None:
        size = self.metadata.get("working_size")
        return int(size) if size else None

    def working_bytes(self, height: int, width: int) -> int | None:
        """The eager model's estimate from the export's recorded config, scaled for ORT.

        ONNX Runtime's CPU arena grows faster than eager's allocator (its NCHWc reorders
        keep blocked copies of full-resolution maps): measured peak RSS of the bundled
        export over the eager estimate was 0.93 at 768 px, 0.87 at 1024 and 1.05 at 1536,
        so the estimate is scaled by ``ORT_ARENA_FACTOR`` to stay above it. ``None`` off
        the CPU (a GPU provider raises its own out-of-memory) or for a file without dkt's
        metadata.
        """
        config = self._recorded_config
        if not self.on_cpu or config is None:
            return None
        fp32 = estimate_working_bytes(config, height, width)
        scale = 0.5 if self.metadata.get("precision") == "fp16" else 1.0
        return int(fp32 * scale * ORT_ARENA_FACTOR)

    @functools.cached_property
    def _recorded_config(self) -> DKTNetConfig | None:
        """The model config the export's metadata records (read once, not per image)."""
        try:
            return DKTNetConfig.from_dict(self.metadata["config"])
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def min_input_hw(self) -> tuple[int, int]:
        return self.profile.min_hw if self.profile is not None else super().min_input_hw

    @property
    def on_cpu(self) -> bool:
        return not self.providers or self.providers[0] == CPU

    @property
    def strength_refusal(self) -> str | None:
        if self.has_strength:
            return None
        return (
            f"{self.path.name} was exported without a strength input (by an older dkt), so it "
            "runs at strength 1 only; re-export it with dkt export to choose a strength"
        )

    def run(self, composite: np.ndarray, mask: np.ndarray, strength: float = 1.0) -> np.ndarray:
        self.check_strength(strength)
        if self.profile is not None and (self._static or self.providers[0] == TENSORRT):
            self.profile.check(
                composite.shape, "re-export with a larger --max-shape, or pass a smaller --size"
            )
        feeds = {
            "composite": np.ascontiguousarray(composite, dtype=np.float32),
            "mask": np.ascontiguousarray(mask, dtype=np.float32),
        }
        if self.has_strength:
            feeds[STRENGTH_INPUT] = np.full(STRENGTH_SHAPE, strength, dtype=np.float32)
        try:
            (out,) = self.session.run(list(OUTPUT_NAMES), feeds)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{self.path}: onnxruntime failed ({first})") from exc
        return out

    def describe(self) -> dict[str, Any]:
        ort = require_module("onnxruntime", "the onnxruntime backend")
        return {
            "backend": self.name,
            "device": self.requested_device,
            "providers": self.providers,
            "providers_requested": self.requested_providers,
            "fallback": self.fallback,
            "precision": self.metadata.get("precision", "fp32"),
            "model": str(self.path),
            "model_sha256": file_sha256(self.path),
            "source_sha256": self.metadata.get("source_sha256"),
            "profile": self.profile.describe() if self.profile else None,
            "strength_input": self.has_strength,
            "opset": self.metadata.get("opset"),
            "onnxruntime": ort.__version__,
        }

    def close(self) -> None:
        self.session = None
